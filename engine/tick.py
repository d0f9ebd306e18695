"""The deadline tick: fire the reminder deadlines that fell due, and re-enqueue sends.

A periodic tick (Celery beat, every second) claims the `deadline` rows that fell due
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's write lock serialises), writes one
`notification` per recipient and one `delivery` per outside channel, marks the deadline
fired and schedules the step's next repeat, all in one transaction, and hands the
delivery ids to the queue. The deadline rows and the audit record go through the unit
of work (engine/uow.py); what a step's deadlines are is its reminder policy
(engine/reminders.py). No far-future ETA task exists anywhere: the database is the
source of truth, the broker only a doorbell.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .calendar import OfficeCalendar
from .config import Settings
from .db import as_utc
from .models import (Deadline, Delivery, Group, HumanTask, Notification, Office, OfficeWebhook, ProcessDefinition,
                     ProcessInstance, ProcessVersion, User, user_group)
from .notify import OUTSIDE_CHANNELS, Facts, configured_channels, locale_of, parse_channels, render, webhook_payload
from .reminders import level_of, next_repeat, policy_of
from .sla import CalendarCache, paused_minutes
from .uow import UnitOfWork


@dataclass
class TickCache:
    """Lookups shared by the deadlines of one tick transaction."""

    session: Session
    calendars: CalendarCache
    settings: Settings
    versions: dict = field(default_factory=dict)
    offices: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)
    supervisors: dict = field(default_factory=dict)
    lane_groups: dict = field(default_factory=dict)
    webhooks: dict = field(default_factory=dict)
    subjects: dict = field(default_factory=dict)  # instance id -> subject, loaded per batch
    users: dict = field(default_factory=dict)     # user id -> User (assignees), loaded per batch

    def version(self, version_id: int) -> tuple[ProcessVersion, str]:
        if version_id not in self.versions:
            v = self.session.get(ProcessVersion, version_id)
            self.versions[version_id] = (v, self.session.get(ProcessDefinition, v.definition_id).name)
        return self.versions[version_id]

    def calendar(self, office_id: int) -> OfficeCalendar:
        key = ("calendar", office_id)
        if key not in self.offices:
            self.offices[key] = self.calendars.get(self.session, office_id)
        return self.offices[key]

    def subject(self, instance_id: int) -> str:
        if instance_id not in self.subjects:
            self.subjects[instance_id] = self.session.scalar(
                select(ProcessInstance.subject).where(ProcessInstance.id == instance_id))
        return self.subjects[instance_id]

    def office(self, office_id: int) -> Office:
        if office_id not in self.offices:
            self.offices[office_id] = self.session.get(Office, office_id)
        return self.offices[office_id]

    def group_members(self, group_id: int | None) -> list[User]:
        if group_id is None:
            return []
        if group_id not in self.members:
            self.members[group_id] = list(self.session.scalars(
                select(User).join(user_group, user_group.c.user_id == User.id)
                .where(user_group.c.group_id == group_id, User.active.is_(True)).order_by(User.id)))
        return self.members[group_id]

    def office_supervisors(self, office_id: int) -> list[User]:
        if office_id not in self.supervisors:
            users = self.session.scalars(select(User).where(User.office_id == office_id, User.active.is_(True))
                                         .order_by(User.id))
            self.supervisors[office_id] = [u for u in users if u.has_role("supervisor")]
        return self.supervisors[office_id]

    def lane_group(self, office_id: int, name: str) -> int | None:
        key = (office_id, name)
        if key not in self.lane_groups:
            self.lane_groups[key] = self.session.scalar(select(Group.id).where(Group.office_id == office_id,
                                                                               Group.name == name))
        return self.lane_groups[key]

    def webhook(self, office_id: int) -> tuple[str | None, str | None]:
        if office_id not in self.webhooks:
            row = self.session.scalar(select(OfficeWebhook).where(OfficeWebhook.office_id == office_id,
                                                                  OfficeWebhook.active.is_(True)))
            self.webhooks[office_id] = (row.url, row.secret) if row else (self.settings.webhook_url,
                                                                          self.settings.webhook_secret)
        return self.webhooks[office_id]


def recipients(cache: TickCache, task: HumanTask, to: Iterable[str]) -> list[User]:
    """Resolve policy recipients to active users, in order, without duplicates."""
    found: dict[int, User] = {}
    for r in to:
        if r == "holder":
            holder = cache.users.get(task.assignee_id) if task.assignee_id else None
            if task.assignee_id and holder is None:
                holder = cache.users[task.assignee_id] = cache.session.get(User, task.assignee_id)
            users = [holder] if holder is not None and holder.active else cache.group_members(task.group_id)
        elif r == "group":
            users = cache.group_members(task.group_id)
        elif r == "supervisors":
            users = cache.office_supervisors(task.office_id)
        elif r.startswith("lane:"):
            users = cache.group_members(cache.lane_group(task.office_id, r[5:]))
        else:
            users = []
        for u in users:
            found.setdefault(u.id, u)
    return list(found.values())


def facts_for(cache: TickCache, task: HumanTask, level: str, seq: int, user: User, now: datetime,
              link_base: str) -> Facts:
    version, sop_name = cache.version(task.version_id)
    office = cache.office(task.office_id)
    calendar = cache.calendar(task.office_id)
    due = as_utc(task.due_at)
    if due is None:
        left = 0.0
    elif due >= now:
        left = calendar.working_minutes_between(now, due)
    else:
        left = -calendar.working_minutes_between(due, now)
    return Facts(level=level, seq=seq, step=task.name, sop=sop_name, office=office.name,
                 instance_id=task.instance_id, subject=cache.subject(task.instance_id), due_at=due, minutes_left=left,
                 mutu_baku_minutes=task.mutu_baku_minutes, link=f"{link_base}/tasks/{task.id}",
                 recipient_name=user.full_name, timezone=office.timezone)


def notify_user(cache: TickCache, user: User, *, office_id: int, human_task_id: int | None, instance_id: int | None,
                level: str, seq: int, subject: str, text: str, link: str | None, payload: dict, now: datetime,
                due_at: datetime | None = None, enqueued: bool = True) -> list[Delivery]:
    """One notification to one user (in the app if they chose it) and one delivery per outside
    channel they chose that is configured here (`configured_channels`: no SMTP server, no
    email); the one path of reminders and of steps sent back (engine/rework.py). `enqueued`
    False: the tick's `due_for_enqueue` hands the deliveries to the queue."""
    session = cache.session
    channels = parse_channels(user.notify_channels)
    n = Notification(user_id=user.id, office_id=office_id, human_task_id=human_task_id, instance_id=instance_id,
                     level=level, seq=seq, inapp="inapp" in channels, subject=subject, body=text, link=link,
                     created_at=now, payload=payload)
    session.add(n)
    out = []
    offered = configured_channels(cache.settings, all(cache.webhook(office_id)))
    for channel in OUTSIDE_CHANNELS:
        if channel not in channels or channel not in offered:
            continue
        if channel == "email" and not user.email:
            continue
        delivery = Delivery(notification=n, human_task_id=human_task_id, level=level, seq=seq, channel=channel,
                            recipient_id=user.id, status="pending", attempts=0, due_at=due_at, created_at=now,
                            next_attempt_at=now, enqueued_at=now if enqueued else None)
        session.add(delivery)
        out.append(delivery)
    return out


