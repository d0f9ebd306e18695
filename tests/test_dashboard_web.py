"""The dashboard pages through the Flask test client, on the known history of test_stats."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine import dashboard as stats
from engine.models import ProcessDefinition
from engine.dashboard import Filters

from .sopdata import DINSOS, DPMK
from .test_dashboard_figures import NOW, PERIOD, history  # noqa: F401  (the fixture)

Q = "start=2026-03-02&end=2026-03-15"


@pytest.fixture
def app(services, history):  # noqa: F811
    from webui import create_app
    services.runtime.clock = lambda: NOW
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False,
                                                 "RATELIMIT_ENABLED": False})
    return app


@pytest.fixture
def login(app, services):
    passwords = json.loads((services.settings.data_dir / "demo-logins.json").read_text())

    def _login(username):
        client = app.test_client()
        r = client.post("/login", data={"username": username, "password": passwords[username]})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return client
    return _login


def read_csv(response, delimiter=";") -> list[list[str]]:
    """An export as Excel in the Indonesian locale reads it: UTF-8 with a BOM, `;`-separated."""
    body = response.get_data()
    assert body.startswith("\ufeff".encode()), "no UTF-8 BOM"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=delimiter))


def id_cell(v) -> str:
    """A Table value as the Indonesian CSV writes it (decimal comma)."""
    return "" if v is None else str(v).replace(".", ",") if isinstance(v, float) else str(v)


def _names(services):
    with services.sessions() as s:
        return {d.key: d.name for d in s.scalars(select(ProcessDefinition))}


def test_anonymous_goes_to_login_and_staff_is_refused(app, login):
    r = app.test_client().get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    staff = login("dpmk.penerima")
    for url in ("/dashboard", "/dashboard/officers", "/dashboard/trends", "/dashboard/drill?figure=open",
                "/dashboard/export/overview.csv"):
        assert staff.get(url).status_code == 403, url


def test_supervisor_sees_own_office_figures_only(app, login, services, history):  # noqa: F811
    names = _names(services)
    client = login("dpmk.kasubbag")
    for url in (f"/dashboard?{Q}", f"/dashboard?{Q}&office={history['offices']['dinsos']}"):  # office= is ignored
        html = client.get(url).get_data(as_text=True)
        assert names[DPMK] in html and names[DINSOS] not in html
        assert "16,0" in html and "27,0" in html  # step2 median and p90 (Indonesian decimals)
        assert "50,0" in html  # on-time rate of step1 and step2
        assert "Berita S1" not in html
    r = client.get(f"/dashboard/drill?figure=completed&office={history['offices']['dinsos']}&{Q}")
    assert "Berita S1" not in r.get_data(as_text=True) and "Berita I1" in r.get_data(as_text=True)


def test_admin_gets_the_regency_view_and_can_pick_an_office(app, login, services, history):  # noqa: F811
    names = _names(services)
    client = login("admin")
    html = client.get(f"/dashboard?{Q}").get_data(as_text=True)
    assert names[DPMK] in html and names[DINSOS] in html
    assert 'id="offices"' in html  # the per-office table of the regency view
    html = client.get(f"/dashboard?{Q}&office={history['offices']['dinsos']}").get_data(as_text=True)
    assert names[DINSOS] in html and names[DPMK] not in html and 'id="offices"' not in html


def test_drill_down_from_a_figure_to_the_instance_page(app, login, history):  # noqa: F811
    """The open and late-open counts lead to the instance list with the matching filters (issue 14)."""
    client = login("dpmk.sekdin")
    html = client.get(f"/dashboard?{Q}").get_data(as_text=True)
    links = re.findall(r'href="(/instances\?[^"]+)"', html)
    late = [u.replace("&amp;", "&").replace("%3A", ":") for u in links if "late=1" in u and ":step1" in u]
    assert len(late) == 1
    page = client.get(late[0])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    i2 = history["instances"]["I2"]
    assert "Berita I2" in text and f'href="/instances/{i2}"' in text
    assert "Berita I7" not in text  # open but not late
    assert client.get(f"/instances/{i2}").status_code == 200
    assert client.get("/dashboard/drill?figure=nonsense").status_code == 404


def test_exports_carry_the_numbers_on_screen(app, login, services, history):  # noqa: F811
    client = login("dpmk.kasubbag")
    with services.sessions() as s:
        table = stats.overview_table(stats.overview(s, Filters(office_id=history["offices"]["dpmk"], **PERIOD), NOW))
    r = client.get(f"/dashboard/export/overview.csv?{Q}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = read_csv(r)
    assert len(rows) == 1 + len(table.rows)
    expected = [[id_cell(v) for v in row] for row in table.rows]
    assert rows[1:] == expected
    step2 = dict(zip(table.columns, rows[2]))
    assert (step2["step_no"], step2["completed"], step2["on_time_pct"], step2["median_minutes"]) == \
        ("step2", "4", "50,0", "16,0")

    r = client.get(f"/dashboard/export/overview.xlsx?{Q}")
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.get_data())).worksheets[0]
    values = [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert values == [list(row) for row in table.rows]

    # the HTML table shows the same rows (formatted), in the same order
    html = client.get(f"/dashboard?{Q}").get_data(as_text=True)
    body = html[html.index('id="overview"'):]
    assert body.count("<tr>") == 1 + len(table.rows)
    # the chart is drawn from the same numbers
    spec = json.loads(re.search(r'id="chart-duration-data">(.*?)</script>', html, re.S).group(1))
    assert spec["datasets"][0]["data"] == [row[table.columns.index("median_minutes")] for row in table.rows]


def test_every_view_exports_csv_and_xlsx(app, login, history):  # noqa: F811
    client = login("dpmk.kasubbag")
    for page, tables in (("officers", ["officers", "officer_steps"]), ("trends", ["trends", "heatmap", "rework"])):
        for name in tables:
            r = client.get(f"/dashboard/export/{page}.csv?{Q}&table={name}")
            assert r.status_code == 200, (page, name)
        wb = load_workbook(io.BytesIO(client.get(f"/dashboard/export/{page}.xlsx?{Q}").get_data()))
        assert len(wb.worksheets) == len(tables)
    officers = read_csv(client.get(f"/dashboard/export/officers.csv?{Q}"))
    budi = next(r for r in officers if r[1] == "Budi Santoso")
    assert budi[2:7] == ["0", "0", "4", "2", "50,0"]
    trends = read_csv(client.get(f"/dashboard/export/trends.csv?{Q}"))
    assert [r[0] for r in trends[1:]] == ["2026-W10", "2026-W11"] and trends[1][2:6] == ["5", "4", "1", "80,0"]
    drill = client.get(f"/dashboard/export/drill.csv?figure=late_open&{Q}").get_data().decode("utf-8-sig")
    assert "Berita I2" in drill and "Berita S1" not in drill


def test_officers_and_trends_pages(app, login):
    client = login("dpmk.kasubbag")
    html = client.get(f"/dashboard/officers?{Q}").get_data(as_text=True)
    assert "Budi Santoso" in html and "Rina Wulandari" in html and "Yoga Pratama" not in html
    assert 'id="officer_steps"' in html
    html = client.get(f"/dashboard/trends?{Q}").get_data(as_text=True)
    assert "2026-W10" in html and 'id="heatmap"' in html and 'id="rework"' in html
    assert "figure=late" in html and "weekday=0" in html  # heatmap cells drill down
    assert "figure=returns" in html


def test_page_refreshes_and_charts_are_vendored_with_table_equivalents(app, login):
    client = login("dpmk.kasubbag")
    html = client.get(f"/dashboard?{Q}").get_data(as_text=True)
    assert re.search(r'hx-trigger="every \d+s"', html)
    assert "vendor/chart/chart.umd.min.js" in html and "dashboard.js" in html
    assert not re.search(r'<script[^>]+src="https?://', html)  # no CDN
    for canvas in re.findall(r"<canvas[^>]*>", html):
        assert 'role="img"' in canvas and "aria-label" in canvas
    for target in re.findall(r'<figcaption[^>]*>.*?href="#([\w-]+)"', html, re.S):
        assert f'id="{target}"' in html  # each chart names its table
    assert client.get("/static/vendor/chart/chart.umd.min.js").status_code == 200
    # the polling request gets the figures only, wrapped so that polling continues
    r = client.get(f"/dashboard?{Q}&fragment=1", headers={"HX-Request": "true"})
    fragment = r.get_data(as_text=True)
    assert fragment.lstrip().startswith("<p") or fragment.lstrip().startswith("<div id=\"dash-figures\"")
    assert "<html" not in fragment and 'id="dash-figures"' in fragment and "hx-trigger" in fragment
