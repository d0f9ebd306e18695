"""Moving running instances between versions (engine/migration.py) and `lajur migrate-instances`.

DPMK's SOP v1 (the demo), instances at different steps (some claimed), then v2: step 2's Mutu
Baku 15 -> 20 minutes, a new step after step 1, step 5 removed (tests/migration_data.py).
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from engine import migration
from engine.cli import main
from engine.db import as_utc
from engine.deploy import deploy_folder
from engine.errors import Forbidden, LajurError, NotFound, OtherOffice
from engine.models import AuditEvent, Deadline, HumanTask, ProcessInstance, ProcessVersion
from engine.sla import due_of

from .helpers import open_task, work_step
from .migration_data import DPMK, write_v2

# Monday 24 November 2026, 09:00 WIB: inside working hours, so due times are plain to check
MONDAY = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def world(services, demo, tmp_path):
    """v1 instances at step 1, step 2 (claimed and not), step 4 and step 5; then v2 deployed."""
    rt = services.runtime
    rt.clock = lambda: MONDAY
    start = lambda subject: rt.start(demo["dpmk.penerima"], DPMK, subject)  # noqa: E731
    at = {name: start(name) for name in ("step1", "step2-claimed", "step2-open", "step4", "step5", "done")}
    for name in ("step2-claimed", "step2-open", "step4", "step5", "done"):
        work_step(services, demo, DPMK, at[name], "step1")
    for name in ("step4", "step5", "done"):
        work_step(services, demo, DPMK, at[name], "step2")
        work_step(services, demo, DPMK, at[name], "step3")
    for name in ("step5", "done"):
        work_step(services, demo, DPMK, at[name], "step4")
    work_step(services, demo, DPMK, at["done"], "step5")
    rt.claim(demo["dpmk.kasubbag"], open_task(services, at["step2-claimed"]).id)
    rt.claim(demo["dpmk.penerima"], open_task(services, at["step1"]).id)
    with services.sessions.begin() as session:
        deploy_folder(session, write_v2(tmp_path / DPMK), rt.store)
    return at


def _by_subject(report):
    return {i.subject: i for i in report.instances}


def test_dry_run_says_who_can_move_and_why_not(services, demo, world):
    before = _snapshot(services)
    report = migration.plan(services.runtime, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
    moves = _by_subject(report)
    assert set(moves) == {"step1", "step2-claimed", "step2-open", "step4", "step5"}  # not the completed one
    assert [n for n, m in moves.items() if not m.can_move] == ["step5"]
    assert moves["step5"].refusal.code == "step_removed"
    assert str(moves["step5"].refusal) == "step step5 is open and no longer exists in version 2"
    step2 = moves["step2-claimed"].steps[0]
    assert (step2.step, step2.holder, step2.minutes_before, step2.minutes) == ("step2", "dpmk.kasubbag", 15, 20)
    with services.sessions() as session:
        calendar = services.runtime.calendars.get(session, open_task(services, world["step1"]).office_id)
    assert step2.due == due_of(calendar, step2.ready_at, 20, 1.0, 0) and step2.due > step2.due_before
    assert moves["step1"].steps[0].minutes == moves["step1"].steps[0].minutes_before == 120
    assert _snapshot(services) == before  # the dry run wrote nothing


def _snapshot(services):
    with services.sessions() as session:
        return (session.execute(text("SELECT id, version_id, lock_version FROM process_instance ORDER BY id")).all(),
                session.execute(text("SELECT id, version_id, bpmn_id, due_at, assignee_id FROM human_task "
                                     "ORDER BY id")).all(),
                session.execute(text("SELECT id, status, due_at FROM deadline ORDER BY id")).all(),
                session.scalar(text("SELECT count(*) FROM audit_event")))


def test_apply_moves_keeps_claims_recomputes_due_times_and_deadlines(services, demo, world):
    rt = services.runtime
    claimed_before = open_task(services, world["step2-claimed"])
    report = migration.apply(rt, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 2, batch=2)
    outcome = {i.subject: i.outcome for i in report.instances}
    assert outcome == {"step1": "moved", "step2-claimed": "moved", "step2-open": "moved", "step4": "moved",
                       "step5": "stayed"}
    with services.sessions() as session:
        v2 = session.scalar(select(ProcessVersion.id).where(ProcessVersion.version == 2))
        v1 = session.scalar(select(ProcessVersion.id).where(ProcessVersion.version == 1,
                                                            ProcessVersion.id != v2,
                                                            ProcessVersion.process_id == "dpmk_pemutakhiran_website"))
        versions = {i: session.get(ProcessInstance, i).version_id for i in world.values()}
        assert versions[world["step5"]] == v1 and versions[world["done"]] == v1
        assert all(versions[world[n]] == v2 for n in ("step1", "step2-claimed", "step2-open", "step4"))
        calendar = rt.calendars.get(session, claimed_before.office_id)
        step2 = session.get(HumanTask, claimed_before.id)
        assert (step2.version_id, step2.bpmn_id, step2.mutu_baku_minutes) == (v2, "step2", 20)
        assert step2.assignee_id == demo["dpmk.kasubbag"] and step2.claimed_at is not None  # the claim is kept
        assert as_utc(step2.due_at) == due_of(calendar, as_utc(step2.ready_at), 20, 1.0, 0)
        assert as_utc(step2.due_at) > as_utc(claimed_before.due_at)
        deadlines = {(d.level, d.seq): d for d in session.scalars(select(Deadline).where(
            Deadline.human_task_id == step2.id))}
        assert deadlines[("warn", 0)].status == "pending"
        assert as_utc(deadlines[("warn", 0)].due_at) == due_of(calendar, as_utc(step2.ready_at), 20, 0.8, 0)
        assert as_utc(deadlines[("breach", 0)].due_at) == as_utc(step2.due_at)
        step1 = session.scalar(select(HumanTask).where(HumanTask.instance_id == world["step1"],
                                                       HumanTask.state == "ready"))
        assert step1.version_id == v2 and step1.assignee_id == demo["dpmk.penerima"] and step1.mutu_baku_minutes == 120
        audits = session.execute(select(AuditEvent.instance_id, AuditEvent.data, AuditEvent.user_id).where(
            AuditEvent.kind == "instance_migrated")).all()
        assert sorted(a.instance_id for a in audits) == sorted(world[n] for n in ("step1", "step2-claimed",
                                                                                  "step2-open", "step4"))
        assert all(a.user_id == demo["dpmk.pemilik"] and a.data["from"] == 1 and a.data["to"] == 2 for a in audits)
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.kind == "due_recomputed",
                                                          AuditEvent.human_task_id == step2.id)) is not None
        timer_at = session.get(ProcessInstance, world["step2-claimed"]).next_timer_at
        assert as_utc(timer_at) == as_utc(step2.due_at)  # the BPMN timer fires at the new due time
    # the moved instances run on v2: step 1 goes to the new step, step 4 ends the process
    rt.complete(demo["dpmk.penerima"], step1.id, _data("step1"))
    assert open_task(services, world["step1"]).bpmn_id == "step1b"
    work_step(services, demo, DPMK, world["step4"], "step4")
    with services.sessions() as session:
        assert session.get(ProcessInstance, world["step4"]).status == "completed"
    work_step(services, demo, DPMK, world["step2-open"], "step2")
    assert open_task(services, world["step2-open"]).bpmn_id == "step3"
    # the chain of every moved instance still verifies
    from engine.audit import verify
    with services.sessions() as session:
        assert verify(session).broken is None


def _data(step):
    from .sopdata import STEP_DATA
    return STEP_DATA[(DPMK, step)]


def test_a_failed_instance_rolls_back_alone(services, demo, world, backend):
    victim = world["step2-open"]
    before = open_task(services, victim)
    with services.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text(f"CREATE TRIGGER refuse_victim BEFORE UPDATE ON process_instance WHEN OLD.id = {victim} "
                              "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse_victim() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'refused by a test trigger'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(f"CREATE TRIGGER refuse_victim BEFORE UPDATE ON process_instance FOR EACH ROW "
                              f"WHEN (OLD.id = {victim}) EXECUTE FUNCTION refuse_victim()"))
    try:
        report = migration.apply(services.runtime, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
    finally:
        with services.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_victim" + ("" if backend == "sqlite" else " ON process_instance")))
            if backend != "sqlite":
                conn.execute(text("DROP FUNCTION refuse_victim()"))
    outcome = {i.id: i for i in report.instances}
    assert outcome[victim].outcome == "failed" and "refused by a test trigger" in str(outcome[victim].refusal)
    assert outcome[world["step2-claimed"]].outcome == "moved"
    after = open_task(services, victim)
    # its step's writes (sent before the instance write in the same batch) were rolled back with it
    assert (after.version_id, after.mutu_baku_minutes, after.due_at) == (before.version_id, 15, before.due_at)
    with services.sessions() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.instance_id == victim,
                                                          AuditEvent.kind.in_(("instance_migrated",
                                                                               "due_recomputed")))) is None
    # and it can be moved later
    again = migration.apply(services.runtime, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
    assert {i.id: i.outcome for i in again.instances} == {victim: "moved", world["step5"]: "stayed"}


def test_who_may_plan_and_bad_arguments(services, demo, world):
    rt = services.runtime
    with pytest.raises(Forbidden):
        migration.plan(rt, demo["dpmk.kasubbag"], "dpmk", DPMK, 1, 2)  # staff of the office
    with pytest.raises(OtherOffice):
        migration.plan(rt, demo["dinsos.pemilik"], "dpmk", DPMK, 1, 2)  # a process owner of another office
    with pytest.raises(NotFound):
        migration.plan(rt, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 7)
    with pytest.raises(NotFound):
        migration.plan(rt, demo["dpmk.pemilik"], "dpmk", "no-such-sop", 1, 2)
    with pytest.raises(LajurError):
        migration.plan(rt, demo["dpmk.pemilik"], "dpmk", DPMK, 2, 2)


def test_cli_dry_run_then_apply(services, demo, world, tmp_path):
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    def lajur(*args, code=0):
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        return result

    out = lajur("migrate-instances", DPMK, "--office", "dpmk", "--from", 1, "--to", 2, "--dry-run").stdout
    assert f"#{world['step5']} 'step5' [running]: stays: step step5 is open and no longer exists in version 2" in out
    assert f"#{world['step2-claimed']} 'step2-claimed' [running]: can move" in out
    assert "held by dpmk.kasubbag (kept); Mutu Baku 15 -> 20 min" in out
    assert out.rstrip().endswith("5 instance(s), 4 can move, 1 stay (dry run: nothing changed)")
    versions = lajur("versions", "dpmk", DPMK).stdout.splitlines()
    assert "running 5, done 1, incident 0" in versions[0] and "running 0, done 0, incident 0" in versions[1]
    bad = lajur("migrate-instances", DPMK, "--office", "dpmk", "--from", 1, "--to", 9, code=1)
    assert bad.stderr.strip() == f"error: SOP {DPMK!r} has no version 9" and bad.stdout == ""
    assert lajur("migrate-instances", DPMK, "--office", "nowhere", "--from", 1, "--to", 2, code=1).stderr.count("\n") == 1
    assert "process owner" in lajur("migrate-instances", DPMK, "--office", "dpmk", "--from", 1, "--to", 2,
                                    "--as", "dpmk.sekdin", code=1).stderr
    out = lajur("migrate-instances", DPMK, "--office", "dpmk", "--from", 1, "--to", 2, "--as", "dpmk.pemilik").stdout
    assert out.rstrip().endswith("moved 4, stayed 1, failed 0")
    versions = lajur("versions", "dpmk", DPMK).stdout.splitlines()
    assert "running 1, done 1, incident 0" in versions[0] and "running 4, done 0, incident 0" in versions[1]


def test_an_instance_in_incident_is_counted_and_moves_in_incident(services, demo, world):
    """The incidents contract: an instance stopped by a run-time error has status `incident`."""
    with services.engine.begin() as conn:
        conn.execute(text("UPDATE process_instance SET status = 'incident' WHERE id = :i"), {"i": world["step4"]})
    from engine.versions import list_versions
    with services.sessions() as session:
        v1 = list_versions(session, "dpmk", DPMK)[0]
    assert (v1.running, v1.done, v1.incident) == (4, 1, 1)
    report = migration.apply(services.runtime, None, "dpmk", DPMK, 1, 2)
    moved = {i.id: (i.status, i.outcome) for i in report.instances}
    assert moved[world["step4"]] == ("incident", "moved")
    with services.sessions() as session:
        instance = session.get(ProcessInstance, world["step4"])
        assert instance.status == "incident" and instance.version.version == 2


def test_a_paused_step_stays_paused_with_held_reminders_and_resumes_on_the_new_mutu_baku(services, demo, world):
    from datetime import timedelta
    rt = services.runtime
    task = open_task(services, world["step2-open"])
    rt.pause(demo["dpmk.kasubbag"], task.id, "menunggu revisi press release")
    rt.clock = lambda: MONDAY + timedelta(minutes=5)
    migration.apply(rt, demo["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
    with services.sessions() as session:
        moved = session.get(HumanTask, task.id)
        assert moved.mutu_baku_minutes == 20 and moved.paused_at is not None
        statuses = {d.level: d.status for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))}
        assert statuses == {"warn": "held", "breach": "held"}
        assert session.get(ProcessInstance, world["step2-open"]).next_timer_at.year == 9999  # the timer waits
    rt.clock = lambda: MONDAY + timedelta(minutes=12)
    due = rt.resume(demo["dpmk.kasubbag"], task.id, "revisi diterima")
    with services.sessions() as session:
        calendar = rt.calendars.get(session, task.office_id)
        moved = session.get(HumanTask, task.id)
        assert as_utc(due) == due_of(calendar, as_utc(moved.ready_at), 20, 1.0, 12)  # 20 min + 12 paused
        assert {d.status for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))} == {
            "pending"}
