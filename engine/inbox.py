"""What staff read: the task inbox, a step's page, an instance's page, the SOPs one may start.

Reads only, from the mirrored `human_task` rows (never a workflow, except to find the
first lanes of an SOP version, which is cached per version). Every read checks the rules
of engine/access.py first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from . import access
from .access import Actor
from .db import as_utc
from .errors import LajurError, NotFound
from .models import (AuditEvent, Group, HumanTask, ProcessDefinition, ProcessInstance, ProcessVersion, TaskPause,
                     User, user_group)
from .sla import is_overdue, open_left, overdue_sql

if TYPE_CHECKING:
    from .runtime import Runtime


@dataclass(frozen=True)
class TaskRow:
    """One inbox line, read from `human_task` without loading any workflow."""

    id: int
    instance_id: int
    subject: str
    process_key: str
    process_name: str
    bpmn_id: str
    name: str
    lane: str | None
    state: str
    assignee_id: int | None
    assignee: str | None
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    mutu_baku_minutes: float | None
    paused: bool
    returned: dict | None  # sent back by a decision: its task_returned data (reason, by whom), else None
    left_minutes: float | None = field(default=None, kw_only=True)  # engine.sla.open_left: working minutes left, what the badge shows

    def overdue(self, now: datetime) -> bool:
        return is_overdue(self.state, self.due_at, self.paused or None, now)  # paused: any non-None


VIEWS = ("mine", "group", "overdue", "completed", "office")


def task_select(actor: Actor, view: str, now: datetime):
    """The inbox view's statement (also the rules engine.queries.inbox_counts counts by)."""
    ht = HumanTask
    groups = sorted(actor.group_ids) or [-1]
    base = select(ht).where(ht.office_id == actor.office_id)
    if view == "mine":
        return base.where(ht.state == "ready", ht.assignee_id == actor.id).order_by(ht.due_at, ht.id)
    if view == "group":
        return base.where(ht.state == "ready", ht.assignee_id.is_(None),
                          ht.group_id.in_(groups)).order_by(ht.due_at, ht.id)
    if view == "overdue":
        mine = or_(ht.assignee_id == actor.id, and_(ht.assignee_id.is_(None), ht.group_id.in_(groups)))
        scope = True if actor.has_role("supervisor") else mine
        return base.where(overdue_sql(ht, now), scope).order_by(ht.due_at, ht.id)
    if view == "completed":
        return base.where(ht.state == "completed", ht.completed_by_id == actor.id) \
            .order_by(ht.completed_at.desc(), ht.id.desc())
    access.check_office_view(actor)
    return base.where(ht.state == "ready").order_by(ht.due_at, ht.id)


def list_tasks(rt: "Runtime", user_id: int, view: str = "mine", limit: int = 200, offset: int = 0) -> list[TaskRow]:
    if view not in VIEWS:
        raise LajurError(f"unknown view {view!r} (use {', '.join(VIEWS)})")
    with rt.sessions() as session:
        actor = access.load_actor(session, user_id)
        now = rt.now()
        inner = task_select(actor, view, now).limit(limit).offset(offset).subquery()
        q = (select(inner, ProcessInstance.subject, ProcessDefinition.key, ProcessDefinition.name.label("pname"),
                    User.full_name)
             .join(ProcessInstance, ProcessInstance.id == inner.c.instance_id)
             .join(ProcessVersion, ProcessVersion.id == inner.c.version_id)
             .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
             .outerjoin(User, User.id == inner.c.assignee_id))
        order = [inner.c.completed_at.desc(), inner.c.id.desc()] if view == "completed" else [inner.c.due_at,
                                                                                               inner.c.id]
        rows = session.execute(q.order_by(*order)).all()
        back = returns_of(session, [(r.instance_id, r.id) for r in rows if r.state == "ready"])
        # one cached calendar per office on the page (CalendarCache: no query while its revision holds)
        calendars = {o: rt.calendars.get(session, o) for o in {r.office_id for r in rows if r.state == "ready"}}
    return [TaskRow(id=r.id, instance_id=r.instance_id, subject=r.subject, process_key=r.key,
                    process_name=r.pname, bpmn_id=r.bpmn_id, name=r.name, lane=r.lane, state=r.state,
                    assignee_id=r.assignee_id, assignee=r.full_name, ready_at=as_utc(r.ready_at),
                    due_at=as_utc(r.due_at), completed_at=as_utc(r.completed_at),
                    mutu_baku_minutes=r.mutu_baku_minutes, paused=r.paused_at is not None,
                    returned=back.get(r.id),
                    left_minutes=open_left(calendars[r.office_id], r.state, r.due_at, r.paused_at is not None, now)
                    if r.state == "ready" else None) for r in rows]


