"""In-app notifications: what the web inbox (and the API later) shows a user.

The rows are written by the deadline tick (`engine.deadlines`); here they are only read
and marked read, always scoped to their owner.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from .errors import NotFound
from .models import Delivery, Notification, WebhookSubscription


_UNREAD = select(func.count()).select_from(Notification).where(
    Notification.user_id == bindparam("user_id"), Notification.inapp.is_(True), Notification.read_at.is_(None))


def unread_count(conn, user_id: int) -> int:
    """Unread in-app reminders (the badge on every page); `conn` is a Session or a Connection."""
    return conn.execute(_UNREAD, {"user_id": user_id}).scalar() or 0


def list_for_user(session: Session, user_id: int, unread_only: bool = False, limit: int = 50,
                  offset: int = 0) -> list[Notification]:
    q = select(Notification).where(Notification.user_id == user_id, Notification.inapp.is_(True))
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list(session.scalars(q.order_by(Notification.id.desc()).limit(limit).offset(offset)))


def owned_ids(session: Session, user_id: int, notification_ids: list[int]) -> set[int]:
    """Those of the ids that are the user's own notifications."""
    if not notification_ids:
        return set()
    return set(session.scalars(select(Notification.id).where(Notification.user_id == user_id,
                                                             Notification.id.in_(notification_ids))))


def mark_read(session: Session, user_id: int, notification_ids: list[int] | None = None,
              now: datetime | None = None) -> int:
    """Mark the user's notifications read (all unread ones when no ids are given); returns how many."""
    q = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_ids is not None:
        q = q.where(Notification.id.in_(notification_ids))
    result = session.execute(q.values(read_at=now or datetime.now(timezone.utc))
                             .execution_options(synchronize_session=False))
    return result.rowcount


def mark_read_owned(sessions, user_id: int, notification_ids: list[int] | None) -> int:
    """Mark read the user's own notifications (all unread ones when no ids are given), in one
    transaction. An id that is not the user's own refuses the whole change (NotFound), without
    telling whether it exists."""
    with sessions.begin() as session:
        if notification_ids and owned_ids(session, user_id, notification_ids) != set(notification_ids):
            raise NotFound("no such notification")
        return mark_read(session, user_id, notification_ids or None)


def failed_deliveries(session: Session, office_id: int | None = None, limit: int = 100) -> list[Delivery]:
    """Deliveries that gave up after their retries: the visible failed state for operators."""
    q = select(Delivery).where(Delivery.status == "failed")
    if office_id is not None:
        # a reminder's office is its notification's, an event webhook's its subscription's
        q = (q.outerjoin(Notification, Notification.id == Delivery.notification_id)
             .outerjoin(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
             .where(func.coalesce(Notification.office_id, WebhookSubscription.office_id) == office_id))
    return list(session.scalars(q.order_by(Delivery.id.desc()).limit(limit)))


def delivery_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def failed_of(session: Session, notification_ids: list[int]) -> dict[int, list[Delivery]]:
    """The failed deliveries of some notifications (the page tells the user which channel
    did not reach them, and why)."""
    if not notification_ids:
        return {}
    out: dict[int, list[Delivery]] = {}
    for d in session.scalars(select(Delivery).where(Delivery.notification_id.in_(notification_ids),
                                                    Delivery.status == "failed").order_by(Delivery.id)):
        out.setdefault(d.notification_id, []).append(d)
    return out


def recent_failures(session: Session, user_id: int, limit: int = 5) -> list[Delivery]:
    """A user's own deliveries that gave up, newest first (shown above their notifications)."""
    return list(session.scalars(select(Delivery).where(Delivery.recipient_id == user_id, Delivery.status == "failed")
                                .order_by(Delivery.id.desc()).limit(limit)))


def message_text(body: str) -> str:
    """A notification's text for reading on the page: the "Buka:/Open: <link>" line dropped (the
    page has its own button) and blank runs closed up."""
    lines = [line for line in (body or "").splitlines()
             if not (line.startswith(("Buka: ", "Open: ")) and "://" in line)]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def offered_channels(session: Session, settings, office_id: int | None) -> tuple[str, ...]:
    """The channels a user of this office may choose: only those configured here
    (engine.notify.configured_channels)."""
    from .notify import configured_channels
    from .sla import CalendarCache
    from .tick import TickCache
    webhook = all(TickCache(session, CalendarCache(), settings).webhook(office_id)) if office_id else bool(
        settings.webhook_url and settings.webhook_secret)
    return configured_channels(settings, webhook)