def _fire(cache: TickCache, uow: UnitOfWork, d: Deadline, task: HumanTask, now: datetime) -> list[Delivery]:
    """Turn one due deadline into notifications and deliveries; schedule the next repeat."""
    session, settings = cache.session, cache.settings
    uow.deadline(d.id, {"status": "done", "fired_at": now})
    version, _ = cache.version(task.version_id)
    policy = policy_of(version.steps.get(task.bpmn_id, {}))
    level = level_of(policy, d.level)
    users = recipients(cache, task, level["to"] if level else ["holder"])
    out: list[Delivery] = []
    base_facts = facts_for(cache, task, d.level, d.seq, users[0], now, settings.base_url.rstrip("/")) if users else None
    for user in users:
        facts = replace(base_facts, recipient_name=user.full_name)
        subject, text = render(facts, locale_of(user.locale))
        recipient = {"username": user.username, "name": user.full_name, "handle": user.webhook_handle,
                     "locale": locale_of(user.locale)}
        out.extend(notify_user(cache, user, office_id=task.office_id, human_task_id=task.id,
                               instance_id=task.instance_id, level=d.level, seq=d.seq, subject=subject, text=text,
                               link=facts.link, now=now, due_at=as_utc(d.due_at),
                               payload={"deadline_due_at": as_utc(d.due_at).isoformat(),
                                        "webhook": webhook_payload(facts, recipient, text)}))
    uow.audit("reminder_fired", office_id=task.office_id, instance_id=task.instance_id, human_task_id=task.id,
              at=now, step=task.bpmn_id, data={"level": d.level, "seq": d.seq, "to": [u.username for u in users]})
    if d.level in ("breach", "repeat"):
        calendar = cache.calendar(task.office_id)
        nxt = next_repeat(calendar, task.ready_at, task.mutu_baku_minutes, policy, d.seq,
                          paused_minutes(session, task.id, calendar) if task.paused_at is None else 0.0, now)
        if nxt:
            seq, fraction, due = nxt
            uow.add_deadlines([{"human_task_id": task.id, "office_id": task.office_id, "level": "repeat", "seq": seq,
                                "at_fraction": fraction, "due_at": due}])
    return out


@dataclass
class TickResult:
    fired: int = 0
    cancelled: int = 0
    timers: int = 0
    enqueued: list[int] = field(default_factory=list)