def returns_of(session: Session, steps: list[tuple[int, int]]) -> dict[int, dict]:
    """The steps of (instance id, step id) that were sent back: step id -> task_returned data.
    One query over the audit trail's instance index."""
    if not steps:
        return {}
    ids = {task_id for _, task_id in steps}
    rows = session.execute(select(AuditEvent.human_task_id, AuditEvent.data).where(
        AuditEvent.instance_id.in_(sorted({i for i, _ in steps})), AuditEvent.kind == "task_returned"))
    return {task_id: _returned(data) for task_id, data in rows if task_id in ids}


def _returned(data: dict | None) -> dict:
    """task_returned data as read: its time as an aware datetime."""
    data = dict(data or {})
    try:
        data["at"] = as_utc(datetime.fromisoformat(data["at"])) if data.get("at") else None
    except (TypeError, ValueError):
        data["at"] = None
    return data


def instance_returns(session: Session, instance_id: int) -> list[tuple[datetime, dict]]:
    """(at, data) of each step sent back in the instance, oldest first."""
    return [(as_utc(at), _returned(data)) for at, data in session.execute(
        select(AuditEvent.at, AuditEvent.data).where(AuditEvent.instance_id == instance_id,
                                                     AuditEvent.kind == "task_returned").order_by(AuditEvent.id))]


def task_completion(session: Session, task_id: int, instance_id: int) -> dict | None:
    """The task_completed audit data of a step (what was submitted, with its Persyaratan)."""
    return session.scalar(select(AuditEvent.data).where(AuditEvent.instance_id == instance_id,
                                                        AuditEvent.human_task_id == task_id,
                                                        AuditEvent.kind == "task_completed"))


def _task(session: Session, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


def completed_steps(session: Session, instance_id: int) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(
        HumanTask.instance_id == instance_id, HumanTask.state == "completed").order_by(HumanTask.completed_at,
                                                                                       HumanTask.id)))


def task_detail(rt: "Runtime", user_id: int, task_id: int) -> dict:
    """A step's page: the step, its SOP text and form, and what the user may do on it
    (`may_act`: in its lane; `may_clock`: may pause or resume its clock while open)."""
    with rt.sessions() as session:
        actor = access.load_actor(session, user_id)
        task = _task(session, task_id)
        access.check_see(actor, task.office_id)
        version = session.get(ProcessVersion, task.version_id)
        step = version.steps.get(task.bpmn_id, {})
        return {
            "task": task, "step": step, "sop_step": version.sop.get("steps", {}).get(task.bpmn_id, {}),
            "schema": version.forms.get(step.get("form"), {}), "sop": version.sop,
            "may_act": access.in_lane(actor, task),
            "may_clock": task.state == "ready" and access.may_clock(actor, task),
            "instance": session.get(ProcessInstance, task.instance_id),
            "history": completed_steps(session, task.instance_id),
            "returns": instance_returns(session, task.instance_id),
            "returned": returns_of(session, [(task.instance_id, task.id)]).get(task.id),
            "office_calendar": rt.calendars.get(session, task.office_id),
            "pauses": pauses_of(session, task.id),
        }


def pauses_of(session: Session, task_id: int) -> list:
    """The step's clock pauses, oldest first (the step page shows how they moved the due time)."""
    return list(session.scalars(select(TaskPause).where(TaskPause.human_task_id == task_id).order_by(TaskPause.id)))


def lane_members(rt: "Runtime", user_id: int, task_id: int) -> list[tuple[str, str]]:
    """(username, full name) of the active members of the task's lane: whom a supervisor may
    give the step to. Only for supervisors of the task's office."""
    with rt.sessions() as session:
        actor = access.load_actor(session, user_id)
        task = _task(session, task_id)
        access.check_reassign(actor, task)
        rows = session.execute(select(User.username, User.full_name).join(
            user_group, user_group.c.user_id == User.id).where(
            user_group.c.group_id == task.group_id, User.active.is_(True)).order_by(User.full_name)).all()
        return [(r.username, r.full_name) for r in rows]


def instance_detail(rt: "Runtime", user_id: int, instance_id: int) -> dict:
    with rt.sessions() as session:
        actor = access.load_actor(session, user_id)
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} does not exist")
        access.check_see(actor, instance.office_id)
        tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)
                                     .order_by(HumanTask.ready_at, HumanTask.id)))
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id)
                                      .order_by(AuditEvent.id)))
        for e in events:
            _ = e.user
        version = instance.version
        _ = version.definition
        return {"instance": instance, "version": version, "tasks": tasks, "events": events}


def startable(rt: "Runtime", user_id: int) -> list[ProcessDefinition]:
    """The SOPs this user may start: of their office, whose first step is in one of their lanes."""
    from .commands import start_lanes
    with rt.sessions() as session:
        actor = access.load_actor(session, user_id)
        lanes = set(session.scalars(select(Group.name).where(Group.id.in_(sorted(actor.group_ids) or [-1]))))
        result = []
        for definition in session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.office_id == actor.office_id).order_by(ProcessDefinition.name)):
            if definition.latest_version_id and access.may_start(
                    lanes, start_lanes(rt, session, definition.latest_version_id)):
                result.append(definition)
        return result
