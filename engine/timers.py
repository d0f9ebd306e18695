"""BPMN timers: each step's Mutu Baku boundary timer, and firing the ones that fell due.

The due time of a step is computed in the office's working time (engine/sla.py) and
written into the step's non-interrupting timer, so SpiffWorkflow fires it at that same
instant; a paused step's timer waits "forever" (`PAUSED_TIMER`). The instance's
`next_timer_at` mirrors the earliest waiting timer, so the tick finds due instances with
one indexed query and never loads a workflow that has nothing to do.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import bindparam, select
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .db import as_utc, utcnow
from .errors import Conflict
from .models import ProcessInstance
from . import incidents, mirror as mirroring
from .sqltx import SqlTx, Stmt
from .store import LOCK_INSTANCE_SKIP, OPEN_TASKS, TaskIds, head_of, unit_of_work


if TYPE_CHECKING:
    from .runtime import Runtime

# While a step's clock is paused its Mutu Baku timer must not fire: it waits "forever".
PAUSED_TIMER = datetime(9999, 12, 31, tzinfo=timezone.utc)

_I = ProcessInstance.__table__
DUE_INSTANCES = Stmt(select(_I.c.id).where(_I.c.status == "running", _I.c.next_timer_at <= bindparam("now"))
                     .order_by(_I.c.next_timer_at).limit(bindparam("limit")))


def set_step_timer(task, timer_id: str | None, due: datetime | None) -> None:
    """Make the step's Mutu Baku boundary timer fire at `due` (a Spiff task of the step).

    A timer's fire time is its task's `internal_data["event_value"]` (ISO 8601), which
    SpiffWorkflow sets from the real clock when the timer starts waiting and compares with
    the real clock in `has_fired`."""
    if not timer_id or due is None or task.parent is None:
        return
    for sibling in task.parent.children:
        if sibling.task_spec.bpmn_id == timer_id and sibling.has_state(TaskState.WAITING):
            sibling.internal_data["event_value"] = due.isoformat()


_DUE = "0001-01-01T00:00:00+00:00"      # before any real time: SpiffWorkflow fires it
_NOT_DUE = "9999-12-31T00:00:00+00:00"  # after any real time: it waits


@contextmanager
def on_clock(rt: "Runtime", workflow: BpmnWorkflow, now: datetime) -> Iterator[None]:
    """Run SpiffWorkflow with the engine's clock deciding which timers are due.

    SpiffWorkflow compares a waiting timer with the real time wherever it refreshes timers
    (every `do_engine_steps`). Under an injected clock (tests, a replay) each waiting timer is
    shown as plainly due or plainly not due by `now` for the duration of the run, then given
    back its own fire time if it still waits. With the real clock nothing is done."""
    if rt.clock is utcnow:
        yield
        return
    saved = {}
    for task in workflow.get_tasks(state=TaskState.WAITING):
        value = task.internal_data.get("event_value")
        if not isinstance(value, str):
            continue
        try:
            due = as_utc(datetime.fromisoformat(value))
        except ValueError:
            continue
        saved[task] = value
        task.internal_data["event_value"] = _DUE if due <= now else _NOT_DUE
    try:
        yield
    finally:
        for task, value in saved.items():
            if task.internal_data.get("event_value") in (_DUE, _NOT_DUE):
                task.internal_data["event_value"] = value


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
            with on_clock(rt, workflow, now):
                failure = incidents.guarded(workflow, lambda: (workflow.refresh_timers(), workflow.do_engine_steps()))
            fired = [t for t in workflow.get_tasks(state=TaskState.FINISHED_MASK) if t.id in before]
            uow = unit_of_work(tx, head)
            for t in fired:
                uow.audit("timer_fired", office_id=head.office_id, instance_id=head.id, at=now,
                          step=t.task_spec.bpmn_id, data={"name": t.task_spec.bpmn_name})
            if failure is not None:  # stopped at the failing element; the tick no longer picks it (not running)
                incidents.record(tx, uow, head, failure, now)
                fired = fired or [failure]
            mirroring.mirror(rt, session, uow, head, workflow, now, tx.all(OPEN_TASKS, {"instance": head.id}), TaskIds(tx))
            rt.instances.save(uow, head, workflow)
            return 1 if fired else 0
    except BaseException:
        rt.instances.forget(instance_id)
        raise
