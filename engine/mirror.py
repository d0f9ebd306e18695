"""The mirror: a workflow's ready user tasks as `human_task` rows.

After SpiffWorkflow ran, every state change calls `mirror`: a newly ready step gets its row,
its due time in the office's working time (also written into its BPMN timer) and its
reminder deadlines; an open row whose step is no longer ready is cancelled with its
deadlines and waiting deliveries. The inbox, the SLA clock and the dashboard read these
rows only, never a workflow. All writes go through the caller's unit of work.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from . import deadlines, timers
from .sla import due_time
from .store import InstanceHead, TaskIds
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import Runtime


# (new row id, spiff task, bpmn id, lane name, lane group id) -> the user who holds the new step at once, or None
HolderRule = Callable[[int, object, str, "str | None", "int | None"], "int | None"]


class Opened(list):
    """The ids of the steps a change opened (a list of ints, as callers use it), with what a
    message about them needs in `steps`: id, name, lane, holder id and name (no extra read)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.steps: list[dict] = []


def mirror(rt: "Runtime", session: Session, uow: UnitOfWork, head: InstanceHead, workflow: BpmnWorkflow,
           now: datetime, open_rows: list, ids: TaskIds, calendar=None, holder_for: HolderRule | None = None) -> list[int]:
    """Record the rows of newly ready and no longer ready steps; return the new step ids.

    `open_rows` are the instance's open rows (id, task guid, bpmn id) before the change.
    `holder_for` names who holds a new step from the start (the starter's first step, a step
    sent back to its previous holder: engine/rework.py); the others open unclaimed in their lane.
    Sets the head's status (completed when the workflow is) and next timer."""
    steps = rt.instances.steps(session, head.version_id)
    open_by_guid = {guid: (row_id, bpmn_id) for row_id, guid, bpmn_id in open_rows}
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    ready_ids = {str(t.id) for t in ready}
    opened = Opened()
    for task in ready:
        guid = str(task.id)
        if guid in open_by_guid:
            continue
        bpmn_id = task.task_spec.bpmn_id
        step = steps.get(bpmn_id, {})
        lane = task.task_spec.lane
        calendar = calendar or rt.calendars.get(session, head.office_id)
        minutes = step.get("mutu_baku_minutes")
        due = due_time(calendar, now, minutes)
        row_id = ids.take()
        group_id = rt.instances.lane_group(session, head.office_id, lane)
        holder = holder_for(row_id, task, bpmn_id, lane, group_id) if holder_for is not None else None
        uow.open_task({
            "id": row_id, "task_guid": guid, "instance_id": head.id, "office_id": head.office_id,
            "version_id": head.version_id, "bpmn_id": bpmn_id,
            "name": step.get("name") or task.task_spec.bpmn_name or bpmn_id,
            "lane": lane, "group_id": group_id,
            "mutu_baku_minutes": minutes, "ready_at": now, "due_at": due,
            "assignee_id": holder, "claimed_at": now if holder is not None else None})
        opened.append(row_id)
        opened.steps.append({"id": row_id, "bpmn_id": bpmn_id, "name": step.get("name") or task.task_spec.bpmn_name
                             or bpmn_id, "lane": lane, "holder_id": holder, "holder_name": None})
        uow.add_deadlines(deadlines.deadline_rows(row_id, head.office_id, now, minutes, step, calendar))
        ready = {"lane": lane, "due_at": due.isoformat() if due else None}
        if holder is not None:
            ready["holder"] = holder
        uow.audit("task_ready", office_id=head.office_id, instance_id=head.id, human_task_id=row_id, at=now,
                  step=bpmn_id, data=ready)
        timers.set_step_timer(task, step.get("timer_id"), due)
    for guid, (row_id, bpmn_id) in open_by_guid.items():
        if guid not in ready_ids:
            cancel_step(uow, row_id, now)
            uow.audit("task_cancelled", office_id=head.office_id, instance_id=head.id, human_task_id=row_id,
                      at=now, step=bpmn_id)
    if workflow.is_completed() and head.status == "running":
        head.status, head.completed_at = "completed", now
        uow.audit("instance_completed", office_id=head.office_id, instance_id=head.id, at=now)
    head.next_timer_at = timers.next_timer(workflow)
    return opened


def cancel_step(uow: UnitOfWork, task_id: int, now: datetime) -> None:
    """A step that is no longer open in its workflow: it, its deadlines and its waiting sends end."""
    uow.task(task_id, {"state": "cancelled", "completed_at": now})
    uow.deadlines(task_id, ("pending", "held"), {"status": "cancelled"})
    uow.cancel_deliveries(task_id)
