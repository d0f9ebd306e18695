"""The delivery outbox: sending a notification over an outside channel (email, webhook).

A `delivery` row is written by the tick (`engine.deadlines`) in the same transaction as its
notification, or, for an event webhook (engine/webhooks/), by the unit of work with the
event's audit row; this module takes it from there. Sending claims a delivery with a conditional
UPDATE (status + lease + attempt number) before any network traffic, so two workers can
never both send it; a worker killed mid-send leaves a lease that expires and the tick
enqueues it again (`tick.due_for_enqueue`).

A reminder goes out only while its step is open: the claim skips (and cancels) deliveries
of closed steps, and right before the point of no return (SMTP DATA, the webhook POST) a
gate checks the step again and renews the lease. Closing a step cancels its pending and
in-flight deliveries (`UnitOfWork.cancel_deliveries`, called by the engine's completion and
cancellation paths), which the gate of a send under way then sees. Email stays
at-least-once: see engine/notify.py for the window that no protocol closes.

This module knows nothing of Celery: `workers/` and `lajur notify test` call `send_many`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .tick import TickCache
from .models import Delivery, HumanTask, Notification, Office, ProcessInstance, User, WebhookAttempt, WebhookSubscription
from .notify import (OUTSIDE_CHANNELS, Facts, NotSent, Outgoing, Sender, SendError, locale_of, parse_channels,
                     webhook_payload)
from .sla import CalendarCache
from .uow import record_audit
from .webhooks import secrets as webhook_secrets


def _step_open():
    """The delivery's step is still open (a test message has no step)."""
    return or_(Delivery.human_task_id.is_(None), exists().where(HumanTask.id == Delivery.human_task_id,
                                                                HumanTask.state == "ready"))


def _subscribed():
    """An event webhook's subscription is still active (a reminder has none)."""
    return or_(Delivery.subscription_id.is_(None), exists().where(WebhookSubscription.id == Delivery.subscription_id,
                                                                  WebhookSubscription.active.is_(True)))


def _free(now: datetime):
    """Free for a send attempt: pending and due, or being sent by a worker whose lease ran out."""
    return or_(and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
               and_(Delivery.status == "sending", Delivery.lease_until < now))


# The statements of each send, built once (bound parameters): a send runs one or two of them,
# so building them per call was a measurable part of its CPU time.
_d = Delivery.__table__
_ATTEMPT_LOG = insert(WebhookAttempt.__table__).values(
    delivery_id=bindparam("delivery"), attempt=bindparam("attempt"), at=bindparam("now"),
    status_code=bindparam("status_code"), error=bindparam("log_error"), duration_ms=bindparam("duration_ms"))
_OWNED = and_(_d.c.id == bindparam("delivery"), _d.c.attempts == bindparam("attempt"))
_GATE = update(_d).where(_OWNED, _d.c.status == "sending", _step_open()).values(lease_until=bindparam("until"))
_CANCEL_CLOSED = update(_d).where(_OWNED, _d.c.status.in_(("sending", "cancelled")), ~_step_open()) \
    .values(status="cancelled", lease_until=None)
_OUTCOME = {  # fence, by outcome: a message that went out is recorded even over a cancellation
    "sent": update(_d).where(_OWNED, _d.c.status.in_(("sending", "cancelled")))
    .values(status="sent", sent_at=bindparam("now"), lease_until=None, last_error=None),
    "failed": update(_d).where(_OWNED, _d.c.status == "sending")
    .values(status="failed", lease_until=None, last_error=bindparam("error")),
    "pending": update(_d).where(_OWNED, _d.c.status == "sending")
    .values(status="pending", lease_until=None, last_error=bindparam("error"), next_attempt_at=bindparam("retry_at")),
}


