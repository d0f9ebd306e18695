"""The SLA clock of running steps: pause, resume, and re-timing when an office calendar changes.

A step's due time is its ready time plus its Mutu Baku in the office's working time plus
the working time its clock stood still (engine/sla.py). Pausing holds the step's reminder
deadlines and parks its BPMN timer (`timers.PAUSED_TIMER`); resuming moves the due time on
by the paused working time and releases the deadlines; a calendar change re-times every
open step of the office. Each change writes the step, its deadlines, the pause row, the
audit record and the instance's timers through one unit of work.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import access, deadlines, limits, timers
from .calendar import WeeklySchedule
from .commands import step_change
from .errors import Conflict, LajurError, NotFound
from .models import CalendarOverride, HumanTask, Office
from .sla import paused_minutes
from .sqltx import SqlTx, Stmt
from .store import LOCK_INSTANCE, InstanceHead, LockedTask, head_of, unit_of_work
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import Runtime

_T = HumanTask.__table__


class OpenStep(NamedTuple):
    id: int
    instance_id: int
    office_id: int
    task_guid: str
    bpmn_id: str
    ready_at: datetime
    due_at: datetime | None
    paused_at: datetime | None
    mutu_baku_minutes: float | None


OPEN_STEPS_OF_OFFICE = Stmt(
    select(_T.c.id, _T.c.instance_id, _T.c.office_id, _T.c.task_guid, _T.c.bpmn_id, _T.c.ready_at, _T.c.due_at,
           _T.c.paused_at, _T.c.mutu_baku_minutes)
    .where(_T.c.office_id == bindparam("office"), _T.c.state == "ready").order_by(_T.c.instance_id, _T.c.id))


def _step(task: LockedTask | tuple) -> OpenStep:
    """Times as aware UTC whatever the database gave."""
    if isinstance(task, LockedTask):
        values = (task.id, task.instance_id, task.office_id, task.task_guid, task.bpmn_id, task.ready_at,
                  task.due_at, task.paused_at, task.mutu_baku_minutes)
    else:
        values = tuple(task)
    step = OpenStep(*values)
    return step._replace(ready_at=SqlTx.when(step.ready_at), due_at=SqlTx.when(step.due_at),
                         paused_at=SqlTx.when(step.paused_at))


def _audit(uow: UnitOfWork, step: OpenStep, user_id: int | None, now: datetime, kind: str, data: dict) -> None:
    uow.audit(kind, office_id=step.office_id, instance_id=step.instance_id, human_task_id=step.id, user_id=user_id,
              at=now, step=step.bpmn_id, data=data)


def retime_instance(rt: "Runtime", session: Session, uow: UnitOfWork, head: InstanceHead,
                    moved: list[tuple[OpenStep, datetime | None]]) -> None:
    """Write the steps' due times (PAUSED_TIMER while paused) into their BPMN timers, keep the
    instance's next_timer_at in step, and send the unit of work with the instance write."""
    workflow = rt.instances.workflow(session, uow.tx, head.id, head.lock_version, head.version_id)
    steps = rt.instances.steps(session, head.version_id)
    for step, due in moved:
        spiff_task = workflow.get_task_from_id(UUID(step.task_guid))
        if spiff_task is not None:
            timers.set_step_timer(spiff_task, steps.get(step.bpmn_id, {}).get("timer_id"), due)
    head.next_timer_at = timers.next_timer(workflow)
    rt.instances.save(uow, head, workflow)


def check_clock(task: LockedTask, actor: access.Actor) -> None:
    access.check_see(actor, task.office_id)
    if task.state != "ready":
        raise Conflict("this step is already closed")
    access.check_clock(actor, task)


def pause(rt: "Runtime", user_id: int, task_id: int, reason: str) -> str:
    """Stop a step's clock (e.g. waiting for a revised press release), or ask a supervisor to:
    a pause is a request unless the actor is a supervisor or the office stops clocks at once
    (engine/pause_requests.py). Returns "paused" or "requested"."""
    from .pause_requests import request_pause
    return request_pause(rt, user_id, task_id, reason)


def stop_clock(rt: "Runtime", session: Session, uow: UnitOfWork, task: LockedTask, reason: str,
               paused_by: int | None, actor_id: int | None, now: datetime, data: dict | None = None) -> None:
    """Stop the step's clock in the caller's unit of work and send it with the instance write:
    the step marked paused, a pause row, its reminders held, the BPMN timer parked, the audit."""
    if task.paused_at is not None:
        raise Conflict("the clock of this step is already paused")
    uow.task(task.id, {"paused_at": now, "pause_reason": reason[:500]})
    uow.pause_opened(task.id, now, reason[:500], paused_by)
    deadlines.hold(uow, task.id)
    step = _step(task)
    _audit(uow, step, actor_id, now, "clock_paused", {"reason": reason, **(data or {})})
    retime_instance(rt, session, uow, head_of(task), [(step, timers.PAUSED_TIMER)])


