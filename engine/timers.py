"""BPMN timers: each step's Mutu Baku boundary timer, and firing the ones that fell due.

The due time of a step is computed in the office's working time (engine/sla.py) and
written into the step's non-interrupting timer, so SpiffWorkflow fires it at that same
instant; a paused step's timer waits "forever" (`PAUSED_TIMER`). The instance's
`next_timer_at` mirrors the earliest waiting timer, so the tick finds due instances with
one indexed query and never loads a workflow that has nothing to do.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .db import as_utc
from .errors import Conflict
from .models import ProcessInstance
from . import mirror as mirroring
from .sqltx import SqlTx, Stmt
from .store import LOCK_INSTANCE_SKIP, OPEN_TASKS, TaskIds, head_of
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import Runtime

# While a step's clock is paused its Mutu Baku timer must not fire: it waits "forever".
PAUSED_TIMER = datetime(9999, 12, 31, tzinfo=timezone.utc)

_I = ProcessInstance.__table__
DUE_INSTANCES = Stmt(select(_I.c.id).where(_I.c.status == "running", _I.c.next_timer_at <= bindparam("now"))
                     .order_by(_I.c.next_timer_at).limit(bindparam("limit")))


def set_step_timer(task, timer_id: str | None, due: datetime | None) -> None:
    """Make the step's Mutu Baku boundary timer fire at `due` (a Spiff task of the step)."""
    if not timer_id or due is None or task.parent is None:
        return
    for sibling in task.parent.children:
        if sibling.task_spec.bpmn_id == timer_id and sibling.has_state(TaskState.WAITING):
            sibling._set_internal_data(event_value=due.isoformat())


def next_timer(workflow: BpmnWorkflow) -> datetime | None:
    """When the workflow's earliest waiting timer fires."""
    times = []
    for event in workflow.waiting_events():
        value = event.value
        if isinstance(value, str):
            try:
                times.append(as_utc(datetime.fromisoformat(value)))
            except ValueError:
                continue
    return min(times) if times else None


def run_due_timers(rt: "Runtime", limit: int = 100) -> int:
    """Fire the BPMN timers (Mutu Baku) that are due; return how many instances moved."""
    now = rt.now()
    with rt.sessions() as session:
        due_ids = [r[0] for r in SqlTx(session).all(DUE_INSTANCES, {"now": now, "limit": limit})]
    moved = 0
    for instance_id in due_ids:
        try:
            moved += fire_timers(rt, instance_id, now)
        except Conflict:
            continue  # someone else moved it; the next tick looks again
    return moved


def fire_timers(rt: "Runtime", instance_id: int, now: datetime) -> int:
    """One instance's due timers, in one transaction (an instance another process holds is skipped)."""
    try:
        with rt.sessions.begin() as session:
            tx = SqlTx(session)
            row = tx.one(LOCK_INSTANCE_SKIP, {"instance": instance_id})
            if row is None:
                return 0
            head = head_of(row)
            if head.status != "running" or head.next_timer_at is None or head.next_timer_at > now:
                return 0
            workflow = rt.instances.workflow(session, tx, head.id, head.lock_version, head.version_id)
            before = {t.id for t in workflow.get_tasks(state=TaskState.WAITING)}
            workflow.refresh_timers()
            workflow.do_engine_steps()
            fired = [t for t in workflow.get_tasks(state=TaskState.FINISHED_MASK) if t.id in before]
            uow = UnitOfWork(tx)
            for t in fired:
                uow.audit("timer_fired", office_id=head.office_id, instance_id=head.id, at=now,
                          step=t.task_spec.bpmn_id, data={"name": t.task_spec.bpmn_name})
            mirroring.mirror(rt, session, uow, head, workflow, now, tx.all(OPEN_TASKS, {"instance": head.id}), TaskIds(tx))
            rt.instances.save(uow, head, workflow)
            return 1 if fired else 0
    except BaseException:
        rt.instances.forget(instance_id)
        raise
