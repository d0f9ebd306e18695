"""A dashboard history made by the engine itself, end to end, and its figures.

Nothing is inserted by hand: a process owner deploys a copy of the DPMK SOP whose step ids
are words (`terima`, `periksa`, `setuju`, `unggah`, `arsip`, so the entry step is not
`step1`), the office works in WITA (Asia/Makassar, UTC+8, not WIB), and staff start, claim
and complete steps through the Runtime's public methods with an injected clock, including a
TIDAK loop and steps that run late. The due times and working minutes are the engine's own
(the office calendar: Mon-Thu 07:30-16:00 with a 12:00-13:00 break).

All times below are WITA. NOW is Wednesday 4 March 2026 10:00.
"""
from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import dashboard
from engine.accounts import user_by_name
from engine.dashboard import Filters
from engine.deploy import deploy_folder
from engine.models import HumanTask, Office

from .sopdata import DPMK, REJECT, STEP_DATA

WITA = timezone(timedelta(hours=8))
SRC = Path(__file__).resolve().parent.parent / "processes" / DPMK
KEY = "dpmk-langkah-bernama"
IDS = {"step1": "terima", "step2": "periksa", "step3": "setuju", "step4": "unggah", "step5": "arsip"}
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=WITA)
PERIOD = dict(start=date(2026, 3, 2), end=date(2026, 3, 15))


def wita(d, h, m=0):
    return datetime(2026, 3, d, h, m, tzinfo=WITA)


def _renamed_copy(tmp_path: Path) -> Path:
    """The DPMK SOP with its step ids renamed (form files too) and a key of its own."""
    dst = tmp_path / KEY
    shutil.copytree(SRC, dst)
    for path in [dst / "process.bpmn", dst / "sop.json"]:
        text = path.read_text(encoding="utf-8").replace(DPMK, KEY)
        for old, new in IDS.items():
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    for old, new in IDS.items():
        (dst / "forms" / f"{old}.schema.json").rename(dst / "forms" / f"{new}.schema.json")
    return dst


@pytest.fixture
def engine_history(services, demo, tmp_path):
    rt = services.runtime
    with services.sessions.begin() as s:
        office = s.scalar(select(Office).where(Office.code == "dpmk"))
        office.timezone = "Asia/Makassar"
        office.calendar_revision += 1  # the calendar cache reloads the office
        deploy_folder(s, _renamed_copy(tmp_path), rt.store, user_by_name(s, "dpmk.pemilik"))
        office_id = office.id

    def at(t):
        rt.clock = lambda: t.astimezone(timezone.utc)

    def open_step(iid) -> HumanTask:
        with services.sessions() as s:
            return s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))

    def work(iid, user, t_claim, t_done, data):
        task = open_step(iid)
        at(t_claim)
        rt.claim(demo[user], task.id)
        at(t_done)
        rt.complete(demo[user], task.id, data)
        return task

    data = {IDS[k[1]]: v for k, v in STEP_DATA.items() if k[0] == DPMK}
    # A: terima 60 min on time; periksa 10; setuju TIDAK after 10; terima again (a return) 160 min, late;
    #    periksa 5 (due 13:15: the lunch break does not count); setuju YA 5; unggah left open past its due time
    at(wita(2, 8))
    a = rt.start(demo["dpmk.penerima"], KEY, "Berita A")
    work(a, "dpmk.penerima", wita(2, 8, 30), wita(2, 9), data["terima"])
    work(a, "dpmk.kasubbag", wita(2, 9), wita(2, 9, 10), data["periksa"])
    work(a, "dpmk.sekdin", wita(2, 9, 10), wita(2, 9, 20), REJECT[(DPMK, "step3")])
    work(a, "dpmk.penerima", wita(2, 11), wita(2, 12), data["terima"])
    work(a, "dpmk.kasubbag", wita(2, 13), wita(2, 13, 5), data["periksa"])
    work(a, "dpmk.sekdin", wita(2, 13, 5), wita(2, 13, 10), data["setuju"])
    # B: terima 30 min on time; periksa left open (due Tuesday 08:45), late
    at(wita(3, 8))
    b = rt.start(demo["dpmk.penerima"], KEY, "Berita B")
    work(b, "dpmk.penerima", wita(3, 8), wita(3, 8, 30), data["terima"])
    # C: started Monday 00:30 WITA (still Sunday in WIB): terima open, due Monday 09:30, late
    at(wita(2, 0, 30))
    c = rt.start(demo["dpmk.penerima"], KEY, "Berita C")
    return {"office": office_id, "A": a, "B": b, "C": c}


