"""Office administration pages: groups, members, roles, SOP owners; office isolation, CSRF, 4xx
for refusals; and a screenshot at desktop and phone width in Chromium."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from engine.accounts import create_user, office_by_code, user_by_name
from engine.models import AuditEvent, Group, User
from webui import create_app

PASSWORD = "sandi-uji-123"
FAST = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")


@pytest.fixture
def users(services, demo):
    with services.sessions.begin() as session:
        create_user(session, "dpmk.admin", PASSWORD, "Admin DPMK", office_by_code(session, "dpmk"),
                    roles=("staff", "office_admin"))
        for user in session.scalars(select(User)):
            user.password_hash = FAST
    return demo


def client_for(services, username, **config):
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False, **config})
    client = app.test_client()
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
    return client


def group_members(services, office, name):
    with services.sessions() as session:
        group = session.scalar(select(Group).where(Group.name == name,
                                                   Group.office_id == office_by_code(session, office).id))
        return sorted(u.username for u in group.members) if group else None


def test_office_admin_manages_groups_members_and_roles(services, users):
    c = client_for(services, "dpmk.admin")
    page = c.get("/admin/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Kasubbag" in html and "dpmk.kasubbag" in html
    assert "Pemutakhiran Website" in html and "dpmk.pemilik" in html  # who owns which SOP
    assert "dinsos.petugas" not in html
    assert c.post("/admin/groups", data={"name": "Operator Arsip"}).status_code == 302
    assert group_members(services, "dpmk", "Operator Arsip") == []
    assert c.post("/admin/members", data={"group": "Operator Arsip", "username": "dpmk.operator"}).status_code == 302
    assert group_members(services, "dpmk", "Operator Arsip") == ["dpmk.operator"]
    assert c.post("/admin/members", data={"group": "Operator Arsip", "username": "dpmk.operator",
                                          "action": "remove"}).status_code == 302
    assert group_members(services, "dpmk", "Operator Arsip") == []
    assert c.post("/admin/roles", data={"username": "dpmk.operator",
                                        "roles": ["staff", "process_owner"]}).status_code == 302
    with services.sessions() as session:
        assert user_by_name(session, "dpmk.operator").roles == "staff,process_owner"
        kinds = set(session.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("group%")
                                                                  | (AuditEvent.kind == "roles_changed"))))
        assert kinds == {"group_created", "group_member_added", "group_member_removed", "roles_changed"}


def test_refusals_are_4xx_pages_and_change_nothing(services, users):
    c = client_for(services, "dpmk.admin")
    dup = c.post("/admin/groups", data={"name": "Kasubbag"})
    assert dup.status_code == 409 and "already has group" in dup.get_data(as_text=True)
    assert c.post("/admin/groups", data={"name": ""}).status_code == 422
    assert c.post("/admin/roles", data={"username": "dpmk.operator", "roles": ["admin"]}).status_code == 422
    # a user of another office cannot be added, nor given roles; the office cannot be switched by URL
    other = c.post("/admin/members", data={"group": "Kasubbag", "username": "dinsos.petugas"})
    assert other.status_code == 403
    assert c.post("/admin/roles?office=dinsos", data={"username": "dinsos.petugas", "roles": ["staff"]}).status_code == 403
    assert c.post("/admin/groups?office=dinsos", data={"name": "Titipan"}).status_code == 302
    assert group_members(services, "dinsos", "Titipan") is None and group_members(services, "dpmk", "Titipan") == []
    assert "Dinas Pemberdayaan" in c.get("/admin/?office=dinsos").get_data(as_text=True)


def test_only_office_admins_and_admins(services, users):
    for who in ("dpmk.penerima", "dpmk.sekdin", "dpmk.pemilik"):
        assert client_for(services, who).get("/admin/").status_code == 403
    admin = client_for(services, "admin")
    assert "Dinas Sosial" in admin.get("/admin/?office=dinsos").get_data(as_text=True)
    assert admin.post("/admin/groups?office=dinsos", data={"name": "Tim Humas"}).status_code == 302
    assert group_members(services, "dinsos", "Tim Humas") == []


def test_csrf_is_required(services, users):
    import re
    c = create_app(services=services, config={"TESTING": True}).test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").get_data(as_text=True)).group(1)
    assert c.post("/login", data={"username": "dpmk.admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    assert c.post("/admin/groups", data={"name": "Tanpa Token"}).status_code == 400
    assert group_members(services, "dpmk", "Tanpa Token") is None
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/admin/").get_data(as_text=True)).group(1)
    assert c.post("/admin/groups", data={"name": "Dengan Token", "csrf_token": token}).status_code == 302
    assert group_members(services, "dpmk", "Dengan Token") == []


def test_english(services, users):
    with services.sessions.begin() as session:
        user_by_name(session, "dpmk.admin").locale = "en"
    html = client_for(services, "dpmk.admin").get("/admin/").get_data(as_text=True)
    assert "Office administration" in html and "Groups (lanes)" in html


def _pause_mode(services, office):
    with services.sessions() as session:
        return office_by_code(session, office).pause_mode


def test_office_admin_sets_the_pause_mode(services, users):
    """Issue 14: whether a staff pause waits for a supervisor is the office's setting, on its page."""
    import re
    c = create_app(services=services, config={"TESTING": True}).test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").get_data(as_text=True)).group(1)
    assert c.post("/login", data={"username": "dpmk.admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    page = c.get("/admin/").get_data(as_text=True)
    assert 'name="pause_mode" value="approval" checked' in page and "Menunggu persetujuan atasan" in page
    assert c.post("/admin/pause-mode", data={"pause_mode": "immediate"}).status_code == 400  # no CSRF token
    assert _pause_mode(services, "dpmk") == "approval"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    bad = c.post("/admin/pause-mode", data={"pause_mode": "kadang", "csrf_token": token})
    assert bad.status_code == 400 and "Pilih cara jeda" in bad.get_data(as_text=True)
    assert _pause_mode(services, "dpmk") == "approval"
    assert c.post("/admin/pause-mode?office=dinsos", data={"pause_mode": "immediate", "csrf_token": token}
                  ).status_code == 302  # an office admin's office is theirs, whatever the URL says
    assert (_pause_mode(services, "dpmk"), _pause_mode(services, "dinsos")) == ("immediate", "approval")
    page = c.get("/admin/").get_data(as_text=True)
    assert 'name="pause_mode" value="immediate" checked' in page and "Cara jeda jam Mutu Baku disimpan." in page
    with services.sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.kind == "pause_mode_changed"))
        assert event.data == {"before": "approval", "after": "immediate"}
        assert event.user_id == user_by_name(session, "dpmk.admin").id
    assert client_for(services, "dpmk.penerima").post("/admin/pause-mode",
                                                      data={"pause_mode": "approval"}).status_code == 403
    assert _pause_mode(services, "dpmk") == "immediate"
    with services.sessions.begin() as session:
        user_by_name(session, "dpmk.admin").locale = "en"
    html = client_for(services, "dpmk.admin").get("/admin/").get_data(as_text=True)
    assert "How the Mutu Baku clock is paused" in html and "Stop at once, supervisors are told" in html


@pytest.mark.browser
def test_admin_page_screenshots(services, users, artifacts_dir, backend):
    if backend != "sqlite":
        pytest.skip("one screenshot run is enough (the page is the same on PostgreSQL)")
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
            for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
                page = browser.new_context(viewport=viewport, locale="id-ID").new_page()
                page.goto(f"{base}/login")
                page.fill("#username", "dpmk.admin")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{base}/admin/")
                page.fill("#group-name", f"Operator Arsip {name}")
                page.click("text=Buat grup")
                assert page.locator(f"text=Grup Operator Arsip {name} dibuat.").count() == 1
                page.screenshot(path=str(artifacts_dir / f"admin-office-{name}.png"), full_page=True)
            browser.close()
    finally:
        httpd.shutdown()
