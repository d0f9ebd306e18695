"""A step's deadline rows (the schedule its reminders fire on), and delivering reminders.

A step that becomes ready gets one `deadline` row per reminder level (warn, breach; see
engine/reminders.py for the policy; the repeats are added one at a time by the tick,
engine/tick.py). Pausing the step's clock holds its deadlines; resuming, or a change of the
office calendar, re-times them from the step's ready time plus the paused working time.
Every write of these rows goes through the unit of work (engine/uow.py).

Sending the deliveries these deadlines produce is engine/outbox.py's.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, select

from .calendar import OfficeCalendar
from .models import Deadline
from .reminders import first_deadlines
from .sla import due_of
from .sqltx import Stmt
from .uow import UnitOfWork

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
