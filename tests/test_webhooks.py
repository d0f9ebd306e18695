"""Event webhooks (issue 13) against a real HTTP receiver, on both databases: the deliveries
of an event are recorded with its audit row, go out through the outbox signed as Standard
Webhooks says, are retried, logged, sent again on request, kept to their office, and never
sent to a private address unless the installation allows it."""
from __future__ import annotations

import dataclasses
import time
import re
from pathlib import Path
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import tick
from engine.errors import Conflict, Forbidden, FormInvalid, NotFound
from engine.models import AuditEvent, Delivery, User, WebhookSubscription
from engine.outbox import send_many
from engine.webhooks import secrets, signing, subscriptions
from engine.webhooks.events import EVENTS

from standardwebhooks.webhooks import Webhook

from .helpers import open_task
from .test_workers import wait_for
from .sopdata import DPMK, STEP_DATA
from .webhook_receiver import receiver, verify

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2026, 11, 23, 8, 0, tzinfo=WIB).astimezone(timezone.utc)  # a Monday
LATER = START + timedelta(minutes=30)


@pytest.fixture
def hook():
    with receiver() as server:
        yield server


@pytest.fixture
def open_settings(settings):
    """The installation allows private receivers (the test's is on 127.0.0.1)."""
    return dataclasses.replace(settings, webhook_allow_private=True, backoff_seconds=1, backoff_max_seconds=1)


