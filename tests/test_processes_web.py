"""The process page per SOP for its owners (webui/processes.py): versions, diff, moving instances
through the web with its dry run; who may; CSRF; bad input; English; screenshots in Chromium."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from engine.accounts import user_by_name
from engine.models import AuditEvent, HumanTask, ProcessInstance, User
from webui import create_app

from .migration_data import DPMK
from .test_admin_web import FAST, PASSWORD, client_for
from .test_migration import world  # noqa: F401  (the fixture: v1 instances at several steps, v2 deployed)


@pytest.fixture
def owners(services, demo, world):  # noqa: F811
    with services.sessions.begin() as session:
        for user in session.scalars(select(User)):
            user.password_hash = FAST
    return world


def _versions_of(services, ids):
    with services.sessions() as session:
        return {i: session.get(ProcessInstance, i).version_id for i in ids}


def test_owner_sees_list_versions_and_diff(services, owners):
    c = client_for(services, "dpmk.pemilik")
    html = c.get("/processes").get_data(as_text=True)
    assert "Proses SOP" in html and f'href="/processes/{DPMK}"' in html
    assert 'href="/processes"' in c.get("/").get_data(as_text=True) or 'href="/processes"' in html
    page = c.get(f"/processes/{DPMK}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "5 berjalan, 1 selesai, 0 insiden" in html and "0 berjalan, 0 selesai, 0 insiden" in html
    assert "Kartu SOP" in html and "Mencatat berita dalam Buku Agenda" in html  # v2's new step on the card
    diff = re.sub(r"\s+", " ", html.split('id="diff"')[1])
    assert "Mutu Baku <code>step2</code></td> <td>15 min</td> <td>20 min</td>" in diff
    assert "dihapus</td> <td>Langkah <code>step5</code>" in diff
    assert "ditambah</td> <td>Langkah <code>step1b</code>" in diff
    assert f'id="studio-edit" href="/studio/{DPMK}"' in html  # "edit" opens the studio on this SOP
    bad = c.get(f"/processes/{DPMK}?a=1&b=1")
    assert bad.status_code == 400 and "Pilih dua versi yang berbeda" in bad.get_data(as_text=True)
    assert c.get(f"/processes/{DPMK}?a=1&b=99999999999999999999").status_code == 400


def test_edit_link_opens_the_studio(services, owners):
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False})
    c = app.test_client()
    c.post("/login", data={"username": "dpmk.pemilik", "password": PASSWORD})
    assert f'id="studio-edit" href="/studio/{DPMK}"' in c.get(f"/processes/{DPMK}").get_data(as_text=True)
    assert c.get(f"/studio/{DPMK}").status_code == 200


def test_staff_other_offices_and_admins_are_refused(services, owners):
    for username, code in (("dpmk.kasubbag", 403), ("admin", 403)):
        c = client_for(services, username)
        assert 'href="/processes"' not in c.get("/").get_data(as_text=True)
        assert c.get("/processes").status_code == code
        assert c.get(f"/processes/{DPMK}").status_code == code
        assert c.post(f"/processes/{DPMK}/migrate", data={"from": 1, "to": 2, "action": "apply"}).status_code == code
    other = client_for(services, "dinsos.pemilik")
    assert other.get("/processes").status_code == 200 and DPMK not in other.get("/processes").get_data(as_text=True)
    assert other.get(f"/processes/{DPMK}").status_code == 404
    assert other.get(f"/processes/{DPMK}/migrate").status_code == 404
    assert other.post(f"/processes/{DPMK}/migrate", data={"from": 1, "to": 2, "action": "apply"}).status_code == 404
    assert set(_versions_of(services, owners.values()).values()) == {_versions_of(services, [owners["step1"]])[
        owners["step1"]]}  # nothing moved


def test_migration_through_the_web_dry_run_then_apply(services, demo, owners):
    c = client_for(services, "dpmk.pemilik")
    form = c.get(f"/processes/{DPMK}/migrate").get_data(as_text=True)
    assert '<option value="1" selected>' in form and "Periksa dulu" in form
    dry = c.post(f"/processes/{DPMK}/migrate", data={"from": "1", "to": "2", "action": "check"})
    html = re.sub(r"\s+", " ", dry.get_data(as_text=True))
    assert dry.status_code == 200 and "4 dari 5 instans dapat dipindahkan" in html
    assert "langkah step5 sedang terbuka dan tidak ada lagi di versi 2" in html
    assert "dipegang dpmk.kasubbag (tetap)" in html and "Mutu Baku 15 → 20 menit" in html
    assert "Pindahkan 4 instans ke v2" in html
    before = _versions_of(services, owners.values())
    assert len(set(before.values())) == 1  # the dry run moved nothing
    done = c.post(f"/processes/{DPMK}/migrate", data={"from": "1", "to": "2", "action": "apply"})
    html = re.sub(r"\s+", " ", done.get_data(as_text=True))
    assert done.status_code == 200 and "Dipindahkan 4, tetap 1, gagal 0." in html
    after = _versions_of(services, owners.values())
    assert after[owners["step5"]] == before[owners["step5"]] and after[owners["step1"]] != before[owners["step1"]]
    with services.sessions() as session:
        audits = session.scalars(select(AuditEvent).where(AuditEvent.kind == "instance_migrated")).all()
        assert len(audits) == 4 and {a.user_id for a in audits} == {demo["dpmk.pemilik"]}
        step2 = session.scalar(select(HumanTask).where(HumanTask.instance_id == owners["step2-claimed"],
                                                       HumanTask.state == "ready"))
        assert step2.mutu_baku_minutes == 20 and step2.assignee_id == demo["dpmk.kasubbag"]
    # staff now see the new Mutu Baku on the step
    staff = client_for(services, "dpmk.kasubbag")
    assert "20 menit" in staff.get(f"/tasks/{step2.id}").get_data(as_text=True)


def test_bad_input_is_a_4xx_and_changes_nothing(services, owners):
    c = client_for(services, "dpmk.pemilik")
    before = _versions_of(services, owners.values())
    for data, code in (({"from": "x", "to": "2"}, 400), ({"from": "1", "to": "1"}, 400),
                       ({"from": "1", "to": "9", "action": "apply"}, 404), ({}, 400)):
        response = c.post(f"/processes/{DPMK}/migrate", data={"action": "apply", **data})
        assert response.status_code == code, data
        assert "field-errors" in response.get_data(as_text=True)
    assert c.get("/processes/no-such-sop").status_code == 404
    assert _versions_of(services, owners.values()) == before


def test_csrf_is_required(services, owners):
    c = create_app(services=services, config={"TESTING": True}).test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").get_data(as_text=True)).group(1)
    c.post("/login", data={"username": "dpmk.pemilik", "password": PASSWORD, "csrf_token": token})
    before = _versions_of(services, owners.values())
    assert c.post(f"/processes/{DPMK}/migrate", data={"from": 1, "to": 2, "action": "apply"}).status_code == 400
    assert _versions_of(services, owners.values()) == before


def test_english(services, owners):
    with services.sessions.begin() as session:
        user_by_name(session, "dpmk.pemilik").locale = "en"
    c = client_for(services, "dpmk.pemilik")
    assert "SOP processes" in c.get("/processes").get_data(as_text=True)
    html = re.sub(r"\s+", " ", c.post(f"/processes/{DPMK}/migrate", data={"from": 1, "to": 2}).get_data(as_text=True))
    assert "4 of 5 instances can be moved" in html and "step step5 is open and no longer exists in version 2" in html


@pytest.mark.browser
def test_migration_in_the_browser_screenshots(services, owners, artifacts_dir, backend):
    if backend != "sqlite":
        pytest.skip("one screenshot run is enough (the pages are the same on PostgreSQL)")
    from werkzeug.serving import make_server

    from .test_browser import ARGS, CHROMIUM, _need_chromium
    _need_chromium()
    from playwright.sync_api import sync_playwright
    app = create_app(services=services, config={"LAJUR_LOGIN_LIMIT": "1000/minute"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            for name, viewport in (("phone", {"width": 390, "height": 844}), ("desktop", {"width": 1280, "height": 900})):
                page = browser.new_context(viewport=viewport, locale="id-ID").new_page()
                page.goto(f"{base}/login")
                page.fill("#username", "dpmk.pemilik")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{base}/processes")
                page.click(f"a[href='/processes/{DPMK}']")
                assert page.locator("#diff").count() == 1
                page.screenshot(path=str(artifacts_dir / f"processes-sop-{name}.png"), full_page=True)
                page.click("text=Pindahkan instans yang berjalan ke versi lain")
                page.click("text=Periksa dulu (uji coba)")
                assert page.locator("#apply-form").count() == 1
                page.screenshot(path=str(artifacts_dir / f"processes-migrate-dry-run-{name}.png"), full_page=True)
                if name == "desktop":
                    page.click("#apply-form button")
                    assert page.locator("text=Dipindahkan 4, tetap 1, gagal 0.").count() == 1
                    page.screenshot(path=str(artifacts_dir / f"processes-migrate-done-{name}.png"), full_page=True)
            browser.close()
    finally:
        httpd.shutdown()
    moved = _versions_of(services, [owners["step1"], owners["step5"]])
    assert moved[owners["step1"]] != moved[owners["step5"]]