def claim_many(sessions: sessionmaker[Session], settings: Settings, delivery_ids: list[int],
               now: datetime) -> list[Outgoing]:
    """Take those of the deliveries that are free for a send attempt (one transaction); the
    ones whose step closed are cancelled instead.

    The conditional UPDATE is the lock: of two workers holding the same id (a redelivered
    message, a re-enqueue) exactly one matches the row. The attempt number it returns is
    the fencing token the gate and the outcome check.
    """
    if not delivery_ids:
        return []
    lease_until = now + timedelta(seconds=settings.send_lease_seconds)
    with sessions.begin() as session:
        session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids), _free(now),
                                               or_(~_step_open(), ~_subscribed()))
                        .values(status="cancelled", lease_until=None).execution_options(synchronize_session=False))
        rows = session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids), _free(now))
                               .values(status="sending", lease_until=lease_until, attempts=Delivery.attempts + 1)
                               .returning(Delivery.id, Delivery.attempts, Delivery.channel, Delivery.notification_id,
                                          Delivery.subscription_id, Delivery.event_id, Delivery.payload)
                               .execution_options(synchronize_session=False)).all()
        if not rows:
            return []
        notes = {n.id: n for n in session.execute(
            select(Notification.id, Notification.subject, Notification.body, Notification.payload,
                   Notification.office_id, User.email)
            .join(User, User.id == Notification.user_id)
            .where(Notification.id.in_({r.notification_id for r in rows if r.notification_id is not None})))}
        subscriptions = {s.id: s for s in session.execute(
            select(WebhookSubscription.id, WebhookSubscription.office_id, WebhookSubscription.url,
                   WebhookSubscription.secret_box)
            .where(WebhookSubscription.id.in_({r.subscription_id for r in rows if r.subscription_id is not None})))}
        cache = TickCache(session, CalendarCache(), settings)
        claimed = []
        for row in sorted(rows, key=lambda r: r.id):
            if row.subscription_id is not None:
                claimed.append(_event_outgoing(settings, row, subscriptions[row.subscription_id]))
                continue
            n = notes[row.notification_id]
            out = dict(delivery_id=row.id, attempt=row.attempts, channel=row.channel, subject=n.subject,
                       text=n.body)
            if row.channel == "email":
                out["to_address"] = n.email
            elif row.channel == "webhook":
                url, secret = cache.webhook(n.office_id) if n.office_id \
                    else (settings.webhook_url, settings.webhook_secret)
                payload = dict((n.payload or {}).get("webhook") or {})
                payload["delivery_id"] = row.id
                out.update(url=url, secret=secret, payload=payload)
            claimed.append(Outgoing(**out))
        return claimed


def _event_outgoing(settings: Settings, row, sub) -> Outgoing:
    """An event webhook's send: its subscription's URL and secret (decrypted only here, for
    the signature; one that cannot be decrypted fails the attempt with the reason)."""
    try:
        secret, problem = webhook_secrets.unseal(settings, sub.secret_box), ""
    except webhook_secrets.SecretUnavailable as exc:
        secret, problem = None, str(exc)
    payload = row.payload if isinstance(row.payload, dict) else {}
    return Outgoing(delivery_id=row.id, attempt=row.attempts, channel=row.channel, subject=payload.get("type", ""),
                    text=problem, url=sub.url, secret=secret, payload=payload, event_id=row.event_id,
                    office_id=sub.office_id)


def backoff(settings: Settings, attempt: int) -> float:
    return min(settings.backoff_max_seconds, settings.backoff_seconds * (2 ** max(0, attempt - 1)))


