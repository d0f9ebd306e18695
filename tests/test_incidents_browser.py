"""An incident in headless Chromium: the Lurah's completion runs into a failing condition and
gets the normal page with a message; the process owner finds it in /incidents, reads error,
element and data on the instance page and retries with the corrected decision. Screenshots
(desktop 1280, phone 390) go to test-artifacts/."""
from __future__ import annotations

import threading

import pytest
from werkzeug.security import generate_password_hash

from .test_browser import ARGS, CHROMIUM, PASSWORD, _need_chromium
from .test_incidents import deploy, open_steps, optional_decision, step, TERIMA
from .test_readme_kelurahan import write_readme_folder

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path):
    _need_chromium()
    from werkzeug.serving import make_server

    from engine.accounts import create_user, get_or_create_office, user_by_name
    from engine.config import Settings
    from engine.migrate import upgrade
    from engine.offices import create_group, set_membership
    from engine.services import Services
    from webui import create_app

    url = f"sqlite:///{tmp_path / 'lajur.sqlite3'}"
    upgrade(url)
    services = Services.from_settings(Settings(database_url=url, broker_url=f"sqla+sqlite:///{tmp_path / 'b.sqlite3'}",
                                               data_dir=tmp_path / "data", base_url="http://127.0.0.1"))
    fast = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    with services.sessions.begin() as session:
        office = get_or_create_office(session, "panggungharjo", "Kalurahan Panggungharjo")
        for lane in ("Petugas Pelayanan", "Lurah"):
            create_group(session, "panggungharjo", lane)
        for name, full, roles in (("pgh.petugas", "Sari Rahayu", ("staff",)),
                                  ("pgh.lurah", "Wahyudi", ("staff", "supervisor")),
                                  ("pgh.pemilik", "Dewi Anggraini", ("staff", "process_owner"))):
            create_user(session, name, PASSWORD, full, office, roles=roles)
            user_by_name(session, name).password_hash = fast
        set_membership(session, "panggungharjo", "Petugas Pelayanan", "pgh.petugas", True)
        set_membership(session, "panggungharjo", "Lurah", "pgh.lurah", True)
    with services.sessions() as session:
        ids = {n: user_by_name(session, n).id for n in ("pgh.petugas", "pgh.lurah", "pgh.pemilik")}
    deploy(services, optional_decision(write_readme_folder(tmp_path / "surat-domisili")))
    httpd = make_server("127.0.0.1", 0, create_app(services=services), threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", services, ids
    httpd.shutdown()
    services.dispose()


def test_incident_seen_and_retried_in_the_browser(live, artifacts_dir):
    from playwright.sync_api import sync_playwright
    base, services, ids = live
    rt = services.runtime
    iid = rt.start(ids["pgh.petugas"], "surat-domisili", "Domisili Budi Santoso")
    step(rt, services, ids["pgh.petugas"], iid, "terima", TERIMA)
    (task,) = open_steps(services, iid)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        errors = []
        for width, name in ((1280, "desktop"), (390, "phone")):
            context = browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID")
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def sign_in(username):
                page.goto(f"{base}/login")
                page.fill("#username", username)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/inbox")

            if name == "desktop":  # the Lurah completes without a decision: a page with a message, not a 500
                sign_in("pgh.lurah")
                page.goto(f"{base}/tasks/{task.id}")
                page.fill("[name=catatan]", "Berkas lengkap")
                page.click("button[value=claim_complete]")  # nobody holds the Lurah's step yet
                page.wait_for_selector("text=SOP berhenti karena masalah pada proses")
                page.screenshot(path=str(artifacts_dir / "incident-completion-desktop.png"), full_page=True)
                page.click("header button:has-text('Keluar')")
            sign_in("pgh.pemilik")
            page.goto(f"{base}/incidents")
            assert "Domisili Budi Santoso" in page.inner_text("main")
            page.screenshot(path=str(artifacts_dir / f"incidents-list-{name}.png"), full_page=True)
            page.click("text=Domisili Budi Santoso")
            page.wait_for_selector("section.incident")
            assert "keputusan_lurah" in page.inner_text("section.incident")
            page.screenshot(path=str(artifacts_dir / f"incident-instance-{name}.png"), full_page=True)
            if name == "phone":
                page.select_option("section.incident select[name=value]", "YA")
                page.click("section.incident button:has-text('Coba lagi')")
                page.wait_for_selector("text=Insiden selesai: SOP berjalan lagi.")
                assert page.locator("section.incident").count() == 0
                page.screenshot(path=str(artifacts_dir / "incident-resolved-phone.png"), full_page=True)
            context.close()
        browser.close()
    assert not errors, errors
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["terbitkan"]
