"""Driving an SOP instance through the engine the way its actors would."""
from sqlalchemy import select

from engine.models import HumanTask

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
