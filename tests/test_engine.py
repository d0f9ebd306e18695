"""Both SOPs end to end through the engine service, on SQLite and PostgreSQL."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict, Forbidden, FormInvalid, NotFound
from engine.models import AuditEvent, HumanTask, ProcessInstance

from .helpers import open_task, stored_timer_times, work_step
from .test_sla import wib
from .sopdata import DINSOS, DPMK, STEP_DATA

PATHS = {DPMK: ["step1", "step2", "step3", "step4", "step5"], DINSOS: ["step1", "step2", "step3", "step4"]}
STARTER = {DPMK: "dpmk.penerima", DINSOS: "dinsos.petugas"}
MUTU_BAKU = {DPMK: [120, 15, 15, 5, 5], DINSOS: [60, 30, 15, 5]}


def _instance(services, iid):
    with services.sessions() as session:
        return session.get(ProcessInstance, iid)


def _events(services, iid):
    with services.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid).order_by(AuditEvent.id)))


@pytest.mark.parametrize("key", [DPMK, DINSOS])
def test_approve_path_runs_to_the_end(services, demo, key):
    iid = services.runtime.start(demo[STARTER[key]], key, "Berita uji")
    for step, minutes in zip(PATHS[key], MUTU_BAKU[key]):
        task = work_step(services, demo, key, iid, step)
        assert task.mutu_baku_minutes == minutes
    inst = _instance(services, iid)
    assert inst.status == "completed" and inst.completed_at is not None
    with services.sessions() as session:
        tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == iid).order_by(HumanTask.id)).all()
    assert [t.bpmn_id for t in tasks] == PATHS[key]
    assert all(t.state == "completed" and t.completed_by_id and t.claimed_at and t.due_at for t in tasks)
    assert all(t.ready_at <= t.claimed_at <= t.completed_at for t in tasks)
    kinds = [e.kind for e in _events(services, iid)]
    assert kinds[0] == "instance_started" and kinds[-1] == "instance_completed"
    assert kinds.count("task_completed") == len(PATHS[key])
    completed = [e for e in _events(services, iid) if e.kind == "task_completed"]
    assert completed[0].data["bukti_multimedia" if key == DPMK else "foto_video"] == \
        STEP_DATA[(key, "step1")]["bukti_multimedia" if key == DPMK else "foto_video"]


@pytest.mark.parametrize("key,approver", [(DPMK, "dpmk.sekdin"), (DINSOS, "dinsos.ketua")])
def test_tidak_returns_to_step1_and_resubmission_completes(services, demo, key, approver):
    iid = services.runtime.start(demo[STARTER[key]], key, "Berita yang ditolak")
    for step in PATHS[key][:2]:
        work_step(services, demo, key, iid, step)
    work_step(services, demo, key, iid, "step3", reject=True)
    returned = open_task(services, iid)
    assert returned.bpmn_id == "step1" and returned.assignee_id == demo[STARTER[key]]  # back to its author
    for step in PATHS[key]:
        work_step(services, demo, key, iid, step)
    assert _instance(services, iid).status == "completed"
    rejected = [e for e in _events(services, iid) if e.kind == "task_completed" and e.step == "step3"][0]
    reason_field = "alasan_penolakan" if key == DPMK else "alasan_penolakan_ketua"
    assert rejected.data[reason_field]
    assert rejected.data["paraf_step3"]["user"] == approver  # who gave the (negative) paraf
    with services.sessions() as session:
        assert session.scalar(select(func.count()).where(HumanTask.instance_id == iid,
                                                         HumanTask.bpmn_id == "step1")) == 2


def test_invalid_form_data_gives_field_errors_and_changes_nothing(services, demo):
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Data salah")
    task = open_task(services, iid)
    before = (_instance(services, iid).lock_version, len(_events(services, iid)))
    bad = dict(STEP_DATA[(DPMK, "step1")], nomor_agenda="abc", bukti_multimedia=["not-a-hash"])
    del bad["judul_berita"]
    with pytest.raises(FormInvalid) as err:
        services.runtime.complete(demo["dpmk.penerima"], task.id, bad)
    assert set(err.value.errors) == {"nomor_agenda", "bukti_multimedia.0", "judul_berita"}
    assert (_instance(services, iid).lock_version, len(_events(services, iid))) == before
    assert open_task(services, iid).id == task.id


def test_tidak_without_reason_is_refused(services, demo):
    iid = services.runtime.start(demo["dinsos.petugas"], DINSOS, "Tanpa alasan")
    for step in PATHS[DINSOS][:2]:
        work_step(services, demo, DINSOS, iid, step)
    task = open_task(services, iid)
    with pytest.raises(FormInvalid) as err:
        services.runtime.complete(demo["dinsos.ketua"], task.id, {"persetujuan_ketua": "TIDAK"})
    assert "alasan_penolakan_ketua" in err.value.errors


def test_other_office_and_other_lane_are_forbidden(services, demo):
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Akses")
    task = open_task(services, iid)
    with pytest.raises(Forbidden):
        services.runtime.claim(demo["dinsos.petugas"], task.id)  # other office
    with pytest.raises(Forbidden):
        services.runtime.complete(demo["dinsos.petugas"], task.id, STEP_DATA[(DPMK, "step1")])
    with pytest.raises(Forbidden):
        services.runtime.instance_detail(demo["dinsos.ketua"], iid)
    with pytest.raises(Forbidden):
        services.runtime.claim(demo["dpmk.operator"], task.id)  # same office, other lane
    with pytest.raises(Forbidden):
        services.runtime.start(demo["dpmk.operator"], DPMK, "Bukan pelaksana langkah 1")
    with pytest.raises(NotFound):
        services.runtime.start(demo["dinsos.petugas"], DPMK, "SOP kantor lain")
    assert services.runtime.list_tasks(demo["dinsos.petugas"], "group") == []
    assert services.runtime.list_tasks(demo["dpmk.operator"], "group") == []
    # the starter holds the first step of their own lane
    assert [r.id for r in services.runtime.list_tasks(demo["dpmk.penerima"], "mine")] == [task.id]


def test_claim_unclaim_reassign_and_conflicts(services, demo, db_url):
    from engine.accounts import create_user, office_by_code
    with services.sessions.begin() as session:
        second = create_user(session, "dpmk.penerima2", "rahasia-123", "Tono", office_by_code(session, "dpmk"),
                             groups=("Petugas Penerima Berita/Informasi",)).id
    rt = services.runtime
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Klaim")
    task = open_task(services, iid)
    rt.claim(demo["dpmk.penerima"], task.id)
    rt.claim(demo["dpmk.penerima"], task.id)  # claiming again is harmless
    with pytest.raises(Conflict):
        rt.claim(second, task.id)
    with pytest.raises(Conflict):
        rt.complete(second, task.id, STEP_DATA[(DPMK, "step1")])
    assert [r.id for r in rt.list_tasks(demo["dpmk.penerima"], "mine")] == [task.id]
    assert rt.list_tasks(second, "group") == []
    with pytest.raises(Forbidden):
        rt.unclaim(second, task.id)
    with pytest.raises(Forbidden):
        rt.reassign(second, task.id, "dpmk.penerima2")  # not a supervisor
    with pytest.raises(Forbidden):
        rt.reassign(demo["dpmk.kasubbag"], task.id, "dpmk.operator")  # target not in the lane
    rt.reassign(demo["dpmk.kasubbag"], task.id, "dpmk.penerima2")
    assert [r.id for r in rt.list_tasks(second, "mine")] == [task.id]
    rt.unclaim(second, task.id)
    assert [r.id for r in rt.list_tasks(demo["dpmk.penerima"], "group")] == [task.id]
    with pytest.raises(Conflict):  # an unclaimed step is not completed by accident
        rt.complete(second, task.id, STEP_DATA[(DPMK, "step1")])
    rt.complete(second, task.id, STEP_DATA[(DPMK, "step1")], claim=True)  # claim and complete, explicitly
    with pytest.raises(Conflict):
        rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])
    assert [r.id for r in rt.list_tasks(second, "completed")] == [task.id]
    kinds = [e.kind for e in _events(services, iid)]
    for kind in ("task_claimed", "task_reassigned", "task_unclaimed", "task_completed"):
        assert kind in kinds


def test_due_time_is_working_time_and_drives_the_bpmn_timer(services, demo):
    # Friday 2026-05-29 15:30 WIB; Monday 2026-06-01 is a national holiday (Pancasila Day).
    friday = datetime(2026, 5, 29, 8, 30, tzinfo=timezone.utc)
    services.runtime.clock = lambda: friday
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Jumat sore")
    task = open_task(services, iid)
    due = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=timezone.utc)
    assert due == datetime(2026, 6, 2, 1, 30, tzinfo=timezone.utc)  # Tuesday 08:30 WIB
    inst = _instance(services, iid)
    assert inst.next_timer_at.replace(tzinfo=timezone.utc) == due
    # the workflow's own timer fires at that same instant
    assert stored_timer_times(services, iid) == [due]


def test_overdue_view_and_mutu_baku_timer_firing(services, demo):
    """The injected clock decides SpiffWorkflow's timers too: these times lie after the real
    time, so without it the Mutu Baku timer would not fire."""
    services.runtime.clock = lambda: wib(2027, 3, 1, 8, 0)  # a Monday
    iid = services.runtime.start(demo["dinsos.petugas"], DINSOS, "Terlambat")
    task = open_task(services, iid)
    assert services.runtime.run_due_timers() == 0  # not due yet
    services.runtime.clock = lambda: wib(2027, 3, 8, 8, 0)  # a week later
    assert [r.id for r in services.runtime.list_tasks(demo["dinsos.petugas"], "overdue")] == [task.id]
    assert [r.id for r in services.runtime.list_tasks(demo["dinsos.ketua"], "overdue")] == [task.id]  # supervisor
    assert services.runtime.list_tasks(demo["dinsos.pengelola"], "overdue") == []
    assert services.runtime.run_due_timers() == 1
    assert services.runtime.run_due_timers() == 0  # fires once
    fired = [e for e in _events(services, iid) if e.kind == "timer_fired"]
    assert [e.step for e in fired] == ["step1_mutu_baku"]
    # the non-interrupting timer leaves the step open; the process still completes
    assert open_task(services, iid).id == task.id
    for step in PATHS[DINSOS]:
        work_step(services, demo, DINSOS, iid, step)
    assert _instance(services, iid).status == "completed"


def test_spec_is_stored_once_not_in_each_instance(services, demo):
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Ukuran")
    with services.sessions() as session:
        inst = session.get(ProcessInstance, iid)
        assert "spec" not in inst.state and "subprocess_specs" not in inst.state
        assert inst.version.spec["spec"]["name"] == "dpmk_pemutakhiran_website"


def test_restart_loads_state_from_the_database(services, demo, settings):
    """A second process (no cache) continues an instance the first one started."""
    from engine.services import Services
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Lintas proses")
    work_step(services, demo, DPMK, iid, "step1")
    other = Services.from_settings(settings)
    try:
        for step in PATHS[DPMK][1:]:
            work_step(other, demo, DPMK, iid, step)
    finally:
        other.dispose()
    assert _instance(services, iid).status == "completed"
