"""The office's webhook pages: an office administrator subscribes (the secret shown once),
sees the delivery log of a real receiver and sends again (POST with CSRF); other users get
403, other offices' subscriptions 404; screenshots at desktop and phone width."""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import tick
from engine.models import Delivery, WebhookSubscription
from engine.outbox import send_many
from webui import create_app

from .test_admin_web import PASSWORD, client_for, users  # noqa: F401 - the fixture
from .test_webhooks import LATER, complete_step1
from .webhook_receiver import receiver, verify


@pytest.fixture
def hook():
    with receiver([500]) as server:
        yield server


def _secret(html: str) -> str:
    found = re.search(r'id="new-secret">(whsec_[A-Za-z0-9+/=]+)<', html)
    assert found, html[:2000]
    return found.group(1)


def test_office_admin_subscribes_sees_the_log_and_sends_again(services, users, hook):
    services.settings = dataclasses.replace(services.settings, webhook_allow_private=True)
    settings = services.settings
    c = client_for(services, "dpmk.admin")
    page = c.get("/admin/webhooks/")
    assert page.status_code == 200 and "Belum ada webhook" in page.get_data(as_text=True)
    made = c.post("/admin/webhooks/", data={"url": hook.url, "events": ["step.completed", "step.ready"],
                                            "description": "Gateway <WhatsApp>"})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and "Gateway &lt;WhatsApp&gt;" in html
    secret = _secret(html)
    again = c.get("/admin/webhooks/").get_data(as_text=True)
    assert secret not in again and secret[6:12] in again  # shown once; afterwards only its hint
    with services.sessions() as session:
        sub = session.scalar(select(WebhookSubscription))
        assert secret not in sub.secret_box

    complete_step1(services, users)
    now = LATER + timedelta(seconds=1)
    ids = tick.due_for_enqueue(services.sessions, settings, now)
    send_many(services.sessions, settings, ids, lambda: now)  # the first answer is a 500
    later = now + timedelta(minutes=20)
    send_many(services.sessions, settings, tick.due_for_enqueue(services.sessions, settings, later), lambda: later)
    log = c.get(f"/admin/webhooks/{sub.id}")
    text = log.get_data(as_text=True)
    assert log.status_code == 200 and "500" in text and "HTTP 500" in text and "200" in text
    assert "Langkah selesai" in text and text.count("/resend\"") == 3
    completed = [d.id for d in _deliveries(services, sub.id) if d.event == "step.completed"][0]
    sent = len(hook.requests)
    r = c.post(f"/admin/webhooks/{sub.id}/deliveries/{completed}/resend")
    assert r.status_code == 302
    c.get(r.headers["Location"])  # shows (and clears) the flash of the first
    twice = c.post(f"/admin/webhooks/{sub.id}/deliveries/{completed}/resend")
    assert twice.status_code == 302 and "already queued" in c.get(twice.headers["Location"]).get_data(as_text=True)
    real_now = datetime.now(timezone.utc) + timedelta(seconds=1)  # the page queued it at the real time
    ids = tick.due_for_enqueue(services.sessions, settings, real_now)
    assert ids == [completed]
    send_many(services.sessions, settings, ids, lambda: real_now)
    assert len(hook.requests) == sent + 1
    headers, body, _ = hook.requests[-1]
    assert verify(secret, headers, body)["type"] == "step.completed"

    assert c.post(f"/admin/webhooks/{sub.id}/active", data={"active": "0"}).status_code == 302
    assert "dijeda" in c.get("/admin/webhooks/").get_data(as_text=True)
    rotated = c.post(f"/admin/webhooks/{sub.id}/rotate")
    assert rotated.status_code == 200 and _secret(rotated.get_data(as_text=True)) != secret
    assert c.post(f"/admin/webhooks/{sub.id}/remove").status_code == 302
    with services.sessions() as session:
        assert session.scalar(select(WebhookSubscription)) is None
        assert session.scalar(select(Delivery).where(Delivery.subscription_id.is_not(None))) is None


def _deliveries(services, sub_id):
    with services.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.subscription_id == sub_id).order_by(Delivery.id)))


def test_bad_input_is_a_field_error_and_changes_nothing(services, users):
    c = client_for(services, "dpmk.admin")
    bad = c.post("/admin/webhooks/", data={"url": "ftp://x.example/", "events": ["step.ready"]})
    assert bad.status_code == 422 and "http:// or https://" in bad.get_data(as_text=True)
    none = c.post("/admin/webhooks/", data={"url": "https://x.example/", "events": ["nope"]})
    assert none.status_code == 422 and 'aria-invalid="true"' in none.get_data(as_text=True)
    assert c.post("/admin/webhooks/999999/remove").status_code == 404
    assert c.get("/admin/webhooks/999999").status_code == 404
    assert c.post("/admin/webhooks/1/deliveries/99999999999999999999999/resend").status_code in (400, 404)
    with services.sessions() as session:
        assert session.scalar(select(WebhookSubscription)) is None