def readme_verify():
    """The verification snippet of README.md's "Event webhooks" section, as a receiver copies it."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"```python\n(import base64, hashlib, hmac.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace["verify"]


def subscribe(services, settings, office_code: str, url: str, events=tuple(EVENTS)) -> tuple[int, str]:
    with services.sessions.begin() as session:
        office_id = _office_id(session, office_code)
        sub, secret = subscriptions.add(session, settings, office_id, url, list(events), "uji", None, START)
        return sub.id, secret


def _office_id(session, code):
    from engine.accounts import office_by_code
    return office_by_code(session, code).id


def deliveries(services, sub_id) -> list[Delivery]:
    with services.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.subscription_id == sub_id).order_by(Delivery.id)))


def due_ids(services, settings, now) -> list[int]:
    return tick.due_for_enqueue(services.sessions, settings, now)


def complete_step1(services, demo, office_user="dpmk.penerima") -> tuple[int, int]:
    rt = services.runtime
    rt.clock = lambda: START
    iid = rt.start(demo[office_user], DPMK, "Uji webhook")
    task = open_task(services, iid)
    rt.clock = lambda: LATER
    rt.complete(demo[office_user], task.id, STEP_DATA[(DPMK, "step1")])
    return iid, task.id


def test_a_completed_step_gives_one_signed_delivery_per_subscription(services, demo, open_settings, hook):
    completed, completed_secret = subscribe(services, open_settings, "dpmk", hook.url + "?s=1", ["step.completed"])
    everything, everything_secret = subscribe(services, open_settings, "dpmk", hook.url + "?s=2")
    other_office, _ = subscribe(services, open_settings, "dinsos", hook.url + "?s=3")
    iid, task_id = complete_step1(services, demo)

    # recorded with the audit rows: one delivery per event per matching subscription, none for dinsos
    assert [d.event for d in deliveries(services, completed)] == ["step.completed"]
    assert [d.event for d in deliveries(services, everything)] == [
        "instance.started", "step.ready", "step.completed", "step.ready"]
    assert deliveries(services, other_office) == []

    now = LATER + timedelta(seconds=1)
    ids = due_ids(services, open_settings, now)
    assert len(ids) == 5
    assert set(send_many(services.sessions, open_settings, ids, lambda: now).values()) == {"sent"}
    # nothing more to send: each event went out once per subscription
    assert due_ids(services, open_settings, now + timedelta(minutes=5)) == []
    assert len(hook.requests) == 5

    by_sub = {"s=1": [], "s=2": []}
    for headers, body, path in hook.requests:
        by_sub[path.split("?")[1]].append((headers, body))
    (headers, body), = by_sub["s=1"]
    event = verify(completed_secret, headers, body)
    assert event["type"] == "step.completed" and event["data"]["task_id"] == task_id
    assert event["data"]["instance_id"] == iid and event["data"]["step"] == "step1"
    assert event["data"]["user_id"] == demo["dpmk.penerima"] and "nomor_agenda" not in body.decode()
    assert headers["webhook-id"] == event["id"] and headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(timezone.utc).timestamp()) < 60
    with pytest.raises(ValueError):
        verify(everything_secret, headers, body)  # another subscription's secret does not verify it
    with pytest.raises(ValueError):
        verify(completed_secret, headers, body.replace(b"step1", b"step2"))
    types = [verify(everything_secret, h, b)["type"] for h, b in by_sub["s=2"]]
    assert sorted(types) == sorted(["instance.started", "step.ready", "step.completed", "step.ready"])
    # the same event id in both subscriptions' copies: one idempotency key per event
    ids_of = {verify(everything_secret, h, b)["type"] + str(i): h["webhook-id"] for i, (h, b) in enumerate(by_sub["s=2"])}
    assert headers["webhook-id"] in ids_of.values()
    # the reference implementation of Standard Webhooks and README's snippet agree
    assert Webhook(completed_secret).verify(body, headers)["id"] == headers["webhook-id"]
    assert readme_verify()(completed_secret, headers, body)["type"] == "step.completed"
    with pytest.raises(ValueError):
        readme_verify()(everything_secret, headers, body)
    # the engine's own check agrees with the receiver's
    assert signing.verify(completed_secret, headers["webhook-id"], headers["webhook-timestamp"], body,
                          headers["webhook-signature"])
    with services.sessions() as session:
        audit_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.human_task_id == task_id,
                                                                   AuditEvent.kind == "task_completed"))
    assert headers["webhook-id"] == "msg_" + audit_hash[:32]  # traceable to the audit trail


def test_500_then_200_is_retried_and_the_log_shows_both_attempts(services, demo, open_settings):
    with receiver([500]) as hook:
        sub, secret = subscribe(services, open_settings, "dpmk", hook.url, ["step.completed"])
        complete_step1(services, demo)
        now = LATER + timedelta(seconds=1)
        (delivery_id,) = due_ids(services, open_settings, now)
        assert send_many(services.sessions, open_settings, [delivery_id], lambda: now) == {delivery_id: "pending"}
        assert due_ids(services, open_settings, now) == []  # waits for its backoff
        later = now + timedelta(seconds=2)
        assert due_ids(services, open_settings, later) == [delivery_id]
        assert send_many(services.sessions, open_settings, [delivery_id], lambda: later) == {delivery_id: "sent"}
        assert len(hook.requests) == 2
        (h1, b1, _), (h2, b2, _) = hook.requests
        assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2  # the same event both times
        verify(secret, h2, b2)
    with services.sessions() as session:
        lines = subscriptions.log(session, sub, None)
    assert [(line.attempt, line.status_code, line.status) for line in lines] == [(2, 200, "sent"), (1, 500, "sent")]
    assert lines[1].error == "HTTP 500" and lines[0].error is None and lines[0].event == "step.completed"


def test_send_again_requeues_through_the_outbox(services, demo, open_settings, hook):
    sub, secret = subscribe(services, open_settings, "dpmk", hook.url, ["step.completed"])
    complete_step1(services, demo)
    now = LATER + timedelta(seconds=1)
    (delivery_id,) = due_ids(services, open_settings, now)
    send_many(services.sessions, open_settings, [delivery_id], lambda: now)
    with services.sessions.begin() as session:
        admin = session.get(User, demo["admin"])
        subscriptions.send_again(session, sub, delivery_id, admin, now)
    with pytest.raises(Conflict):  # already queued: not twice
        with services.sessions.begin() as session:
            subscriptions.send_again(session, sub, delivery_id, None, now)
    assert due_ids(services, open_settings, now) == [delivery_id]
    assert send_many(services.sessions, open_settings, [delivery_id], lambda: now) == {delivery_id: "sent"}
    assert len(hook.requests) == 2 and hook.requests[0][0]["webhook-id"] == hook.requests[1][0]["webhook-id"]
    verify(secret, hook.requests[1][0], hook.requests[1][1])
    with services.sessions() as session:
        assert [line.attempt for line in subscriptions.log(session, sub, None)] == [2, 1]
        assert session.scalar(select(AuditEvent.kind).where(AuditEvent.kind == "webhook_resent")) == "webhook_resent"


def test_offices_are_kept_apart(services, demo, open_settings, hook):
    """A subscription of DPMK never receives Dinas Sosial's events, and Dinas Sosial's people
    cannot see, change or resend DPMK's subscriptions."""
    dinsos_sub, _ = subscribe(services, open_settings, "dinsos", hook.url)
    dpmk_sub, _ = subscribe(services, open_settings, "dpmk", hook.url, ["step.completed"])
    complete_step1(services, demo)
    assert deliveries(services, dinsos_sub) == []
    dpmk_delivery = deliveries(services, dpmk_sub)[0].id
    with services.sessions.begin() as session:
        user = session.get(User, demo["dinsos.ketua"])
        user.roles = "staff,supervisor,office_admin"
    with services.sessions() as session:
        dinsos_admin = session.get(User, demo["dinsos.ketua"])
        with pytest.raises(NotFound):
            subscriptions.log(session, dpmk_sub, dinsos_admin)
        with pytest.raises(Forbidden):
            subscriptions.list_for(session, _office_id(session, "dpmk"), dinsos_admin)
        assert [s.id for s in subscriptions.list_for(session, _office_id(session, "dinsos"), dinsos_admin)] == [dinsos_sub]
        with pytest.raises(NotFound):
            subscriptions.send_again(session, dpmk_sub, dpmk_delivery, dinsos_admin, LATER)
        with pytest.raises(Forbidden):  # staff without office_admin
            subscriptions.list_for(session, _office_id(session, "dpmk"), session.get(User, demo["dpmk.penerima"]))


