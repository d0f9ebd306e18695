"""An office's webhook subscriptions, their delivery log and "send again".

Used by the office administration pages (webui/webhooks.py) and `lajur webhooks`; the rule
is engine/access.py's `check_webhooks` (actor None: the operator at the console). Every
change writes an office audit row in the caller's transaction. The secret is returned once,
by `add` and `rotate`, and kept only encrypted (engine/webhooks/secrets.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .. import access
from ..config import Settings
from ..errors import Conflict, FormInvalid, NotFound
from ..outbox import requeue_event  # the outbox owns a delivery's states
from ..models import Delivery, Office, User, WebhookAttempt, WebhookSubscription
from ..uow import record_audit
from . import secrets
from .events import EVENTS
from .transport import Refused, check_url

MAX_SUBSCRIPTIONS = 20  # per office: each is a statement probe per event and a send per event
MAX_DESCRIPTION = 200
LOG_PAGE = 50


def _actor(actor: User | None) -> access.Actor | None:
    return access.Actor.of_user(actor) if actor is not None else None


def _office(session: Session, office_id: int, actor: User | None) -> Office:
    office = session.get(Office, office_id)
    if office is None:
        raise NotFound(f"office {office_id} does not exist")
    access.check_webhooks(_actor(actor), office.id)
    return office


def subscription(session: Session, subscription_id: int, actor: User | None) -> WebhookSubscription:
    """One subscription the actor may manage (another office's: NotFound, nothing leaked)."""
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not access.may_administer(_actor(actor), sub.office_id):
        raise NotFound(f"webhook {subscription_id} does not exist")
    return sub


def clean_events(chosen) -> list[str]:
    events = [e for e in EVENTS if e in set(chosen or ())]
    unknown = sorted(set(chosen or ()) - set(EVENTS))
    if unknown or not events:
        raise FormInvalid({"events": [f"pilih paling sedikit satu dari / choose at least one of: {', '.join(EVENTS)}"]})
    return events


def events_of(sub: WebhookSubscription) -> list[str]:
    return [e for e in sub.events.split(",") if e]


def _audit(session: Session, office_id: int, actor: User | None, kind: str, now: datetime, data: dict) -> None:
    record_audit(session, kind, office_id=office_id, user_id=actor.id if actor else None, at=now, data=data)


def add(session: Session, settings: Settings, office_id: int, url: str, events, description: str,
        actor: User | None, now: datetime) -> tuple[WebhookSubscription, str]:
    """Subscribe `url` to `events` of the office; return the row and its secret (shown once)."""
    office = _office(session, office_id, actor)
    try:
        url = check_url(url)
    except Refused as exc:
        raise FormInvalid({"url": [str(exc)]}) from None
    chosen = clean_events(events)
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION or not description.isprintable():
        raise FormInvalid({"description": [f"at most {MAX_DESCRIPTION} characters, one line"]})
    count = session.scalar(select(func.count()).select_from(WebhookSubscription)
                           .where(WebhookSubscription.office_id == office.id))
    if count >= MAX_SUBSCRIPTIONS:
        raise Conflict(f"office {office.code} already has {MAX_SUBSCRIPTIONS} webhooks; remove one first")
    secret = secrets.new_secret()
    sub = WebhookSubscription(office_id=office.id, url=url, events="," + ",".join(chosen) + ",",
                              secret_box=secrets.seal(settings, secret), secret_hint=secrets.hint(secret),
                              description=description, active=True, created_by_id=actor.id if actor else None,
                              created_at=now)
    session.add(sub)
    session.flush()
    _audit(session, office.id, actor, "webhook_added", now, {"webhook": sub.id, "url": url, "events": chosen})
    return sub, secret


def list_for(session: Session, office_id: int, actor: User | None) -> list[WebhookSubscription]:
    office = _office(session, office_id, actor)
    return list(session.scalars(select(WebhookSubscription).where(WebhookSubscription.office_id == office.id)
                                .order_by(WebhookSubscription.id)))


def set_active(session: Session, subscription_id: int, active: bool, actor: User | None, now: datetime) -> None:
    """Pause or resume a subscription; a paused one gets no new events and its queued sends stop."""
    sub = subscription(session, subscription_id, actor)
    sub.active = bool(active)
    _audit(session, sub.office_id, actor, "webhook_changed", now, {"webhook": sub.id, "active": sub.active})


def rotate(session: Session, settings: Settings, subscription_id: int, actor: User | None,
           now: datetime) -> str:
    """A new secret (shown once); the sends from now on are signed with it."""
    sub = subscription(session, subscription_id, actor)
    secret = secrets.new_secret()
    sub.secret_box, sub.secret_hint = secrets.seal(settings, secret), secrets.hint(secret)
    _audit(session, sub.office_id, actor, "webhook_changed", now, {"webhook": sub.id, "secret": "rotated"})
    return secret


def remove(session: Session, subscription_id: int, actor: User | None, now: datetime) -> None:
    """Remove a subscription with its queued deliveries and its log."""
    sub = subscription(session, subscription_id, actor)
    office_id, url = sub.office_id, sub.url
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(
        select(Delivery.id).where(Delivery.subscription_id == sub.id))))
    session.execute(delete(Delivery).where(Delivery.subscription_id == sub.id))
    session.delete(sub)
    session.flush()
    _audit(session, office_id, actor, "webhook_removed", now, {"webhook": subscription_id, "url": url})


@dataclass(frozen=True)
class LogLine:
    delivery_id: int
    event: str
    event_id: str
    created_at: datetime
    status: str          # the delivery's: pending|sending|sent|failed|cancelled
    attempt: int | None  # None: not attempted yet
    at: datetime | None
    status_code: int | None
    error: str | None
    duration_ms: int | None


def log(session: Session, subscription_id: int, actor: User | None, limit: int = LOG_PAGE) -> list[LogLine]:
    """The newest deliveries of a subscription, one line per attempt (a delivery not yet
    attempted has one line without a time)."""
    sub = subscription(session, subscription_id, actor)
    deliveries = session.execute(
        select(Delivery.id, Delivery.event, Delivery.event_id, Delivery.created_at, Delivery.status)
        .where(Delivery.subscription_id == sub.id).order_by(Delivery.id.desc()).limit(limit)).all()
    attempts: dict[int, list] = {}
    for a in session.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
                             .order_by(WebhookAttempt.attempt.desc(), WebhookAttempt.id.desc())).scalars():
        attempts.setdefault(a.delivery_id, []).append(a)
    lines = []
    for d in deliveries:
        tried = attempts.get(d.id) or [None]
        for a in tried:
            lines.append(LogLine(d.id, d.event, d.event_id, d.created_at, d.status,
                                 a.attempt if a else None, a.at if a else None, a.status_code if a else None,
                                 a.error if a else None, a.duration_ms if a else None))
    return lines


def send_again(session: Session, subscription_id: int, delivery_id: int, actor: User | None,
               now: datetime) -> None:
    """Queue a delivery again through the outbox (same event, same `webhook-id`); one that
    is waiting or being sent right now is left alone (Conflict)."""
    sub = subscription(session, subscription_id, actor)
    if not requeue_event(session, sub.id, delivery_id, now):
        exists = session.scalar(select(Delivery.id).where(Delivery.id == delivery_id,
                                                           Delivery.subscription_id == sub.id))
        if exists is None:
            raise NotFound(f"delivery {delivery_id} does not exist")
        raise Conflict("this delivery is already queued")
    _audit(session, sub.office_id, actor, "webhook_resent", now, {"webhook": sub.id, "delivery": delivery_id})
