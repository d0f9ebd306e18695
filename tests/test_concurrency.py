"""Races between real OS processes on one task: exactly one wins, the other gets a Conflict."""
import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from engine.models import AuditEvent, HumanTask

from .helpers import open_task, work_step
from .sopdata import DPMK, STEP_DATA

ROUNDS = 4


def _racer(settings, action, user_id, task_id, data, barrier, results):
    from engine.errors import Conflict
    from engine.services import Services
    services = Services.from_settings(settings)
    try:
        barrier.wait(timeout=30)
        try:
            if action == "complete":
                services.runtime.complete(user_id, task_id, data, claim=True)  # both race for an unclaimed step
            else:
                services.runtime.claim(user_id, task_id)
            results.put(("ok", user_id))
        except Conflict as exc:
            results.put(("conflict", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        services.dispose()


def _race(settings, action, task_id, calls):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(calls)), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(settings, action, uid, task_id, data, barrier, results))
             for uid, data in calls]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return outcomes


@pytest.fixture
def second_penerima(services):
    from engine.accounts import create_user, office_by_code
    with services.sessions.begin() as session:
        return create_user(session, "dpmk.penerima2", "rahasia-123", "Tono", office_by_code(session, "dpmk"),
                           groups=("Petugas Penerima Berita/Informasi",)).id


def test_two_processes_complete_one_task(services, demo, settings, second_penerima):
    for round_no in range(ROUNDS):
        iid = services.runtime.start(demo["dpmk.penerima"], DPMK, f"Balapan {round_no}")
        task = open_task(services, iid)
        services.runtime.unclaim(demo["dpmk.penerima"], task.id)  # the starter held it: back to the pool
        data = STEP_DATA[(DPMK, "step1")]
        outcomes = _race(settings, "complete", task.id, [(demo["dpmk.penerima"], data), (second_penerima, data)])
        kinds = sorted(o[0] for o in outcomes)
        assert kinds == ["conflict", "ok"], outcomes
        with services.sessions() as session:
            done = session.get(HumanTask, task.id)
            winner = next(o[1] for o in outcomes if o[0] == "ok")
            assert done.state == "completed" and done.completed_by_id == winner
            assert session.scalar(select(func.count()).where(
                AuditEvent.kind == "task_completed", AuditEvent.human_task_id == task.id)) == 1
            # exactly one next step exists: no double run of the workflow
            assert session.scalar(select(func.count()).where(
                HumanTask.instance_id == iid, HumanTask.bpmn_id == "step2")) == 1


def test_two_processes_claim_one_task(services, demo, settings, second_penerima):
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Klaim bersamaan")
    task = open_task(services, iid)
    services.runtime.unclaim(demo["dpmk.penerima"], task.id)  # the starter held it: back to the pool
    outcomes = _race(settings, "claim", task.id, [(demo["dpmk.penerima"], None), (second_penerima, None)])
    assert sorted(o[0] for o in outcomes) == ["conflict", "ok"], outcomes
    winner = next(o[1] for o in outcomes if o[0] == "ok")
    assert open_task(services, iid).assignee_id == winner


def test_no_lost_update_from_a_stale_cached_workflow(services, demo, settings):
    """Process A caches the workflow; process B moves the instance on; A must not overwrite B's work."""
    from engine.services import Services
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Cache basi")
    work_step(services, demo, DPMK, iid, "step1")  # A (this process) caches the workflow
    other = Services.from_settings(settings)
    try:
        work_step(other, demo, DPMK, iid, "step2")  # B moves on
    finally:
        other.dispose()
    work_step(services, demo, DPMK, iid, "step3")  # A must load B's state, not its stale cache
    with services.sessions() as session:
        steps = [t.bpmn_id for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == iid)
                                                    .order_by(HumanTask.id))]
    assert steps == ["step1", "step2", "step3", "step4"]
