"""The in-app notifications page through Flask's test client, on SQLite and PostgreSQL.

The notifications are made the real way: an instance is started, its step claimed, and
the deadline tick (called directly with a controlled clock) fires the warning and the
breach. CSRF protection is on, as in production.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import tick
from engine.models import Notification

from .helpers import open_task
from .sopdata import DPMK
from .test_web import PASSWORD, make_app, users  # noqa: F401  (users is a fixture)

WIB = ZoneInfo("Asia/Jakarta")


def wib(*args) -> datetime:
    return datetime(*args, tzinfo=WIB).astimezone(timezone.utc)


@pytest.fixture
def fired(services, users):  # noqa: F811
    """Penerima's step past its warning and its breach: two in-app notifications for her."""
    rt = services.runtime
    rt.clock = lambda: wib(2026, 11, 23, 8, 0)
    iid = rt.start(users["dpmk.penerima"], DPMK, "Berita Musrenbang")
    task = open_task(services, iid)
    rt.claim(users["dpmk.penerima"], task.id)
    when = wib(2026, 11, 23, 10, 30)
    rt.clock = lambda: when
    result = tick.tick(services.sessions, services.settings, rt.calendars, lambda: when, lambda ids: None)
    assert result.fired == 2
    with services.sessions() as session:
        mine = list(session.scalars(select(Notification).where(Notification.user_id == users["dpmk.penerima"])
                                    .order_by(Notification.id)))
        others = list(session.scalars(select(Notification).where(Notification.user_id != users["dpmk.penerima"])))
    assert [n.level for n in mine] == ["warn", "breach"] and all(n.inapp for n in mine)
    assert others, "the breach also goes to the office's supervisors"
    return {"task": task, "mine": mine, "others": others}


@pytest.fixture
def app(services, users):  # noqa: F811
    return make_app(services, WTF_CSRF_ENABLED=True)


def sign_in(app, username):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.text[:500]
    return client


def page_token(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def nav_badge(html: str) -> int | None:
    """The unread count in the header's "Notifikasi" link, or None without a badge."""
    link = re.search(r'<a href="/notifications/"[^>]*>Notifikasi(.*?)</a>', html, re.S)
    assert link, "the header has a Notifikasi link"
    badge = re.search(r'<span class="badge badge-count" aria-label="(\d+) belum dibaca">(\d+)</span>', link.group(1))
    if not badge:
        return None
    assert badge.group(1) == badge.group(2)
    return int(badge.group(2))


def unread_of(services, user_id) -> list[int]:
    with services.sessions() as session:
        return list(session.scalars(select(Notification.id).where(Notification.user_id == user_id,
                                                                  Notification.read_at.is_(None))
                                    .order_by(Notification.id)))


def test_anonymous_goes_to_login(app, fired, services, users):  # noqa: F811
    client = app.test_client()
    for path in ("/notifications/", "/notifications/?unread=1&page=2"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location, path
    htmx = client.get("/notifications/", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and "/login" in htmx.headers["HX-Redirect"]
    assert client.post("/notifications/read", data={"id": str(fired["mine"][0].id)}).status_code == 400  # CSRF
    assert len(unread_of(services, users["dpmk.penerima"])) == 2
    no_csrf_app = make_app(services)
    response = no_csrf_app.test_client().post("/notifications/read", data={"id": str(fired["mine"][0].id)})
    assert response.status_code == 302 and "/login" in response.location
    assert len(unread_of(services, users["dpmk.penerima"])) == 2


def test_list_badge_and_mark_read(app, fired, services, users):  # noqa: F811
    warn, breach = fired["mine"]
    client = sign_in(app, "dpmk.penerima")
    page = client.get("/notifications/")
    assert page.status_code == 200
    html = page.text
    assert nav_badge(html) == 2 and nav_badge(client.get("/inbox").text) == 2
    # newest first; the page shows the subject without the email's "[Lajur] " tag
    assert html.index(breach.subject.removeprefix("[Lajur] ")) < html.index(warn.subject.removeprefix("[Lajur] "))
    assert breach.subject.startswith("[Lajur] Lewat Mutu Baku:") and warn.subject.startswith("[Lajur] Peringatan:")
    assert "Yth. Rina Wulandari" in html and f"/tasks/{fired['task'].id}" in html
    assert html.count('class="notification unread') == 2
    for other in fired["others"]:  # a supervisor's copy of the breach is not in her list
        assert f'name="id" value="{other.id}"' not in html

    # without the CSRF token: refused, nothing changes
    refused = client.post("/notifications/read", data={"id": str(warn.id)})
    assert refused.status_code == 400 and unread_of(services, users["dpmk.penerima"]) == [warn.id, breach.id]

    token = page_token(html)
    done = client.post("/notifications/read", data={"id": str(warn.id), "csrf_token": token,
                                                    "next": "/notifications/?unread=1"})
    assert done.status_code == 302 and done.location == "/notifications/?unread=1"
    assert unread_of(services, users["dpmk.penerima"]) == [breach.id]
    unread_page = client.get(done.location).text
    assert nav_badge(unread_page) == 1
    assert breach.subject[8:] in unread_page and warn.subject[8:] not in unread_page  # shown without "[Lajur] "
    everything = client.get("/notifications/").text
    assert warn.subject[8:] in everything and everything.count('class="notification unread') == 1

    # marking again an already read one of her own is fine; an off-site `next` is not followed
    again = client.post("/notifications/read", data={"id": str(warn.id), "csrf_token": token,
                                                     "next": "//evil.example/x"})
    assert again.status_code == 302 and again.location == "/notifications/"

    # "mark all read"
    assert client.post("/notifications/read", data={"csrf_token": token}).status_code == 302
    assert unread_of(services, users["dpmk.penerima"]) == []
    assert nav_badge(client.get("/notifications/").text) is None
    # the supervisors' copies are untouched by her "mark all"
    for other in fired["others"]:
        assert other.id in unread_of(services, other.user_id)


def test_cannot_mark_another_users_notification(app, fired, services, users):  # noqa: F811
    warn, breach = fired["mine"]
    other = fired["others"][0]
    with services.sessions() as session:
        from engine.models import User
        other_name = session.get(User, other.user_id).username
    client = sign_in(app, other_name)
    html = client.get("/notifications/").text
    assert warn.subject[8:] not in html  # her warning is not in his list
    token = page_token(html)
    for ids in ([str(warn.id)], [str(other.id), str(breach.id)], ["999999"], ["x"]):
        response = client.post("/notifications/read", data={"id": ids, "csrf_token": token})
        assert response.status_code == 404, ids
    assert unread_of(services, users["dpmk.penerima"]) == [warn.id, breach.id]
    assert other.id in unread_of(services, other.user_id)  # a refused batch changes none of it
    # his own one he can mark
    assert client.post("/notifications/read", data={"id": str(other.id), "csrf_token": token}).status_code == 302
    assert other.id not in unread_of(services, other.user_id)
