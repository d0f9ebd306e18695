"""Driving an SOP instance through the engine the way its actors would."""
from datetime import datetime

from sqlalchemy import select

from engine.db import as_utc
from engine.models import HumanTask, ProcessInstance, ProcessVersion

from .sopdata import ACTORS, REJECT, STEP_DATA


def open_task(services, instance_id: int) -> HumanTask:
    with services.sessions() as session:
        rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                       HumanTask.state == "ready")).all()
    assert len(rows) == 1, f"expected one open step, found {[r.bpmn_id for r in rows]}"
    return rows[0]


def work_step(services, users, process_key, instance_id, expect_step, data=None, reject=False):
    """Claim and complete the instance's open step as its lane's actor; return the task."""
    task = open_task(services, instance_id)
    assert task.bpmn_id == expect_step
    user_id = users[ACTORS[task.lane]]
    services.runtime.claim(user_id, task.id)
    if data is None:
        data = REJECT[(process_key, expect_step)] if reject else STEP_DATA[(process_key, expect_step)]
    services.runtime.complete(user_id, task.id, data)
    return task


def stored_timer_times(services, instance_id: int) -> list[datetime]:
    """When the stored workflow's waiting timers fire, read from the database (not the engine's
    cache) and restored through the public WorkflowStore."""
    store = services.runtime.store
    with services.sessions() as session:
        inst = session.get(ProcessInstance, instance_id)
        version = session.get(ProcessVersion, inst.version_id)
        workflow = store.workflow_from_dict(inst.state, *store.spec_from_dict(version.spec))
    return [as_utc(datetime.fromisoformat(e.value)) for e in workflow.waiting_events()]
