"""A step's deadline rows (the schedule its reminders fire on), and delivering reminders.

A step that becomes ready gets one `deadline` row per reminder level (warn, breach; see
engine/reminders.py for the policy; the repeats are added one at a time by the tick,
engine/tick.py). Pausing the step's clock holds its deadlines; resuming, or a change of the
office calendar, re-times them from the step's ready time plus the paused working time.
Every write of these rows goes through the unit of work (engine/uow.py).

Sending (below): a send claims its delivery with a conditional UPDATE (status + lease +
attempt number) before any network traffic, so two workers can never both send it; a
worker killed mid-send leaves a lease that expires and the tick enqueues it again.
This module knows nothing of Celery: `workers/` calls `send_many`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .calendar import OfficeCalendar
from .config import Settings
from .models import Deadline, Delivery, HumanTask, Notification, Office, User
from .notify import OUTSIDE_CHANNELS, Facts, Outgoing, SendError, locale_of, parse_channels, send, webhook_payload
from .reminders import first_deadlines
from .sla import CalendarCache, due_of
from .sqltx import Stmt
from .tick import _TickCache
from .uow import UnitOfWork, record_audit

# ---- the schedule of one step ---------------------------------------------------------------

deadline_rows = first_deadlines  # what the mirror inserts for a step that became ready

_D = Deadline.__table__
OPEN_DEADLINES = Stmt(select(_D.c.id, _D.c.at_fraction, _D.c.status).where(
    _D.c.human_task_id == bindparam("task"), or_(_D.c.status == "pending", _D.c.status == "held")))


def hold(uow: UnitOfWork, task_id: int) -> None:
    """The step's clock stopped: its pending deadlines wait."""
    uow.deadlines(task_id, ("pending",), {"status": "held"})


def retime(uow: UnitOfWork, task, calendar: OfficeCalendar, paused: float, release: bool = False,
           task_values: dict | None = None) -> datetime | None:
    """Record the step's due time and its open deadlines recomputed from its ready time plus
    `paused` working minutes (with `task_values`, other columns of the step in the same write).

    `release` turns held deadlines back to pending (resume); a paused step keeps them held.
    Returns the new due time (None for a step without a Mutu Baku)."""
    if task.mutu_baku_minutes is None:
        if task_values:
            uow.task(task.id, task_values)
        return None
    due = due_of(calendar, task.ready_at, task.mutu_baku_minutes, 1.0, paused)
    uow.task(task.id, {**(task_values or {}), "due_at": due})
    for deadline_id, fraction, status in uow.tx.all(OPEN_DEADLINES, {"task": task.id}):
        values = {"due_at": due_of(calendar, task.ready_at, task.mutu_baku_minutes, fraction, paused)}
        if release and status == "held":
            values["status"] = "pending"
        uow.deadline(deadline_id, values)
    return due


# ---- sending -------------------------------------------------------------------------------

def claim(sessions: sessionmaker[Session], settings: Settings, delivery_id: int, now: datetime) -> Outgoing | None:
    """Take the delivery for one send attempt, or None if it is sent, being sent, or not due."""
    claimed = claim_many(sessions, settings, [delivery_id], now)
    return claimed[0] if claimed else None


def claim_many(sessions: sessionmaker[Session], settings: Settings, delivery_ids: list[int],
               now: datetime) -> list[Outgoing]:
    """Take those of the deliveries that are free for a send attempt (one statement, one commit).

    The conditional UPDATE is the lock: of two workers holding the same id (a redelivered
    message, a re-enqueue) exactly one matches the row. The attempt number it returns is
    the fencing token `finish` checks.
    """
    if not delivery_ids:
        return []
    lease_until = now + timedelta(seconds=settings.send_lease_seconds)
    with sessions.begin() as session:
        rows = session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids), or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.lease_until < now),
        )).values(status="sending", lease_until=lease_until, attempts=Delivery.attempts + 1)
            .returning(Delivery.id, Delivery.attempts, Delivery.channel, Delivery.notification_id)
            .execution_options(synchronize_session=False)).all()
        if not rows:
            return []
        notes = {n.id: n for n in session.execute(
            select(Notification.id, Notification.subject, Notification.body, Notification.payload,
                   Notification.office_id, User.email)
            .join(User, User.id == Notification.user_id)
            .where(Notification.id.in_({r.notification_id for r in rows})))}
        cache = _TickCache(session, CalendarCache(), settings)
        claimed = []
        for row in sorted(rows, key=lambda r: r.id):
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


