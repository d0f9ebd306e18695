"""The delivery outbox against a real SMTP server (aiosmtpd) and both databases: a reminder
goes out only while its step is open, and a completion stops the sends in flight (issue 12,
item 8). The worker processes, kills and outages are in tests/test_workers.py."""
from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import deadlines, outbox
from engine.models import AuditEvent, Delivery, User

from .helpers import SmtpSink, open_task
from .sopdata import DPMK, STEP_DATA
from .test_workers import free_port, wait_for

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2026, 11, 23, 8, 0, tzinfo=WIB).astimezone(timezone.utc)
DUE = datetime(2026, 11, 23, 10, 0, tzinfo=WIB).astimezone(timezone.utc)  # warn and breach of step 1 both due


@pytest.fixture
def sink():
    server = SmtpSink(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings, sink):
    return dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=sink.port,
                               smtp_from="lajur@bantulkab.go.id", send_lease_seconds=30)


def _emails_due(services, demo, settings) -> tuple[int, list[int]]:
    """Step 1 of a DPMK instance, held by its Penerima, with its warning (to her) and breach
    (to her and the supervisors) fired by the tick: (task id, email delivery ids)."""
    with services.sessions.begin() as session:
        session.get(User, demo["dpmk.penerima"]).notify_channels = "inapp,email"
    rt = services.runtime
    rt.clock = lambda: START
    task = open_task(services, rt.start(demo["dpmk.penerima"], DPMK, "Uji pengingat"))
    rt.claim(demo["dpmk.penerima"], task.id)
    rt.clock = lambda: DUE
    ids: list[int] = []
    deadlines.tick(services.sessions, settings, rt.calendars, lambda: DUE, ids.extend)
    assert len(ids) >= 2
    return task.id, sorted(ids)


def _statuses(services, ids) -> list[str]:
    with services.sessions() as session:
        return [session.get(Delivery, i).status for i in sorted(ids)]


def _send_in_background(services, settings, ids) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(
        outbox.send_many(services.sessions, settings, ids, lambda: DUE)), daemon=True)
    thread.start()
    return thread, result


def test_a_completion_stops_the_send_in_flight(services, demo, mail_settings, sink):
    """The mail server is slow to answer RCPT; the step is completed meanwhile: the message
    that was being sent is not sent (the gate before DATA sees the cancelled delivery), nor
    are the others of the batch (each gate sees its cancelled delivery)."""
    task_id, ids = _emails_due(services, demo, mail_settings)
    sink.delays["rcpt"] = 2.0
    thread, result = _send_in_background(services, mail_settings, ids)
    wait_for(lambda: "RCPT" in sink.events, 10, "the send to reach RCPT")
    services.runtime.complete(demo["dpmk.penerima"], task_id, STEP_DATA[(DPMK, "step1")])
    thread.join(20)
    assert not thread.is_alive()
    assert sink.messages == [] and "DATA" not in sink.events
    assert set(_statuses(services, ids)) == {"cancelled"}
    assert result == {i: "cancelled" for i in ids}


def test_a_failed_attempt_of_a_completed_step_is_not_retried(services, demo, mail_settings, sink):
    """An attempt in flight when the step completes fails (the server does not answer RCPT
    within the 1 s command timeout of a 3 s lease): it does not go back to pending, and a
    later send finds nothing to send."""
    mail_settings = dataclasses.replace(mail_settings, send_lease_seconds=3)
    task_id, ids = _emails_due(services, demo, mail_settings)
    sink.delays["rcpt"] = 2.5
    thread, result = _send_in_background(services, mail_settings, ids[:1])
    wait_for(lambda: "RCPT" in sink.events, 10, "the send to reach RCPT")
    services.runtime.complete(demo["dpmk.penerima"], task_id, STEP_DATA[(DPMK, "step1")])
    thread.join(20)
    assert result == {ids[0]: "stale"}  # the failure was not recorded over the cancellation
    sink.delays["rcpt"] = 0.0  # the server is fine again
    later = lambda: DUE.replace(hour=DUE.hour + 1)  # noqa: E731 - past any backoff
    assert outbox.send_many(services.sessions, mail_settings, ids, later) == {}
    assert sink.messages == []
    assert set(_statuses(services, ids)) == {"cancelled"}


def test_one_smtp_session_per_batch_and_a_stable_message_id(services, demo, mail_settings, sink):
    """Each message is recorded sent right after DATA is accepted (before QUIT, which this
    server is slow to answer); all go over one connection; the Message-ID is the delivery's."""
    task_id, ids = _emails_due(services, demo, mail_settings)
    sink.delays["quit"] = 1.0
    thread, result = _send_in_background(services, mail_settings, ids)
    wait_for(lambda: "QUIT" in sink.events, 10, "QUIT")
    assert set(_statuses(services, ids)) == {"sent"}  # committed before QUIT is answered
    thread.join(10)
    assert result == {i: "sent" for i in ids}
    assert sink.events.count("QUIT") == 1
    assert sorted(m["Message-ID"] for m in sink.messages) == [
        f"<lajur-delivery-{i}@bantulkab.go.id>" for i in sorted(ids)]


def test_a_temporary_refusal_is_retried_and_a_permanent_one_is_not(services, demo, mail_settings, sink):
    task_id, ids = _emails_due(services, demo, mail_settings)
    sink.rcpt_reply = "451 4.3.0 try again later"
    assert outbox.send_many(services.sessions, mail_settings, ids[:1], lambda: DUE) == {ids[0]: "pending"}
    sink.rcpt_reply = "550 5.1.1 no such mailbox"
    assert outbox.send_many(services.sessions, mail_settings, ids[1:2], lambda: DUE) == {ids[1]: "failed"}
    assert sink.messages == []
    with services.sessions() as session:  # a failure is visible in the instance's trail
        event = session.scalar(select(AuditEvent).where(AuditEvent.kind == "reminder_failed"))
    assert event.human_task_id == task_id and event.data["delivery"] == ids[1]
    assert event.data["error"].startswith("recipient refused: 550")


def test_smtp_down_fails_the_batch_fast_and_retries_later(services, demo, mail_settings, sink):
    task_id, ids = _emails_due(services, demo, mail_settings)
    sink.stop()
    started = time.monotonic()
    assert outbox.send_many(services.sessions, mail_settings, ids, lambda: DUE) == {i: "pending" for i in ids}
    assert time.monotonic() - started < 5
    with services.sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
        assert {(d.attempts, d.status) for d in rows} == {(1, "pending")}
        assert all("SMTP 127.0.0.1" in d.last_error for d in rows)
