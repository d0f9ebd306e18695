"""The instance list page and its export, and the pause request on the step page, through the
Flask app on both databases (issue 14, findings 5 and 9)."""
from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from .helpers import open_task
from .sopdata import DPMK
from .test_instance_list import office  # noqa: F401  (fixture)
from .test_sla import at, wib
from .test_web import app, login, users  # noqa: F401  (fixtures)


def subjects(html: str) -> list[str]:
    return re.findall(r'class="step-link" href="/instances/\d+">([^<]+)</a>', html)


def test_list_filters_scope_and_field_errors(app, services, office):  # noqa: F811
    at(services, wib(2026, 11, 24, 8, 30))
    boss = login(app, "dpmk.kasubbag")
    html = boss.get("/instances").get_data(as_text=True)
    assert subjects(html) == ["Berita posyandu C", "Berita posyandu B", "Insiden E", "Berita selesai D",
                              "Berita Musrenbang A"]
    assert "Rilis bansos S" not in html and 'href="/instances"' in html  # in the menu
    html = boss.get(f"/instances?step={DPMK}:step1&late=1").get_data(as_text=True)
    assert subjects(html) == ["Berita posyandu B"]
    assert "1. " in html  # steps offered by number and name, not code
    assert subjects(boss.get("/instances?status=incident").get_data(as_text=True)) == ["Insiden E"]
    assert subjects(boss.get("/instances?q=posyandu&sort=old").get_data(as_text=True)) == \
        ["Berita posyandu B", "Berita posyandu C"]
    assert subjects(boss.get("/instances?from=2026-11-24&to=2026-11-24").get_data(as_text=True)) == \
        ["Berita posyandu C"]
    assert subjects(boss.get("/instances?officer=dpmk.operator").get_data(as_text=True)) == ["Berita selesai D"]
    # keyset pages: the next-page link carries the filters and the position
    html = boss.get("/instances?sort=due").get_data(as_text=True)
    assert subjects(html)[0] == "Berita Musrenbang A"
    for bad in ("status=lost", "late=maybe", "from=2026-13-01", "sort=random", "step=x!y", "after=abc",
                "officer=" + "x" * 300, "process=BAD KEY", "step=x%00"):
        r = boss.get(f"/instances?{bad}")
        assert r.status_code == 400, bad
        body = r.get_data(as_text=True)
        assert ("field-error" in body or "%00" in bad) and "Traceback" not in body, bad
    # staff see only what they took part in
    assert subjects(login(app, "dpmk.operator").get("/instances").get_data(as_text=True)) == ["Berita selesai D"]
    assert subjects(login(app, "dinsos.ketua").get("/instances").get_data(as_text=True)) == ["Rilis bansos S"]


def test_export_matches_the_filters(app, services, office):  # noqa: F811
    at(services, wib(2026, 11, 24, 8, 30))
    boss = login(app, "dpmk.kasubbag")
    r = boss.get("/instances/export.csv?q=posyandu&sort=old")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data().decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads UTF-8
    lines = text.lstrip("\ufeff").strip().split("\r\n")
    assert lines[0].split(";")[:4] == ["Instans", "SOP", "Perihal", "Status"]  # Indonesian: semicolons
    assert [line.split(";")[2] for line in lines[1:]] == ["Berita posyandu B", "Berita posyandu C"]
    assert "Berjalan" in lines[1] and "ya" in lines[1].split(";")  # B is late, in words
    r = boss.get(f"/instances/export.xlsx?step={DPMK}:step1&late=1")
    sheet = load_workbook(io.BytesIO(r.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert [row[2] for row in rows[1:]] == ["Berita posyandu B"] and rows[1][0] == office["B"]
    assert boss.get("/instances/export.pdf").status_code == 404
    assert boss.get("/instances/export.csv?late=maybe").status_code == 400
    # staff export only what they see
    text = login(app, "dpmk.operator").get("/instances/export.csv").get_data().decode("utf-8")
    assert "Berita selesai D" in text and "posyandu" not in text


def test_pause_request_on_the_step_page(app, services, users):  # noqa: F811
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(users["dpmk.penerima"], DPMK, "Jeda lewat web")
    task = open_task(services, iid)
    staff = login(app, "dpmk.penerima")
    staff.post(f"/tasks/{task.id}/claim")
    at(services, wib(2026, 11, 23, 9, 0))
    r = staff.post(f"/tasks/{task.id}/pause", data={"reason": "Menunggu foto dari kalurahan"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Permintaan jeda dikirim" in page and 'id="pause-request"' in page
    assert "Menunggu foto dari kalurahan" in page and 'name="decision"' not in page  # staff cannot decide
    assert open_task(services, iid).paused_at is None
    boss = login(app, "dpmk.kasubbag")
    assert "Permintaan jeda" in boss.get("/notifications/").get_data(as_text=True)
    page = boss.get(f"/tasks/{task.id}").get_data(as_text=True)
    action = re.search(r'action="(/pause-requests/\d+)"', page).group(1)
    assert staff.post(action, data={"decision": "approve"}).status_code == 403
    assert boss.post(action, data={"decision": "maybe"}).status_code == 400
    at(services, wib(2026, 11, 23, 9, 30))
    r = boss.post(action, data={"decision": "approve", "note": "Silakan"}, follow_redirects=True)
    assert "Jeda disetujui" in r.get_data(as_text=True)
    assert open_task(services, iid).paused_at is not None
    assert boss.post(action, data={"decision": "refuse"}).status_code == 409
    at(services, wib(2026, 11, 23, 10, 30))
    r = staff.post(f"/tasks/{task.id}/resume", data={"reason": "Foto diterima"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    # due 10:00, paused 09:30-10:30: the new due time is 11:00 WIB, and the page says it moved
    assert 'id="due-moved"' in page and "11.00" in page and "10.00" in page