def fire_due(sessions: sessionmaker[Session], settings: Settings, calendars: CalendarCache, now: datetime,
             batch: int = 500) -> tuple[int, int, list[int]]:
    """One transaction: claim up to `batch` due deadlines, fire them; return (fired, cancelled, delivery ids)."""
    with sessions.begin() as session:
        due = list(session.scalars(select(Deadline).where(Deadline.status == "pending", Deadline.due_at <= now)
                                   .order_by(Deadline.due_at, Deadline.id).limit(batch)
                                   .with_for_update(skip_locked=True)))
        if not due:
            return 0, 0, []
        # A reminder's audit row chains onto its instance's trail under the instance's lock. An
        # instance a state change holds right now is left to the next tick: waiting for it here
        # could deadlock (the change holds the instance and waits for these deadline rows).
        instance_of = dict(session.execute(select(HumanTask.id, HumanTask.instance_id).where(
            HumanTask.id.in_({d.human_task_id for d in due}))).all())
        heads = dict(session.execute(select(ProcessInstance.id, ProcessInstance.audit_hash).where(
            ProcessInstance.id.in_(set(instance_of.values()))).order_by(ProcessInstance.id)
            .with_for_update(skip_locked=True)).all())
        due = [d for d in due if instance_of[d.human_task_id] in heads]
        if not due:
            return 0, 0, []
        uow = UnitOfWork.on(session)
        for instance_id, head in heads.items():
            uow.known_head(instance_id, head)
        task_ids = {d.human_task_id for d in due}
        tasks = {t.id: t for t in session.scalars(select(HumanTask).where(HumanTask.id.in_(task_ids)))}
        cache = TickCache(session, calendars, settings)
        # what every deadline of the batch needs, in two queries instead of two per row
        cache.subjects.update(session.execute(select(ProcessInstance.id, ProcessInstance.subject).where(
            ProcessInstance.id.in_({t.instance_id for t in tasks.values()}))).all())
        cache.users.update((u.id, u) for u in session.scalars(select(User).where(
            User.id.in_({t.assignee_id for t in tasks.values() if t.assignee_id}))))
        deliveries: list[Delivery] = []
        with session.no_autoflush:
            fired, cancelled = _fire_batch(cache, uow, due, tasks, now, deliveries)
        session.flush()  # the notifications and deliveries (the outbox's rows)
        uow.flush()      # the deadlines and the audit rows
        return fired, cancelled, [x.id for x in deliveries]


def _fire_batch(cache: TickCache, uow: UnitOfWork, due: list[Deadline], tasks: dict, now: datetime,
                deliveries: list[Delivery]) -> tuple[int, int]:
    fired = cancelled = 0
    for d in due:
        task = tasks[d.human_task_id]
        if task.state != "ready":
            uow.deadline(d.id, {"status": "cancelled"})
            cancelled += 1
            continue
        if task.paused_at is not None:
            uow.deadline(d.id, {"status": "held"})
            continue
        deliveries.extend(_fire(cache, uow, d, task, now))
        fired += 1
    return fired, cancelled


def due_for_enqueue(sessions: sessionmaker[Session], settings: Settings, now: datetime,
                    limit: int = 2000) -> list[int]:
    """Deliveries to hand to the queue (again): retries whose time came, messages lost by the
    broker (queued long ago, never started), and sends whose worker died (lease expired)."""
    stale = now - timedelta(seconds=settings.requeue_after_seconds)
    with sessions.begin() as session:
        ids = list(session.scalars(select(Delivery.id).where(or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                 or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < Delivery.next_attempt_at,
                     Delivery.enqueued_at < stale)),
            and_(Delivery.status == "sending", Delivery.lease_until < now,
                 or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < Delivery.lease_until,
                     Delivery.enqueued_at < stale)),
        )).order_by(Delivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True)))
        if ids:
            session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(enqueued_at=now)
                            .execution_options(synchronize_session=False))
        return ids


def tick(sessions: sessionmaker[Session], settings: Settings, calendars: CalendarCache,
         clock: Callable[[], datetime], enqueue: Callable[[list[int]], None], batch: int = 500,
         budget_seconds: float | None = None) -> TickResult:
    """Fire all due deadlines (in batches, enqueueing each batch's sends as soon as it commits),
    then re-enqueue deliveries that need it. Safe to run concurrently with itself."""
    started = time.monotonic()
    budget = budget_seconds if budget_seconds is not None else max(5.0, settings.tick_seconds * 5)
    result = TickResult()
    while True:
        fired, cancelled, ids = fire_due(sessions, settings, calendars, clock(), batch)
        result.fired += fired
        result.cancelled += cancelled
        if ids:
            enqueue(ids)
            result.enqueued.extend(ids)
        if fired + cancelled < batch or time.monotonic() - started > budget:
            break
    again = due_for_enqueue(sessions, settings, clock())
    if again:
        enqueue(again)
        result.enqueued.extend(again)
    return result