def test_a_private_address_is_refused_unless_the_installation_allows_it(services, demo, settings, hook):
    sub, _ = subscribe(services, settings, "dpmk", hook.url, ["step.completed"])
    complete_step1(services, demo)
    now = LATER + timedelta(seconds=1)
    (delivery_id,) = due_ids(services, settings, now)
    assert send_many(services.sessions, settings, [delivery_id], lambda: now) == {delivery_id: "failed"}
    assert hook.requests == []
    with services.sessions() as session:
        (line,) = subscriptions.log(session, sub, None)
        assert "private or loopback" in line.error and line.status_code is None
        failed = session.scalar(select(AuditEvent).where(AuditEvent.kind == "webhook_failed"))
        assert failed.office_id == _office_id(session, "dpmk")


def test_a_redirect_is_not_followed(services, demo, open_settings):
    with receiver([302]) as hook:
        sub, _ = subscribe(services, open_settings, "dpmk", hook.url, ["step.completed"])
        complete_step1(services, demo)
        now = LATER + timedelta(seconds=1)
        (delivery_id,) = due_ids(services, open_settings, now)
        assert send_many(services.sessions, open_settings, [delivery_id], lambda: now) == {delivery_id: "failed"}
        assert len(hook.requests) == 1  # not the Location it pointed to
    with services.sessions() as session:
        (line,) = subscriptions.log(session, sub, None)
    assert line.status_code == 302


