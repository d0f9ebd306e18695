"""The web layer's per-request reads (webui/reads.py) and the step-post path, on SQLite and PostgreSQL.

The reads are prebuilt statements on one connection per request; these tests pin what they
must keep doing: the same answers as the engine's queries, the same access rules, and one
statement around a completion.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import event, select

from engine.models import HumanTask, User
from engine.queries import inbox_counts, task_head, user_view
from webui import reads

from .sopdata import DPMK, STEP_DATA
from .test_web import (_uploaded_sha, app, instance_of, login, open_task, start, to_form,  # noqa: F401 (fixtures)
                       users, work)


def _step2(app, services):
    """A DPMK instance waiting at step 2 (Kasubbag); return its open task id."""
    penerima = login(app, "dpmk.penerima")
    first = start(penerima, DPMK, "Berita jalur cepat")
    iid = instance_of(services, first)
    work(app, services, iid, DPMK, "step1", _uploaded_sha(penerima, services, first, "bukti_multimedia"))
    return open_task(services, iid).id


def _step2_form(services, users, task_id):
    schema = services.runtime.task_detail(users["dpmk.kasubbag"], task_id)["schema"]
    return {"action": "claim_complete", **to_form(schema, STEP_DATA[(DPMK, "step2")])}


def test_reads_match_the_engine_queries(app, services, users):
    task_id = _step2(app, services)
    with services.sessions.begin() as session:
        session.get(HumanTask, task_id).due_at = datetime.now(timezone.utc) - timedelta(minutes=5)
    now = datetime.now(timezone.utc)
    for username in ("dpmk.kasubbag", "dpmk.penerima", "dpmk.sekdin", "dinsos.ketua", "admin"):
        if username not in users:
            continue
        with services.sessions() as session:  # (not open while reading: SQLite's BEGIN takes the write lock)
            view = user_view(session, users[username])
            counts = inbox_counts(session, view, now) if view.office_id is not None else None
            head = task_head(session, task_id)
        with app.test_request_context("/"):
            assert reads.user_view(users[username]) == view
            assert (reads.inbox_counts(view, now) if view.office_id is not None else None) == counts
            assert reads.task_head(task_id) == head
    with app.test_request_context("/"):
        assert reads.task_head(999999) is None and reads.user_view(999999) is None


def test_a_step_post_reads_once_around_the_engine(app, services, users):
    """User and task head in one statement; the engine's own statements are not counted."""
    task_id = _step2(app, services)
    client = login(app, "dpmk.kasubbag")
    form = _step2_form(services, users, task_id)
    outside, inside = [], [False]
    complete = services.runtime.complete

    def counted(*args, **kwargs):
        inside[0] = True
        try:
            return complete(*args, **kwargs)
        finally:
            inside[0] = False

    def count(conn, cursor, statement, *rest):
        if not inside[0] and not statement.startswith("BEGIN"):  # SQLite: engine.db begins every transaction
            outside.append(statement)

    services.runtime.complete = counted
    event.listen(services.engine, "before_cursor_execute", count)
    try:
        response = client.post(f"/tasks/{task_id}", data=form)
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
        del services.runtime.complete
    assert response.status_code == 302 and response.location.endswith("/inbox")
    assert len(outside) == 1 and "human_task" in outside[0] and "user_account" in outside[0], outside
    with services.sessions() as session:
        assert session.get(HumanTask, task_id).state == "completed"


def test_posts_without_following_the_redirect_keep_one_message(app, services, users):
    """A script that never follows the redirect must not grow the session cookie per post."""
    client = login(app, "dpmk.kasubbag")
    sizes = []
    for _ in range(3):
        task_id = _step2(app, services)
        response = client.post(f"/tasks/{task_id}", data=_step2_form(services, users, task_id))
        assert response.status_code == 302
        sizes.append(len(client.get_cookie("lajur_session").value))
    assert sizes[0] == sizes[1] == sizes[2]
    page = client.get("/inbox").text
    assert page.count("Langkah selesai.") == 1
    assert "Langkah selesai." not in client.get("/inbox").text


def test_a_deactivated_user_is_signed_out_and_unknown_tasks_are_404(app, services, users):
    client = login(app, "dpmk.kasubbag")
    assert client.post("/tasks/999999", data={"action": "complete"}).status_code == 404
    with services.sessions.begin() as session:
        session.scalars(select(User).where(User.username == "dpmk.kasubbag")).one().active = False
    assert client.get("/inbox").status_code == 302
    response = client.post("/tasks/1", data={"action": "complete"})
    assert response.status_code == 302 and "/login" in response.location


def test_wib_dates_are_written_as_babel_writes_them(app):
    """webui.i18n writes the two date formats itself; they must stay Babel's text in both languages."""
    from babel.dates import format_datetime

    from webui.i18n import WIB, WIB_PATTERNS, format_wib, format_wib_short
    start_at = datetime(2026, 1, 1, 16, 59, tzinfo=timezone.utc)
    moments = [start_at + timedelta(hours=37 * i, minutes=7 * i) for i in range(300)]
    moments.append(datetime(2026, 12, 31, 17, 0))  # naive (SQLite): UTC, already 1 January in WIB
    for lang in ("id", "en"):
        with app.test_request_context(f"/?lang={lang}"):
            for moment in moments:
                aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
                for kind, ours in (("long", format_wib), ("short", format_wib_short)):
                    expected = format_datetime(aware, WIB_PATTERNS[kind][lang], tzinfo=WIB, locale=lang) + " WIB"
                    assert ours(moment) == expected
            assert format_wib(None) == format_wib_short(None) == "–"