def test_non_admins_get_403_and_other_offices_404(services, users):
    admin = client_for(services, "dpmk.admin")
    admin.post("/admin/webhooks/", data={"url": "https://cms.example/h", "events": ["step.ready"]})
    with services.sessions() as session:
        sub_id = session.scalar(select(WebhookSubscription.id))
    staff = client_for(services, "dpmk.penerima")
    assert staff.get("/admin/webhooks/").status_code == 403
    assert staff.post("/admin/webhooks/", data={"url": "https://evil.example/", "events": ["step.ready"]}).status_code == 403
    assert staff.get(f"/admin/webhooks/{sub_id}").status_code == 403
    assert staff.post(f"/admin/webhooks/{sub_id}/remove").status_code == 403
    supervisor = client_for(services, "dpmk.kasubbag")
    assert supervisor.get("/admin/webhooks/").status_code == 403
    with services.sessions.begin() as session:
        from engine.accounts import user_by_name
        user_by_name(session, "dinsos.ketua").roles = "staff,office_admin"
    other = client_for(services, "dinsos.ketua")
    assert other.get("/admin/webhooks/").status_code == 200
    assert "cms.example" not in other.get("/admin/webhooks/").get_data(as_text=True)
    assert other.get(f"/admin/webhooks/{sub_id}").status_code == 404
    assert other.post(f"/admin/webhooks/{sub_id}/remove").status_code == 404
    assert other.post(f"/admin/webhooks/{sub_id}/active", data={"active": "0"}).status_code == 404
    regency = client_for(services, "admin")
    assert "cms.example" in regency.get("/admin/webhooks/?office=dpmk").get_data(as_text=True)
    with services.sessions() as session:
        assert session.get(WebhookSubscription, sub_id).active


def test_the_forms_need_the_csrf_token(services, users):
    app = create_app(services=services, config={"TESTING": True})
    c = app.test_client()
    login = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert c.post("/login", data={"username": "dpmk.admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    assert c.post("/admin/webhooks/", data={"url": "https://cms.example/h", "events": ["step.ready"]}).status_code == 400
    page = c.get("/admin/webhooks/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    ok = c.post("/admin/webhooks/", data={"url": "https://cms.example/h", "events": ["step.ready"], "csrf_token": token})
    assert ok.status_code == 200 and "new-secret" in ok.get_data(as_text=True)


def test_english(services, users):
    from engine.accounts import user_by_name
    with services.sessions.begin() as session:
        user_by_name(session, "dpmk.admin").locale = "en"
    html = client_for(services, "dpmk.admin").get("/admin/webhooks/").get_data(as_text=True)
    assert "New webhook" in html and "Step completed" in html


@pytest.mark.browser
def test_webhook_pages_screenshots(services, users, artifacts_dir, backend, hook):
    """Subscribe through the form, see the log of a real receiver (500, then 200) and press
    "Kirim ulang", in Chromium at desktop and phone width."""
    if backend != "sqlite":
        pytest.skip("one screenshot run is enough (the page is the same on PostgreSQL)")
    import threading

    from werkzeug.serving import make_server

    from .test_browser import ARGS, CHROMIUM, _need_chromium
    _need_chromium()
    from playwright.sync_api import sync_playwright
    services.settings = dataclasses.replace(services.settings, webhook_allow_private=True)
    app = create_app(services=services, config={"LAJUR_LOGIN_LIMIT": "1000/minute"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            for n, (name, viewport) in enumerate((("desktop", {"width": 1280, "height": 900}),
                                                  ("phone", {"width": 390, "height": 844}))):
                page = browser.new_context(viewport=viewport, locale="id-ID").new_page()
                page.goto(f"{base}/login")
                page.fill("#username", "dpmk.admin")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{base}/admin/")
                page.click("text=Webhook peristiwa kantor ini")
                page.fill("#hook-url", hook.url + f"?{name}")
                page.fill("#hook-desc", f"Gateway WhatsApp ({name})")
                page.click("text=Buat webhook")
                secret = page.locator("#new-secret").inner_text()
                assert secret.startswith("whsec_")
                page.screenshot(path=str(artifacts_dir / f"webhooks-{name}.png"), full_page=True)
                with services.sessions() as session:  # the desktop's subscription: its log has lines
                    sub_id = session.scalar(select(WebhookSubscription.id).order_by(WebhookSubscription.id))
                if n == 0:
                    hook.statuses[:] = [500]
                    complete_step1(services, users)
                    now = datetime.now(timezone.utc) + timedelta(days=30)
                    for i in range(2):  # the 500, then the retry after its backoff
                        at = now + timedelta(hours=i)
                        send_many(services.sessions, services.settings,
                                  tick.due_for_enqueue(services.sessions, services.settings, at), lambda: at)
                page.goto(f"{base}/admin/webhooks/{sub_id}")
                if n == 0:
                    assert page.locator("text=HTTP 500").count() == 1
                    page.locator("button:has-text('Kirim ulang')").first.click()
                    assert page.locator("text=Dikirim ulang: masuk antrean pengiriman.").count() == 1
                page.screenshot(path=str(artifacts_dir / f"webhook-log-{name}.png"), full_page=True)
            browser.close()
    finally:
        httpd.shutdown()
