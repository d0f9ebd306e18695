"""The SLA clock through the engine: office calendars, overrides, recompute, pause/resume."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.errors import Conflict, Forbidden, FormInvalid
from engine.models import AuditEvent, Deadline, HumanTask, ProcessInstance
from engine.timers import PAUSED_TIMER

from .helpers import open_task, stored_timer_times
from .sopdata import DINSOS, DPMK, STEP_DATA

WIB = ZoneInfo("Asia/Jakarta")


def wib(*args) -> datetime:
    return datetime(*args, tzinfo=WIB).astimezone(timezone.utc)


def aware(dt):
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def at(services, when: datetime):
    services.runtime.clock = lambda: when


def _state(services, iid):
    """(task, instance.next_timer_at, the workflow's own timer fire times, deadlines by level)."""
    task = open_task(services, iid)
    with services.sessions() as session:
        inst = session.get(ProcessInstance, iid)
        dls = {(d.level, d.seq): (aware(d.due_at), d.status) for d in session.scalars(
            select(Deadline).where(Deadline.human_task_id == task.id))}
    timers = stored_timer_times(services, iid)
    return task, aware(inst.next_timer_at), timers, dls


def _kinds(services, iid):
    with services.sessions() as session:
        return [(e.kind, e.data) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.instance_id == iid).order_by(AuditEvent.id))]


def test_friday_afternoon_before_a_holiday_monday_is_due_tuesday(services, demo):
    at(services, wib(2026, 5, 29, 15, 30))  # Friday; Monday 1 June is Pancasila Day
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Jumat sore")
    task, next_timer, timers, dls = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 6, 2, 8, 30) == next_timer
    assert timers == [aware(task.due_at)]
    # warn at 80 % = 96 working minutes: 60 on Friday, 36 on Tuesday
    assert dls[("warn", 0)] == (wib(2026, 6, 2, 8, 6), "pending")
    assert dls[("breach", 0)] == (wib(2026, 6, 2, 8, 30), "pending")


def test_cuti_bersama_counts_unless_the_office_works_then(services, demo):
    at(services, wib(2026, 12, 23, 15, 30))  # Wed; Thu 24 cuti bersama, Fri 25 Christmas
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Menjelang Natal")
    task, next_timer, timers, _ = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 12, 28, 9, 0) == next_timer == timers[0]
    # the office decides to work on cuti bersama days: open steps are re-timed at once
    assert services.runtime.set_schedule(None, "dpmk", None, include_cuti_bersama=False) == 1
    task, next_timer, timers, dls = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 12, 24, 9, 0) == next_timer == timers[0]
    assert dls[("breach", 0)][0] == wib(2026, 12, 24, 9, 0)
    assert dls[("warn", 0)][0] == wib(2026, 12, 24, 8, 36)


def test_a_step_spanning_days_and_an_office_day_off(services, demo):
    at(services, wib(2026, 11, 26, 15, 0))  # Thursday, 60 minutes left that day
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Lintas hari")
    task, _, _, _ = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 11, 27, 8, 30)  # Friday
    # an extra day off on Friday (a regency event) moves it to Monday
    assert services.runtime.set_override(None, "dpmk", date(2026, 11, 27), working=False, note="Hari jadi") == 1
    task, next_timer, timers, dls = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 11, 30, 8, 30) == next_timer == timers[0]
    # and an extra working Saturday brings it back to Saturday (Monday's hours are borrowed)
    services.runtime.set_override(None, "dpmk", date(2026, 11, 28), working=True, note="Kerja bakti")
    task, next_timer, timers, _ = _state(services, iid)
    assert aware(task.due_at) == wib(2026, 11, 28, 8, 30) == next_timer == timers[0]
    # removing both overrides restores Friday
    services.runtime.set_override(None, "dpmk", date(2026, 11, 27), working=None)
    services.runtime.set_override(None, "dpmk", date(2026, 11, 28), working=None)
    assert aware(_state(services, iid)[0].due_at) == wib(2026, 11, 27, 8, 30)
    kinds = [k for k, _ in _kinds(services, iid)]
    assert kinds.count("due_recomputed") == 3  # the last removal changes nothing
    with services.sessions() as session:
        changes = session.scalars(select(AuditEvent).where(AuditEvent.kind == "calendar_changed")).all()
    assert [c.data["working"] for c in changes] == [False, True, None, None]


