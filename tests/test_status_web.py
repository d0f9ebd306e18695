"""The administrators' status page (webui/status.py): the figures of `lajur status` from the
same engine function, admin-only, in Bahasa Indonesia and English, on SQLite and PostgreSQL;
and the page in Chromium at 1,280 and 390 px (screenshots in test-artifacts/status-*.png)."""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from engine import heartbeat
from engine.models import Deadline, Delivery

from .test_browser import browser, server, sign_in  # noqa: F401 (fixtures)
from .test_web import login, make_app, users  # noqa: F401 (users is a fixture)
from .test_workers import reminder_due_now


def beats(services, now):
    """A running tick and beat, a worker silent for five minutes."""
    with services.engine.begin() as conn:
        heartbeat.record(conn, "tick", "deadline", now - timedelta(seconds=1), {"fired": 0})
        heartbeat.record(conn, "beat", "beat@node-a", now - timedelta(seconds=2), {"pid": 4101})
        heartbeat.record(conn, "worker", "celery@node-b", now - timedelta(minutes=5), {"pid": 4202})


def figure(html: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html).group(1).strip()


def test_the_page_shows_what_lajur_status_reports(services, users):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    services.runtime.clock = lambda: now
    beats(services, now)
    # a backlog: two reminders fire an email each (one of them then failed), a third stays due
    first, second = reminder_due_now(services, users, "inapp,email"), reminder_due_now(services, users, "inapp,email")
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id.in_((first, second)), Deadline.level == "warn")
                        .values(due_at=now - timedelta(seconds=30)))
    # an installation with a mail server: email is a configured channel (without one, none is made)
    services.runtime.deadline_tick(dataclasses.replace(services.settings, smtp_host="smtp.bantulkab.go.id"),
                                   lambda ids: None)
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id == first, Deadline.level == "breach")
                        .values(status="pending", due_at=now - timedelta(seconds=42)))
        session.execute(update(Delivery).where(Delivery.human_task_id == first).values(status="failed"))
    app = make_app(services)
    admin = login(app, "admin")
    response = admin.get("/admin/status")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with services.engine.connect() as conn:
        lines, wrong = heartbeat.report(conn, services.settings, now)  # what `lajur status` prints
        found = heartbeat.status(conn, services.settings, now)
    assert f"tick lag: {found.tick_lag:.1f} s" in lines and found.tick_lag == 42.0
    assert figure(html, "tick-lag") == "42.0 dtk"
    assert f"outbox: pending {found.outbox['pending']}, sending 0, failed {found.failed}" in lines
    assert figure(html, "outbox-depth") == str(found.outbox_depth) and found.outbox_depth >= 1
    assert figure(html, "failed") == str(found.failed) and found.failed >= 1
    rows = dict(re.findall(r'data-kind="(\w+)" data-stale="(\w+)"', html))
    assert rows == {"tick": "no", "beat": "no", "worker": "yes"}
    assert wrong == ["worker celery@node-b silent for 300 s (last seen %s UTC)"
                     % (now - timedelta(minutes=5)).strftime("%H:%M:%S")]
    assert "Perlu perhatian" in html and "celery@node-b diam selama 5 menit" in html
    assert "beat@node-a" in html and "pid=4101" in html and "2 detik lalu" in html
    admin.post("/profile", data={"locale": "en"})
    english = admin.get("/admin/status").get_data(as_text=True)
    assert "System status" in english and "Needs attention" in english and "Silent" in english
    assert "Worker celery@node-b silent for 5 min" in english and "2 seconds ago" in english
    assert "Status Sistem" not in english


def test_only_admins_see_it(services, users):
    app = make_app(services)
    for username in ("dpmk.penerima", "dpmk.kasubbag", "dpmk.sekdin"):
        client = login(app, username)
        assert client.get("/admin/status").status_code == 403, username
        assert b'href="/admin/status"' not in client.get("/inbox").data
    assert app.test_client().get("/admin/status").status_code == 302  # to the sign-in page
    assert b'href="/admin/status"' in login(app, "admin").get("/inbox").data


def test_no_heartbeat_yet_is_a_problem(services, users):
    html = login(make_app(services), "admin").get("/admin/status").get_data(as_text=True)
    assert "Tick tenggat belum pernah berjalan" in html and "Belum ada detak" in html


FITS = "() => ({page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth})"


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_status_page_in_a_browser(server, browser, artifacts_dir, width):  # noqa: F811
    base, services, _tmp = server
    beats(services, datetime.now(timezone.utc))
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID",
                                  is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    try:
        sign_in(page, base, "admin")
        page.click("nav a:has-text('Status')")
        page.wait_for_url(f"{base}/admin/status")
        assert page.locator("tr[data-stale=yes]").count() == 1
        assert page.locator("tr[data-stale=yes] .badge").inner_text().strip().endswith("Diam")
        page.screenshot(path=str(artifacts_dir / f"status-{width}.png"), full_page=True)
        size = page.evaluate(FITS)
        assert size["page"] == size["viewport"], size  # no sideways scrolling
    finally:
        context.close()