def _f(h, **kw):
    return Filters(office_id=h["office"], process_key=KEY, **{**PERIOD, **kw})


def test_engine_history_overview(services, engine_history):
    h = engine_history
    with services.sessions() as s:
        rows = {r.step: r for r in dashboard.overview(s, _f(h), NOW)}
        live = {r.step: r for r in dashboard.overview(s, _f(h), NOW, rollup=False)}
    assert rows == live
    assert list(rows) == ["terima", "periksa", "setuju", "unggah", "arsip"]
    t, p, st, u = rows["terima"], rows["periksa"], rows["setuju"], rows["unggah"]
    # terima: A 60 (on time), A again 160 (09:20-12:00, due 11:20: late), B 30 (on time); C open and late
    assert (t.completed, t.on_time, t.late_completed, t.open, t.late_open) == (3, 2, 1, 1, 1)
    assert (t.median_minutes, t.p90_minutes, t.mutu_baku_minutes) == (60.0, 140.0, 120)
    assert (p.completed, p.on_time, p.median_minutes, p.open, p.late_open) == (2, 2, 7.5, 1, 1)
    assert (st.completed, st.on_time, st.median_minutes) == (2, 2, 7.5)
    assert (u.open, u.late_open, u.completed) == (1, 1, 0)


def test_engine_history_rework_counts_the_renamed_entry_step(services, engine_history):
    h = engine_history
    with services.sessions() as s:
        (r,) = dashboard.rework(s, _f(h), NOW)
        returns = dashboard.drill(s, _f(h), "returns", NOW)
    assert (r.process_key, r.started, r.returns, r.instances_returned) == (KEY, 3, 1, 1)
    assert r.return_rate == pytest.approx(1 / 3)
    assert [(x.instance_id, x.step) for x in returns.rows] == [(h["A"], "terima")]


def test_engine_history_weeks_and_weekdays_are_the_offices(services, engine_history):
    """C started Monday 00:30 WITA, which is still Sunday (week 9) in WIB: it counts in week 10."""
    h = engine_history
    with services.sessions() as s:
        weeks = dashboard.trends(s, _f(h), NOW)
        heat = {x.step: x.by_weekday for x in dashboard.late_heatmap(s, _f(h), NOW)}
        late_monday = dashboard.drill(s, _f(h, step="terima"), "late", NOW, weekday=0)
    w10 = weeks[0]
    assert (w10.label, w10.completed, w10.on_time, w10.instances_started) == ("2026-W10", 7, 6, 3)
    # late by weekday of the due time: terima A (Mon 11:20) and C (Mon 09:30); periksa B (Tue); unggah A (Mon)
    assert heat["terima"] == (2, 0, 0, 0, 0, 0, 0)
    assert heat["periksa"] == (0, 1, 0, 0, 0, 0, 0)
    assert heat["unggah"] == (1, 0, 0, 0, 0, 0, 0)
    assert sorted(x.instance_id for x in late_monday.rows) == sorted([h["A"], h["C"]])
    # the drill-down shows the office's own times
    table = dashboard.drill_table(late_monday)
    due = {row[0]: row[table.columns.index("due_at")] for row in table.rows}
    assert due[h["C"]] == "2026-03-02 09:30"


def test_default_period_is_counted_in_the_offices_zone():
    # Sunday 1 March 23:30 WIB is Monday 2 March 00:30 WITA: a new ISO week there
    at = datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc)
    assert dashboard.default_period(at, weeks=1, tz="Asia/Makassar") == (date(2026, 3, 2), date(2026, 3, 2))
    assert dashboard.default_period(at, weeks=1, tz="Asia/Jakarta") == (date(2026, 2, 23), date(2026, 3, 1))