def test_custom_office_schedule_and_other_office_untouched(services, demo):
    at(services, wib(2026, 11, 23, 11, 30))  # Monday
    dpmk = services.runtime.start(demo["dpmk.penerima"], DPMK, "DPMK")
    dinsos = services.runtime.start(demo["dinsos.petugas"], DINSOS, "Dinsos")
    before_dinsos = aware(_state(services, dinsos)[0].due_at)
    assert before_dinsos == wib(2026, 11, 23, 13, 30)  # 60 minutes, across the 12:00-13:00 break
    # DPMK works mornings only, 07:00-12:00 (a hypothetical special schedule)
    mornings = {str(d): [["07:00", "12:00"]] for d in range(5)}
    services.runtime.set_schedule(demo["admin"], "dpmk", mornings)
    assert aware(_state(services, dpmk)[0].due_at) == wib(2026, 11, 24, 8, 30)  # 30 today + 90 Tuesday
    assert aware(_state(services, dinsos)[0].due_at) == before_dinsos
    with pytest.raises(Forbidden):
        services.runtime.set_schedule(demo["dpmk.penerima"], "dpmk", None)  # staff may not
    with pytest.raises(Forbidden):
        services.runtime.set_schedule(demo["dinsos.ketua"], "dpmk", None)  # another office's supervisor
    services.runtime.set_schedule(demo["dpmk.kasubbag"], "dpmk", None)  # own supervisor: back to default
    assert aware(_state(services, dpmk)[0].due_at) == wib(2026, 11, 23, 14, 30)


def test_pause_and_resume_shift_due_deadlines_and_bpmn_timer(services, demo):
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))  # Monday; 120 minutes -> due 10:00
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Menunggu rilis revisi")
    task = open_task(services, iid)
    rt.claim(demo["dpmk.penerima"], task.id)
    at(services, wib(2026, 11, 23, 9, 0))
    with pytest.raises(FormInvalid):
        rt.pause(demo["dpmk.penerima"], task.id, "  ")
    with pytest.raises(Forbidden):
        rt.pause(demo["dpmk.operator"], task.id, "bukan pemegang")
    rt.set_pause_mode(None, "dpmk", "immediate")  # the clock stops at once (no request)
    rt.pause(demo["dpmk.penerima"], task.id, "Menunggu rilis pers revisi")
    with pytest.raises(Conflict):
        rt.pause(demo["dpmk.penerima"], task.id, "lagi")
    task, next_timer, timers, dls = _state(services, iid)
    assert task.paused_at and task.pause_reason == "Menunggu rilis pers revisi"
    assert timers == [PAUSED_TIMER] and next_timer == PAUSED_TIMER  # the Mutu Baku timer cannot fire
    assert {s for _, s in dls.values()} == {"held"}
    assert [r.paused for r in rt.list_tasks(demo["dpmk.penerima"], "mine")] == [True]
    # paused over lunch and into the afternoon: 09:00-14:00 is 4 working hours
    at(services, wib(2026, 11, 23, 14, 0))
    due = rt.resume(demo["dpmk.kasubbag"], task.id, "Rilis revisi diterima")
    task, next_timer, timers, dls = _state(services, iid)
    # 120 + 240 paused = 360 working minutes from Monday 08:00: 08:00-12:00 (240), 13:00-15:00 (120)
    assert aware(task.due_at) == wib(2026, 11, 23, 15, 0) == next_timer == timers[0] == due
    assert task.paused_at is None
    assert dls[("breach", 0)] == (wib(2026, 11, 23, 15, 0), "pending")
    assert dls[("warn", 0)] == (wib(2026, 11, 23, 14, 36), "pending")
    kinds = _kinds(services, iid)
    paused = [d for k, d in kinds if k == "clock_paused"]
    resumed = [d for k, d in kinds if k == "clock_resumed"]
    assert paused == [{"reason": "Menunggu rilis pers revisi", "pause_request": 1, "mode": "immediate"}]
    assert resumed[0]["reason"] == "Rilis revisi diterima" and resumed[0]["paused_minutes"] == 240
    # completing: working minutes exclude the pause; deadlines are cancelled
    at(services, wib(2026, 11, 23, 14, 30))
    rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])
    with services.sessions() as session:
        done = session.get(HumanTask, task.id)
        assert done.working_minutes == pytest.approx(360 - 240 - 30)
        assert {d.status for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))} \
            == {"cancelled"}