class _Attempts:
    """The send attempts of one batch: the gate before each point of no return, and the
    outcome of each, committed as early as it can be.

    Gate: is this attempt still ours and the step still open? If so the lease is renewed
    for the time the receiver may take to accept, so no other worker starts the same send
    meanwhile; if not, NotSent (a delivery whose step closed is cancelled) and nothing goes
    out. Outcome: fenced by the attempt number, so a stale worker changes nothing; a message
    that went out is recorded "sent" even if its step closed (and the delivery was
    cancelled) meanwhile, a failed one is then not retried. An email's outcome is committed
    at once, before QUIT; a webhook's in the transaction of the next gate (which follows at
    once: nothing but building the next request lies between), saving a commit per send.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime]):
        self.sessions, self.settings, self.clock = sessions, settings, clock
        self.result: dict[int, str] = {}
        self._deferred: tuple[Outgoing, SendError | None, object] | None = None

    def gate(self, out: Outgoing) -> None:
        now = self.clock()
        owned = {"delivery": out.delivery_id, "attempt": out.attempt}
        with self.sessions.begin() as session:
            conn = session.connection()
            self._record_deferred(session, now)
            until = now + timedelta(seconds=self.settings.send_lease_seconds)
            if conn.execute(_GATE, {**owned, "until": until}).rowcount:
                return
            closed = conn.execute(_CANCEL_CLOSED, owned).rowcount
        raise NotSent("cancelled" if closed else "stale")

    def outcome(self, out: Outgoing, error: SendError | None, answer=None) -> None:
        self._deferred = (out, error, answer)
        if out.channel != "webhook":
            self.flush()

    def flush(self) -> None:
        if self._deferred is not None:
            with self.sessions.begin() as session:
                self._record_deferred(session, self.clock())

    def _record_deferred(self, session: Session, now: datetime) -> None:
        if self._deferred is None:
            return
        conn = session.connection()
        (out, error, answer), self._deferred = self._deferred, None
        params = {"delivery": out.delivery_id, "attempt": out.attempt, "now": now}
        if error is None:
            status = "sent"
        elif error.permanent or out.attempt >= self.settings.max_attempts:
            status, params["error"] = "failed", str(error)[:1000]
        else:
            status, params["error"] = "pending", str(error)[:1000]
            params["retry_at"] = now + timedelta(seconds=backoff(self.settings, out.attempt))
        task = None
        if status == "failed":
            # Lock the instance before the delivery row: a completion takes them in that order
            # (instance, then its deliveries), so the failed attempt's audit row cannot deadlock it.
            task = conn.execute(select(HumanTask.__table__).where(HumanTask.id == select(_d.c.human_task_id).where(
                _d.c.id == out.delivery_id).scalar_subquery())).first()
            if task is not None:
                conn.execute(select(ProcessInstance.id).where(ProcessInstance.id == task.instance_id)
                             .with_for_update())
        changed = conn.execute(_OUTCOME[status], params).rowcount
        if out.event_id is not None:  # the subscription's delivery log: what happened on the wire
            conn.execute(_ATTEMPT_LOG, {
                "delivery": out.delivery_id, "attempt": out.attempt, "now": now,
                "status_code": error.status_code if error is not None else getattr(answer, "status", None),
                "duration_ms": error.duration_ms if error is not None else getattr(answer, "duration_ms", None),
                "log_error": str(error)[:500] if error is not None else None})
            if changed and status == "failed":
                record_audit(session, "webhook_failed", office_id=out.office_id, at=now,
                             data={"delivery": out.delivery_id, "event": out.event_id, "attempts": out.attempt,
                                   "error": params["error"]})
        elif changed and status == "failed":
            record_audit(session, "reminder_failed", office_id=task.office_id if task else None,
                         instance_id=task.instance_id if task else None, human_task_id=task.id if task else None,
                         at=now, step=task.bpmn_id if task else None,
                         data={"delivery": out.delivery_id, "channel": out.channel, "attempts": out.attempt,
                               "error": params["error"]})
        self.result[out.delivery_id] = status if changed else "stale"


def send_many(sessions: sessionmaker[Session], settings: Settings, delivery_ids: list[int],
              clock: Callable[[], datetime]) -> dict[int, str]:
    """Claim the free ones of `delivery_ids` at once, then send each: the gate right before
    its point of no return checks the step is still open, and its outcome is recorded the
    moment the receiver accepted it (see `_Attempts`).

    Returns each attempted delivery's new status ("sent", "pending" for a retry, "failed",
    "cancelled" when its step closed, "stale" when another attempt owns it now); ids not
    free to send are left out.
    """
    # Commands stay well inside the lease; the wait for the server to accept DATA gets most
    # of the (renewed) lease, so a slow server is waited for rather than sent to twice.
    timeout = max(1.0, min(10.0, settings.send_lease_seconds / 3))
    sender = Sender(settings, timeout=timeout, accept_timeout=max(timeout, settings.send_lease_seconds - timeout))
    attempts = _Attempts(sessions, settings, clock)
    try:
        for out in claim_many(sessions, settings, delivery_ids, clock()):
            answer = None
            try:
                answer = sender.send(out, lambda: attempts.gate(out))
                error = None
            except NotSent as exc:
                attempts.result[out.delivery_id] = exc.status
                continue
            except SendError as exc:
                error = exc
            except Exception as exc:  # a bug in a channel must still end as a visible attempt
                error = SendError(f"{exc.__class__.__name__}: {exc}")
            attempts.outcome(out, error, answer)
        attempts.flush()
    finally:
        sender.close()
    return attempts.result


def requeue_event(session: Session, subscription_id: int, delivery_id: int, now: datetime) -> bool:
    """"Send again": an event webhook's delivery that was sent, failed or cancelled goes back
    to pending (the tick enqueues it); its attempts count on, so the fencing holds. False if
    it is not one of the subscription's or is waiting or being sent right now."""
    return bool(session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.subscription_id == subscription_id,
                               Delivery.status.in_(("sent", "failed", "cancelled")))
        .values(status="pending", next_attempt_at=now, enqueued_at=None, lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)).rowcount)