def test_a_paused_subscription_gets_no_new_events_and_its_queued_sends_stop(services, demo, open_settings, hook):
    sub, _ = subscribe(services, open_settings, "dpmk", hook.url)
    rt = services.runtime
    rt.clock = lambda: START
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Uji jeda")
    queued = [d.id for d in deliveries(services, sub)]
    assert len(queued) == 2  # instance.started, step.ready
    with services.sessions.begin() as session:
        subscriptions.set_active(session, sub, False, None, START)
    task = open_task(services, iid)
    rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])
    assert [d.id for d in deliveries(services, sub)] == queued  # nothing new
    assert send_many(services.sessions, open_settings, queued, lambda: LATER) == {}
    assert {d.status for d in deliveries(services, sub)} == {"cancelled"} and hook.requests == []


def test_step_late_follows_the_breach_reminder(services, demo, open_settings, hook):
    sub, _ = subscribe(services, open_settings, "dpmk", hook.url, ["step.late"])
    rt = services.runtime
    rt.clock = lambda: START
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Uji terlambat")
    task = open_task(services, iid)
    due = START + timedelta(hours=3)
    tick.tick(services.sessions, open_settings, rt.calendars, lambda: due, lambda ids: None)
    (late,) = deliveries(services, sub)
    assert late.event == "step.late" and late.payload["data"]["task_id"] == task.id
    tick.tick(services.sessions, open_settings, rt.calendars, lambda: due + timedelta(hours=4), lambda ids: None)
    assert len(deliveries(services, sub)) == 1  # the repeats are reminders, not a second "late"


def test_subscriptions_refuse_bad_input_and_keep_the_secret_encrypted(services, demo, settings):
    with services.sessions() as session:
        office = _office_id(session, "dpmk")
    for url in ("ftp://example.org/x", "http://", "https://user:pw@example.org/", "x" * 600, "http://a b/"):
        with pytest.raises(FormInvalid):
            with services.sessions.begin() as session:
                subscriptions.add(session, settings, office, url, ["step.ready"], "", None, START)
    for events in ([], ["step.exploded"]):
        with pytest.raises(FormInvalid):
            with services.sessions.begin() as session:
                subscriptions.add(session, settings, office, "https://example.org/h", events, "", None, START)
    sub_id, secret = subscribe(services, settings, "dpmk", "https://example.org/h", ["step.ready"])
    assert secret.startswith("whsec_") and len(secrets.key_bytes(secret)) == 32
    with services.sessions() as session:
        sub = session.get(WebhookSubscription, sub_id)
        assert secret not in sub.secret_box and secret[6:] not in sub.secret_box
        assert secrets.unseal(settings, sub.secret_box) == secret
        box = sub.secret_box
    other = dataclasses.replace(settings, data_dir=settings.data_dir / "elsewhere")
    with pytest.raises(secrets.SecretUnavailable):
        secrets.unseal(other, box)  # no key there
    secrets.seal(other, "x")  # makes that installation's own key
    with pytest.raises(secrets.SecretUnavailable):
        secrets.unseal(other, box)  # a different key
    assert (settings.data_dir / "webhook_key").stat().st_mode & 0o777 == 0o600


def test_a_failed_event_delivery_is_visible_to_the_operator(services, demo, settings, hook):
    from engine.notifications import failed_deliveries
    sub, _ = subscribe(services, settings, "dpmk", hook.url, ["step.completed"])
    complete_step1(services, demo)
    now = LATER + timedelta(seconds=1)
    send_many(services.sessions, settings, due_ids(services, settings, now), lambda: now)  # private: refused
    with services.sessions() as session:
        (failed,) = failed_deliveries(session, _office_id(session, "dpmk"))
        assert failed.subscription_id == sub and "private" in failed.last_error
        assert failed_deliveries(session, _office_id(session, "dinsos")) == []


