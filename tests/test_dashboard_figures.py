"""The dashboard's figures on a known history, on SQLite and PostgreSQL.

The history (`history` fixture) is inserted row by row with chosen times and working
minutes, so every expected number below can be checked by hand; see the comments.
All times are WIB (UTC+7). NOW is Wednesday 2026-03-11 10:00 WIB; the period is the two
ISO weeks 2026-W10 (Mon 2 March .. Sun 8 March) and 2026-W11 (9 .. 15 March).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import dashboard as stats
from engine.models import HumanTask, Office, ProcessDefinition, ProcessInstance
from engine.dashboard import Filters

from .sopdata import DINSOS, DPMK, STEP_DATA

WIB = timezone(timedelta(hours=7))
# stored like the engine stores them: UTC (SQLite keeps no zone, so a WIB value would be misread)
NOW = datetime(2026, 3, 11, 10, 0, tzinfo=WIB).astimezone(timezone.utc)
PERIOD = dict(start=date(2026, 3, 2), end=date(2026, 3, 15))


def wib(m, d, h, mi=0, y=2026):
    return datetime(y, m, d, h, mi, tzinfo=WIB).astimezone(timezone.utc)


class History:
    """Writes instances and steps of the demo SOPs with explicit times."""

    def __init__(self, session, users):
        self.session, self.users = session, users
        self.offices = {o.code: o.id for o in session.scalars(select(Office))}
        self.versions = {d.key: d.latest_version_id for d in session.scalars(select(ProcessDefinition))}
        self.instances: dict[str, int] = {}

    def instance(self, label, key, started, status="running", completed=None):
        office = self.offices["dpmk" if key == DPMK else "dinsos"]
        inst = ProcessInstance(office_id=office, version_id=self.versions[key], subject=f"Berita {label}",
                               status=status, state={}, started_at=started, completed_at=completed)
        self.session.add(inst)
        self.session.flush()
        self.instances[label] = inst.id
        return inst.id

    def task(self, label, step, *, ready, due, state="completed", done=None, wm=None, by=None, holder=None,
             paused=None, mb=None):
        iid = self.instances[label]
        inst = self.session.get(ProcessInstance, iid)
        row = HumanTask(task_guid=str(uuid.uuid4()), instance_id=iid, office_id=inst.office_id,
                        version_id=inst.version_id, bpmn_id=step, name=f"Langkah {step}", lane="x", state=state,
                        assignee_id=self.users[holder or by] if (holder or by) else None,
                        completed_by_id=self.users[by] if by else None, mutu_baku_minutes=mb, ready_at=ready,
                        claimed_at=None, completed_at=done, due_at=due, paused_at=paused, working_minutes=wm)
        self.session.add(row)
        self.session.flush()
        return row.id


@pytest.fixture
def history(services, demo):
    """The known history (DPMK unless noted); the expected figures are derived in the tests."""
    now = NOW
    with services.sessions.begin() as s:
        h = History(s, demo)
        # I1: completed instance; step1 60 min on time, step2 10 min on time
        h.instance("I1", DPMK, wib(3, 2, 8), status="completed", completed=wib(3, 4, 9))
        h.task("I1", "step1", ready=wib(3, 2, 8), due=wib(3, 2, 10), done=wib(3, 2, 9), wm=60, by="dpmk.penerima")
        h.task("I1", "step2", ready=wib(3, 2, 9), due=wib(3, 2, 9, 15), done=wib(3, 2, 9, 10), wm=10,
               by="dpmk.kasubbag")
        # I2: step1 180 min late (due Tue), step2 12 on time, step3 8 on time (TIDAK), step1 again: open and late
        h.instance("I2", DPMK, wib(3, 3, 8))
        h.task("I2", "step1", ready=wib(3, 3, 8), due=wib(3, 3, 10), done=wib(3, 3, 11), wm=180, by="dpmk.penerima")
        h.task("I2", "step2", ready=wib(3, 3, 11), due=wib(3, 3, 11, 15), done=wib(3, 3, 11, 12), wm=12,
               by="dpmk.kasubbag")
        h.task("I2", "step3", ready=wib(3, 3, 11, 12), due=wib(3, 3, 11, 27), done=wib(3, 3, 11, 20), wm=8,
               by="dpmk.sekdin")
        h.task("I2", "step1", ready=wib(3, 3, 11, 20), due=now - timedelta(hours=2), state="ready",
               holder="dpmk.penerima")
        # I3: step2 20 min, due Mon 9 March 05:30 WIB (= Sunday in UTC), done Mon 06:00 WIB (= Sunday in UTC): late
        h.instance("I3", DPMK, wib(3, 6, 15))
        h.task("I3", "step2", ready=wib(3, 6, 16), due=wib(3, 9, 5, 30), done=wib(3, 9, 6), wm=20, by="dpmk.kasubbag")
        # I4: step2 30 min late (due Tue); step3 open, due in 30 minutes
        h.instance("I4", DPMK, wib(3, 10, 7))
        h.task("I4", "step2", ready=wib(3, 10, 8), due=wib(3, 10, 8, 15), done=wib(3, 10, 9), wm=30, by="dpmk.kasubbag")
        h.task("I4", "step3", ready=wib(3, 10, 9), due=now + timedelta(minutes=30), state="ready")
        # I5: before the period; I6: a cancelled step: neither counts
        h.instance("I5", DPMK, wib(2, 20, 8))
        h.task("I5", "step2", ready=wib(2, 20, 8), due=wib(2, 20, 8, 15), done=wib(2, 20, 9), wm=99, by="dpmk.kasubbag")
        h.instance("I6", DPMK, wib(3, 4, 8))
        h.task("I6", "step2", ready=wib(3, 4, 8), due=wib(3, 4, 8, 15), state="cancelled", done=wib(3, 4, 8, 5))
        # open step1s: due in exactly 1 h (not "within the hour"), paused and past due (not late), due exactly now
        h.instance("I7", DPMK, wib(3, 11, 8))
        h.task("I7", "step1", ready=wib(3, 11, 8), due=now + timedelta(hours=1), state="ready", holder="dpmk.penerima")
        h.instance("I8", DPMK, wib(3, 11, 7))
        h.task("I8", "step1", ready=wib(3, 11, 7), due=now - timedelta(hours=1), state="ready",
               paused=wib(3, 11, 8))
        h.instance("I9", DPMK, wib(3, 11, 8))
        h.task("I9", "step1", ready=wib(3, 11, 8), due=now, state="ready")
        # another office: must never show up in DPMK's figures
        h.instance("S1", DINSOS, wib(3, 3, 8))
        h.task("S1", "step1", ready=wib(3, 3, 8), due=wib(3, 3, 9), done=wib(3, 3, 9, 30), wm=90, by="dinsos.petugas")
        h.task("S1", "step2", ready=wib(3, 3, 9, 30), due=wib(3, 3, 10), done=wib(3, 3, 9, 35), wm=5,
               by="dinsos.pengelola")
        h.task("S1", "step3", ready=wib(3, 3, 9, 35), due=now - timedelta(days=1), state="ready")
        return {"offices": h.offices, "instances": dict(h.instances), "users": demo}


def _dpmk(history, **kw):
    return Filters(office_id=history["offices"]["dpmk"], **{**PERIOD, **kw})


def _by_step(rows):
    return {r.step: r for r in rows}


def test_percentile_is_linear_interpolation():
    assert stats.percentile([10, 12, 20, 30], 0.5) == 16  # between 12 and 20
    assert stats.percentile([10, 12, 20, 30], 0.9) == pytest.approx(27)  # pos 2.7: 20 + 0.7 * 10
    assert stats.percentile([60, 180], 0.9) == pytest.approx(168)
    assert stats.percentile([7], 0.9) == 7
    assert stats.percentile([], 0.5) is None


def test_overview_figures(services, history):
    with services.sessions() as s:
        rows = stats.overview(s, _dpmk(history), NOW)
    assert [r.step for r in rows] == ["step1", "step2", "step3", "step4", "step5"]  # every step, in order
    assert {r.office_code for r in rows} == {"dpmk"}
    st = _by_step(rows)
    s1, s2, s3, s4 = st["step1"], st["step2"], st["step3"], st["step4"]
    # open now: I2 (late), I7 (due in exactly 1 h), I8 (paused, past due), I9 (due now)
    assert (s1.open, s1.due_soon, s1.late_open, s1.paused) == (4, 1, 1, 1)
    assert (s1.completed, s1.on_time, s1.late_completed, s1.on_time_rate) == (2, 1, 1, 0.5)
    assert (s1.median_minutes, s1.p90_minutes) == (120.0, 168.0)  # [60, 180]
    assert s1.mutu_baku_minutes == 120 and s1.per_week == 1.0  # 2 completed in 2 weeks
    # step2: [10, 12, 20, 30]; I5 (before the period) and I6 (cancelled) do not count
    assert (s2.open, s2.completed, s2.on_time, s2.late_completed, s2.on_time_rate) == (0, 4, 2, 2, 0.5)
    assert (s2.median_minutes, s2.p90_minutes, s2.per_week) == (16.0, 27.0, 2.0)
    assert s2.mutu_baku_minutes == 15
    assert (s3.open, s3.due_soon, s3.late_open, s3.completed, s3.on_time_rate) == (1, 1, 0, 1, 1.0)
    assert (s3.median_minutes, s3.p90_minutes) == (8.0, 8.0)
    assert (s4.open, s4.completed, s4.on_time_rate, s4.median_minutes) == (0, 0, None, None)


def test_other_office_is_isolated(services, history):
    with services.sessions() as s:
        dinsos = stats.overview(s, Filters(office_id=history["offices"]["dinsos"], **PERIOD), NOW)
        officers = stats.officers(s, Filters(office_id=history["offices"]["dinsos"], **PERIOD), NOW)
        drill = stats.drill(s, Filters(office_id=history["offices"]["dinsos"], **PERIOD), "completed", NOW)
    assert {r.office_code for r in dinsos} == {"dinsos"} and {r.process_key for r in dinsos} == {DINSOS}
    st = _by_step(dinsos)
    assert (st["step1"].completed, st["step1"].on_time, st["step1"].median_minutes) == (1, 0, 90.0)
    assert (st["step2"].completed, st["step2"].median_minutes) == (1, 5.0)
    assert (st["step3"].open, st["step3"].late_open) == (1, 1)
    assert {o.full_name for o in officers} == {"Yoga Pratama", "Nur Aini", "Hendro Wibowo"}
    assert {r.instance_id for r in drill.rows} == {history["instances"]["S1"]}


def test_regency_view_sums_offices(services, history):
    with services.sessions() as s:
        rows = stats.overview(s, Filters(**PERIOD), NOW)
    assert {r.office_code for r in rows} == {"dpmk", "dinsos"}
    summary = {o.office_code: o for o in stats.office_summary(rows)}
    d = summary["dpmk"]
    assert (d.open, d.due_soon, d.late_open, d.completed, d.on_time, d.late_completed) == (5, 2, 1, 7, 4, 3)
    assert d.on_time_rate == pytest.approx(4 / 7)
    n = summary["dinsos"]
    assert (n.open, n.late_open, n.completed, n.on_time) == (1, 1, 2, 1)


def test_filters_narrow_every_figure(services, history):
    with services.sessions() as s:
        only2 = stats.overview(s, _dpmk(history, step="step2"), NOW)
        kasubbag = _by_step(stats.overview(s, _dpmk(history, officer_id=history["users"]["dpmk.kasubbag"]), NOW))
        penerima = _by_step(stats.overview(s, _dpmk(history, officer_id=history["users"]["dpmk.penerima"]), NOW))
        other_sop = stats.overview(s, _dpmk(history, process_key=DINSOS), NOW)
        week11 = _by_step(stats.overview(s, _dpmk(history, start=date(2026, 3, 9)), NOW))
    assert [r.step for r in only2] == ["step2"] and only2[0].completed == 4
    assert (kasubbag["step2"].completed, kasubbag["step1"].completed, kasubbag["step1"].open) == (4, 0, 0)
    assert (penerima["step1"].open, penerima["step1"].late_open, penerima["step1"].completed) == (2, 1, 2)
    assert other_sop == []  # DPMK has no such SOP: the office filter wins
    # 9..15 March: only I3 (done Monday 06:00 WIB, which is Sunday in UTC) and I4
    assert (week11["step2"].completed, week11["step2"].median_minutes, week11["step2"].on_time) == (2, 25.0, 0)
    assert week11["step2"].per_week == 2.0


def test_officers(services, history):
    with services.sessions() as s:
        rows = stats.officers(s, _dpmk(history), NOW)
        one = stats.officers(s, _dpmk(history, officer_id=history["users"]["dpmk.sekdin"]), NOW)
    # lane members of DPMK in name order (not ranked); the process owner has no lane
    assert [r.full_name for r in rows] == ["Agus Prasetyo", "Budi Santoso", "Rina Wulandari", "Sri Lestari"]
    by = {r.full_name: r for r in rows}
    agus, budi, rina, sri = by["Agus Prasetyo"], by["Budi Santoso"], by["Rina Wulandari"], by["Sri Lestari"]
    assert (agus.held, agus.completed, agus.on_time_rate, agus.steps) == (0, 0, None, ())
    assert (budi.held, budi.completed, budi.on_time, budi.on_time_rate) == (0, 4, 2, 0.5)
    assert [(x.step, x.completed, x.median_minutes, x.mutu_baku_minutes) for x in budi.steps] == [("step2", 4, 16.0, 15)]
    assert (rina.held, rina.held_late, rina.completed, rina.on_time) == (2, 1, 2, 1)
    assert [(x.step, x.median_minutes) for x in rina.steps] == [("step1", 120.0)]
    assert (sri.completed, sri.on_time_rate, sri.steps[0].median_minutes) == (1, 1.0, 8.0)
    assert [r.full_name for r in one] == ["Sri Lestari"]


def test_trends_weeks_in_wib(services, history):
    with services.sessions() as s:
        weeks = stats.trends(s, _dpmk(history), NOW)
    assert [w.label for w in weeks] == ["2026-W10", "2026-W11"]
    w10, w11 = weeks
    # W10: I1 step1+step2, I2 step1 (late)+step2+step3; W11: I3 and I4 step2, both late
    assert (w10.completed, w10.on_time, w10.late_completed, w10.on_time_rate) == (5, 4, 1, 0.8)
    assert (w11.completed, w11.on_time, w11.on_time_rate) == (2, 0, 0.0)
    # instances started: I1, I2, I3, I6 | I4, I7, I8, I9; completed: I1 (4 March)
    assert (w10.instances_started, w10.instances_completed) == (4, 1)
    assert (w11.instances_started, w11.instances_completed) == (4, 0)
    assert w10.week_start == date(2026, 3, 2)


def test_late_heatmap_by_weekday_of_due_time(services, history):
    with services.sessions() as s:
        rows = _by_step(stats.late_heatmap(s, _dpmk(history), NOW))
    # step1: I2 done late (due Tue 3 March), I2's return open past due (Wed 11 March); I8 is paused
    assert rows["step1"].by_weekday == (0, 1, 1, 0, 0, 0, 0)
    # step2: I3 due Monday 05:30 WIB (Sunday in UTC), I4 due Tuesday
    assert rows["step2"].by_weekday == (1, 1, 0, 0, 0, 0, 0)
    assert rows["step3"].total == 0 and rows["step2"].total == 2


def test_rework_counts_tidak_returns(services, history):
    with services.sessions() as s:
        rows = stats.rework(s, _dpmk(history), NOW)
        later = stats.rework(s, _dpmk(history, start=date(2026, 3, 9)), NOW)
    assert len(rows) == 1
    r = rows[0]
    # started: I1, I2, I7, I8, I9 (first step1 in the period); one return (I2)
    assert (r.process_key, r.started, r.returns, r.instances_returned, r.return_rate) == (DPMK, 5, 1, 1, 0.2)
    assert (later[0].started, later[0].returns) == (3, 0)


def test_drill_lists_the_steps_behind_each_figure(services, history):
    inst = history["instances"]
    f1, f2 = _dpmk(history, process_key=DPMK, step="step1"), _dpmk(history, process_key=DPMK, step="step2")
    with services.sessions() as s:
        def ids(filters, figure, **kw):
            result = stats.drill(s, filters, figure, NOW, **kw)
            assert result.total == len(result.rows)
            return sorted(r.instance_id for r in result.rows)
        assert ids(f1, "open") == sorted([inst["I2"], inst["I7"], inst["I8"], inst["I9"]])
        assert ids(f1, "late_open") == [inst["I2"]]
        assert ids(f1, "due_soon") == [inst["I9"]]
        assert ids(f1, "paused") == [inst["I8"]]
        assert ids(f2, "completed") == sorted([inst["I1"], inst["I2"], inst["I3"], inst["I4"]])
        assert ids(f2, "on_time") == sorted([inst["I1"], inst["I2"]])
        assert ids(f2, "late_completed") == sorted([inst["I3"], inst["I4"]])
        assert ids(f2, "late", weekday=0) == [inst["I3"]]
        assert ids(f2, "late", weekday=1) == [inst["I4"]]
        assert ids(_dpmk(history), "returns") == [inst["I2"]]
        row = stats.drill(s, f1, "late_open", NOW).rows[0]
    assert row.subject == "Berita I2" and row.late and row.person == "Rina Wulandari" and row.state == "ready"


def test_durations_are_working_time_of_the_office_calendar(services, demo):
    """Through the engine: Friday 15:30 WIB to Monday 07:45 WIB is 75 working minutes."""
    rt = services.runtime
    rt.clock = lambda: wib(3, 6, 15, 30)  # UTC, as utcnow() gives
    iid = rt.start(demo["dinsos.petugas"], DINSOS, "Akhir pekan")
    with services.sessions() as s:
        task = s.scalar(select(HumanTask).where(HumanTask.instance_id == iid))
    rt.clock = lambda: wib(3, 9, 7, 45)
    rt.claim(demo["dinsos.petugas"], task.id)
    rt.complete(demo["dinsos.petugas"], task.id, STEP_DATA[(DINSOS, "step1")])
    now = datetime(2026, 3, 9, 8, 0, tzinfo=WIB)
    with services.sessions() as s:
        office = s.scalar(select(Office.id).where(Office.code == "dinsos"))
        rows = _by_step(stats.overview(s, Filters(office_id=office, start=date(2026, 3, 2), end=date(2026, 3, 15)),
                                       now))
    s1 = rows["step1"]
    # Friday 15:30-16:30 (60) + Monday 07:30-07:45 (15); the Mutu Baku (60) ended Friday 16:30: late
    assert (s1.completed, s1.median_minutes, s1.on_time, s1.late_completed) == (1, 75.0, 0, 1)
    assert rows["step2"].open == 1


def test_tables_round_once(services, history):
    with services.sessions() as s:
        rows = stats.overview(s, _dpmk(history), NOW)
    table = stats.overview_table(rows)
    line = dict(zip(table.columns, table.rows[1]))
    assert (line["step_no"], line["completed"], line["on_time_pct"], line["median_minutes"], line["p90_minutes"]) \
        == ("step2", 4, 50.0, 16.0, 27.0)