def resume(rt: "Runtime", user_id: int, task_id: int, reason: str = "") -> datetime | None:
    """Restart a paused clock; the due time moves on by the paused working time. Returns it."""
    reason = limits.text("reason", reason, limits.REASON)
    now = rt.now()
    with step_change(rt, task_id, user_id) as (session, _, task, actor, uow):
        check_clock(task, actor)
        if task.paused_at is None:
            raise Conflict("the clock of this step is not paused")
        step = _step(task)
        calendar = rt.calendars.get(session, task.office_id, task.calendar_revision)
        paused = paused_minutes(session, task.id, calendar) + calendar.working_minutes_between(step.paused_at, now)
        uow.pause_closed(task.id, now, reason or None, task.user_id)
        due = deadlines.retime(uow, step, calendar, paused, release=True,
                               task_values={"paused_at": None, "pause_reason": None})
        _audit(uow, step, task.user_id, now, "clock_resumed", {
            "reason": reason or None, "paused_minutes": paused,
            "due_before": step.due_at.isoformat() if step.due_at else None,
            "due_at": due.isoformat() if due else None})
        retime_instance(rt, session, uow, head_of(task), [(step, due)])
        return due


# ---- the office calendar ----------------------------------------------------------------------

def _office(session: Session, office_code: str) -> Office:
    office = session.scalar(select(Office).where(Office.code == office_code).with_for_update())
    if office is None:
        raise NotFound(f"office {office_code!r} does not exist")
    return office


def _calendar_actor(session: Session, user_id: int | None, office: Office) -> int | None:
    """`None` is the operator at the console."""
    actor = access.load_actor(session, user_id) if user_id is not None else None
    access.check_calendar(actor, office.id)
    return actor.id if actor else None


def set_schedule(rt: "Runtime", user_id: int | None, office_code: str, schedule: dict | None,
                 include_cuti_bersama: bool | None = None) -> int:
    """Set an office's weekly schedule (None: the Perpres 21/2023 default); re-time open steps.
    Returns how many open steps got a new due time."""
    try:
        normal = WeeklySchedule.from_dict(schedule).to_dict() if schedule is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise LajurError(f"invalid schedule: {exc}") from None
    now = rt.now()
    with rt.sessions.begin() as session:
        office = _office(session, office_code)
        actor = _calendar_actor(session, user_id, office)
        office.schedule = normal
        if include_cuti_bersama is not None:
            office.include_cuti_bersama = include_cuti_bersama
        return calendar_changed(rt, session, office, actor, now, {
            "schedule": normal, "include_cuti_bersama": office.include_cuti_bersama})


def set_override(rt: "Runtime", user_id: int | None, office_code: str, day, working: bool | None,
                 note: str = "") -> int:
    """Make `day` an extra day off (working=False) or working day (True) for the office;
    `working=None` removes the override. Returns how many open steps were re-timed."""
    now = rt.now()
    with rt.sessions.begin() as session:
        office = _office(session, office_code)
        actor = _calendar_actor(session, user_id, office)
        row = session.scalar(select(CalendarOverride).where(CalendarOverride.office_id == office.id,
                                                            CalendarOverride.day == day))
        if working is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(CalendarOverride(office_id=office.id, day=day, working=working, note=note or ""))
        else:
            row.working, row.note = working, note or ""
        session.flush()
        return calendar_changed(rt, session, office, actor, now, {
            "day": day.isoformat(), "working": working, "note": note or None})


def calendar_changed(rt: "Runtime", session: Session, office: Office, user_id: int | None, now: datetime,
                     data: dict) -> int:
    """Bump the revision and re-time every open step of the office, in the caller's transaction."""
    office.calendar_revision = (office.calendar_revision or 1) + 1
    session.flush()
    try:
        calendar = rt.calendars.get(session, office.id)
    except ValueError as exc:
        raise LajurError(f"calendar refused: {exc}") from None
    tx = SqlTx(session)
    uow = UnitOfWork(tx)
    uow.audit("calendar_changed", office_id=office.id, user_id=user_id, at=now, data=data)
    uow.flush()
    by_instance: dict[int, list[OpenStep]] = {}
    for row in tx.all(OPEN_STEPS_OF_OFFICE, {"office": office.id}):
        step = _step(row)
        by_instance.setdefault(step.instance_id, []).append(step)
    changed = 0
    for instance_id, steps in by_instance.items():
        try:
            head = head_of(tx.one(LOCK_INSTANCE, {"instance": instance_id}))
            uow = unit_of_work(tx, head)
            moved = []
            for step in steps:
                after = deadlines.retime(uow, step, calendar, paused_minutes(session, step.id, calendar))
                if after != step.due_at:
                    moved.append((step, timers.PAUSED_TIMER if step.paused_at is not None else after))
                    _audit(uow, step, user_id, now, "due_recomputed", {
                        "due_before": step.due_at.isoformat() if step.due_at else None,
                        "due_at": after.isoformat() if after else None})
            if moved:
                retime_instance(rt, session, uow, head, moved)
                changed += len(moved)
            else:
                uow.flush()
        except BaseException:
            rt.instances.forget(instance_id)
            raise
    return changed