def test_an_event_exists_only_if_its_transaction_commits(services, demo, open_settings, hook):
    """An incident's audit row (the kind the incidents feature writes) gives an `incident`
    event; a transaction that rolls back after the flush leaves no delivery behind."""
    from engine.uow import record_audit
    sub, secret = subscribe(services, open_settings, "dpmk", hook.url, ["incident"])
    rt = services.runtime
    rt.clock = lambda: START
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Uji insiden")
    with services.sessions() as session:
        office = _office_id(session, "dpmk")
    with pytest.raises(RuntimeError):
        with services.sessions.begin() as session:
            record_audit(session, "incident_opened", office_id=office, instance_id=iid, at=LATER,
                         data={"incident": 7, "kind": "expression", "message": "gateway condition failed"})
            raise RuntimeError("the change fails after its flush")
    assert deliveries(services, sub) == []
    with services.sessions.begin() as session:
        record_audit(session, "incident_opened", office_id=office, instance_id=iid, at=LATER,
                     data={"incident": 7, "kind": "expression", "message": "gateway condition failed",
                           "form": {"nik": "3402..."}})
    (d,) = deliveries(services, sub)
    assert d.event == "incident" and d.payload["data"] == {"office_id": office, "instance_id": iid, "incident": 7,
                                                           "kind": "expression",
                                                           "message": "gateway condition failed"}
    now = LATER + timedelta(seconds=1)
    assert send_many(services.sessions, open_settings, due_ids(services, open_settings, now), lambda: now) == {
        d.id: "sent"}
    (headers, body, _), = hook.requests
    assert verify(secret, headers, body)["type"] == "incident"


def test_a_slow_receiver_times_out_and_is_retried(services, demo, open_settings):
    settings = dataclasses.replace(open_settings, webhook_timeout_seconds=0.5)
    with receiver(delay=2.0) as hook:
        sub, _ = subscribe(services, settings, "dpmk", hook.url, ["step.completed"])
        complete_step1(services, demo)
        now = LATER + timedelta(seconds=1)
        (delivery_id,) = due_ids(services, settings, now)
        started = time.monotonic()
        assert send_many(services.sessions, settings, [delivery_id], lambda: now) == {delivery_id: "pending"}
        assert time.monotonic() - started < 1.9  # gave up at the read timeout, not after the answer
    with services.sessions() as session:
        (line,) = subscriptions.log(session, sub, None)
    assert "timed out" in line.error.lower() and line.status_code is None


def test_a_huge_answer_is_not_read_whole(services, demo, open_settings):
    """A receiver answering 200 with 256 MB: the attempt counts as sent after at most 64 KB."""
    with receiver(answer_bytes=256 * 1024 * 1024) as hook:
        sub, _ = subscribe(services, open_settings, "dpmk", hook.url, ["step.completed"])
        complete_step1(services, demo)
        now = LATER + timedelta(seconds=1)
        (delivery_id,) = due_ids(services, open_settings, now)
        started = time.monotonic()
        assert send_many(services.sessions, open_settings, [delivery_id], lambda: now) == {delivery_id: "sent"}
        assert time.monotonic() - started < 5
        # the sender hung up: the receiver could not write its whole answer
        wait_for(lambda: hook.cut_off, 10, "the receiver to find the connection closed")


def test_a_host_name_is_checked_by_the_address_it_resolves_to(services, demo, settings, hook):
    """`localhost` is no private-looking literal, but it resolves to loopback: refused."""
    port = hook.url.split(":")[2].split("/")[0]
    sub, _ = subscribe(services, settings, "dpmk", f"http://localhost:{port}/h", ["step.completed"])
    complete_step1(services, demo)
    now = LATER + timedelta(seconds=1)
    (delivery_id,) = due_ids(services, settings, now)
    assert send_many(services.sessions, settings, [delivery_id], lambda: now) == {delivery_id: "failed"}
    assert hook.requests == []
    with services.sessions() as session:
        (line,) = subscriptions.log(session, sub, None)
    assert "localhost resolves to a private or loopback address" in line.error
