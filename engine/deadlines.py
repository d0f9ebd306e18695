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
from .reminders import first_deadlines, level_of
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


# ---- a new Mutu Baku or reminder policy (an instance moved to a new version) ---------------

ALL_DEADLINES = Stmt(select(_D.c.id, _D.c.level, _D.c.seq, _D.c.status).where(_D.c.human_task_id == bindparam("task")))


def reschedule(uow: UnitOfWork, task_id: int, office_id: int, ready_at: datetime, minutes: float | None,
               paused: float, policy: list[dict], calendar: OfficeCalendar, held: bool) -> None:
    """Replace an open step's waiting reminders by those of `minutes` and `policy`, counted
    from its ready time (plus `paused` working minutes), through the deadline writers.

    A level that already fired stays fired (it is not sent twice); a waiting one is re-timed,
    or cancelled when the new policy has no such level; a warn or breach level the step never
    had is added. A paused step's (`held`) deadlines stay held."""
    existing = {(level, seq): (deadline_id, status)
                for deadline_id, level, seq, status in uow.tx.all(ALL_DEADLINES, {"task": task_id})}
    breach, repeat = level_of(policy, "breach"), level_of(policy, "repeat")
    waiting = "held" if held else "pending"
    for (level, seq), (deadline_id, status) in existing.items():
        if status not in ("pending", "held"):
            continue
        wanted = level_of(policy, level)
        if not minutes or wanted is None or (level == "repeat" and breach is None):
            uow.deadline(deadline_id, {"status": "cancelled"})
            continue
        fraction = breach["at"] + seq * repeat["at"] if level == "repeat" else wanted["at"]
        uow.deadline(deadline_id, {"at_fraction": fraction,
                                   "due_at": due_of(calendar, ready_at, minutes, fraction, paused)})
    if minutes:
        uow.add_deadlines([{"human_task_id": task_id, "office_id": office_id, "level": p["level"], "seq": 0,
                            "at_fraction": p["at"], "due_at": due_of(calendar, ready_at, minutes, p["at"], paused),
                            "status": waiting}
                           for p in policy if p["level"] in ("warn", "breach") and (p["level"], 0) not in existing])