def create_test_notification(session: Session, settings: Settings, user: User, now: datetime) -> list[int]:
    """A test message to `user` over each of their channels (`lajur notify test`); returns delivery ids."""
    office = session.get(Office, user.office_id) if user.office_id else None
    link = settings.base_url.rstrip("/") + "/notifications"
    facts = Facts(level="test", seq=0, step="-", sop="-", office=office.name if office else "-", instance_id=0,
                  subject="-", due_at=None, minutes_left=0, mutu_baku_minutes=None, link=link,
                  recipient_name=user.full_name, timezone=office.timezone if office else "Asia/Jakarta")
    locale = locale_of(user.locale)
    subject = "[Lajur] " + ("Test notification" if locale == "en" else "Uji notifikasi")
    text = (f"Dear {user.full_name},\n\nThis is a test of your Lajur notification channels.\n" if locale == "en"
            else f"Yth. {user.full_name},\n\nIni uji coba saluran notifikasi Lajur Anda.\n")
    recipient = {"username": user.username, "name": user.full_name, "handle": user.webhook_handle,
                 "locale": locale}
    channels = parse_channels(user.notify_channels)
    n = Notification(user_id=user.id, office_id=user.office_id, level="test", seq=0, inapp="inapp" in channels,
                     subject=subject, body=text, link=link, created_at=now,
                     payload={"webhook": webhook_payload(facts, recipient, text, event="test")})
    session.add(n)
    cache = TickCache(session, CalendarCache(), settings)
    out = []
    for channel in OUTSIDE_CHANNELS:
        if channel not in channels or (channel == "email" and not user.email):
            continue
        if channel == "webhook" and not (all(cache.webhook(user.office_id)) if user.office_id
                                         else settings.webhook_url and settings.webhook_secret):
            continue
        d = Delivery(notification=n, level="test", seq=0, channel=channel, recipient_id=user.id, status="pending",
                     attempts=0, created_at=now, next_attempt_at=now, enqueued_at=now)
        session.add(d)
        out.append(d)
    session.flush()
    return [d.id for d in out]