def release(sessions: sessionmaker[Session], outs: list[Outgoing]) -> None:
    """Give back claimed deliveries this worker will not start (their lease would run out)."""
    with sessions.begin() as session:
        for out in outs:
            session.execute(update(Delivery).where(Delivery.id == out.delivery_id, Delivery.status == "sending",
                                                   Delivery.attempts == out.attempt)
                            .values(status="pending", attempts=Delivery.attempts - 1, lease_until=None)
                            .execution_options(synchronize_session=False))


def backoff(settings: Settings, attempt: int) -> float:
    return min(settings.backoff_max_seconds, settings.backoff_seconds * (2 ** max(0, attempt - 1)))


def finish(sessions: sessionmaker[Session], settings: Settings, out: Outgoing, error: SendError | None,
           now: datetime) -> str:
    """Record the attempt's outcome; fenced by the attempt number so a stale worker changes nothing."""
    fence = and_(Delivery.id == out.delivery_id, Delivery.status == "sending", Delivery.attempts == out.attempt)
    if error is None:
        values = dict(status="sent", sent_at=now, lease_until=None, last_error=None)
    elif error.permanent or out.attempt >= settings.max_attempts:
        values = dict(status="failed", lease_until=None, last_error=str(error)[:1000])
    else:
        values = dict(status="pending", lease_until=None, last_error=str(error)[:1000],
                      next_attempt_at=now + timedelta(seconds=backoff(settings, out.attempt)))
    with sessions.begin() as session:
        result = session.execute(update(Delivery).where(fence).values(**values)
                                 .execution_options(synchronize_session=False))
        if result.rowcount == 1 and values["status"] == "failed":
            d = session.get(Delivery, out.delivery_id)
            task = session.get(HumanTask, d.human_task_id) if d.human_task_id else None
            record_audit(session, "reminder_failed", office_id=task.office_id if task else None,
                         instance_id=task.instance_id if task else None, human_task_id=d.human_task_id,
                         at=now, step=task.bpmn_id if task else None,
                         data={"delivery": d.id, "channel": d.channel, "attempts": d.attempts,
                               "error": values["last_error"]})
        return values["status"] if result.rowcount == 1 else "stale"


def send_one(sessions: sessionmaker[Session], settings: Settings, delivery_id: int,
             clock: Callable[[], datetime]) -> str:
    """Claim, send, record. Returns the delivery's new status, or 'skipped' if not ours to send."""
    return send_many(sessions, settings, [delivery_id], clock).get(delivery_id, "skipped")


def send_many(sessions: sessionmaker[Session], settings: Settings, delivery_ids: list[int],
              clock: Callable[[], datetime]) -> dict[int, str]:
    """Claim the free ones of `delivery_ids` at once, send each, record each outcome as it comes.

    A send is never started if it could outlive the batch's lease (the tick would hand the
    delivery to another worker meanwhile): the rest is released and re-enqueued by the tick.
    """
    started = clock()
    outs = claim_many(sessions, settings, delivery_ids, started)
    lease_end = started + timedelta(seconds=settings.send_lease_seconds)
    # Stay well inside the lease so a slow-but-alive worker never overlaps a reclaim.
    timeout = max(1.0, min(10.0, settings.send_lease_seconds / 3))
    result: dict[int, str] = {}
    for i, out in enumerate(outs):
        if clock() + timedelta(seconds=timeout * 1.5) > lease_end:
            release(sessions, outs[i:])
            result.update((o.delivery_id, "released") for o in outs[i:])
            break
        try:
            send(settings, out, timeout=timeout)
            error = None
        except SendError as exc:
            error = exc
        except Exception as exc:  # a bug in a channel must still end as a visible attempt
            error = SendError(f"{exc.__class__.__name__}: {exc}")
        result[out.delivery_id] = finish(sessions, settings, out, error, clock())
    return result


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
    cache = _TickCache(session, CalendarCache(), settings)
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
