"""The rollup of past days: the same figures as the live path, each block built once.

On SQLite and PostgreSQL, over a random history of more than a year on top of the known
history of test_dashboard_figures (so whole years, months, weeks and days are rolled up).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import dashboard
from engine.dashboard import Filters, percentiles, rollup
from engine.models import HumanTask, Office, ProcessDefinition, ProcessInstance

from .sopdata import DINSOS, DPMK
from .test_dashboard_figures import NOW, PERIOD, History, _by_step, history, wib  # noqa: F401  (the fixture)


# ---- the rollup of past days: same figures as the live path, each block built once ----------

def _durations_from(values_by_block, small):
    d = percentiles.Durations()
    for block in values_by_block:
        counts = {}
        for v in block:
            counts[percentiles.centi(v)] = counts.get(percentiles.centi(v), 0) + 1
        d.add_blob(percentiles.pack(counts), big=True)
    for v in small:
        d.add(percentiles.centi(v), 1)
    return d


def test_percentiles_from_value_counts_equal_the_expanded_computation():
    import random
    rng = random.Random(11)
    for case in range(400):
        pool = [round(rng.uniform(0, 50), 2) for _ in range(rng.randint(1, 8))]  # few values: many repeats
        blocks = [[rng.choice(pool) if rng.random() < 0.5 else round(rng.uniform(0, 60), 2)
                   for _ in range(rng.randint(0, 30))] for _ in range(rng.randint(0, 4))]
        small = [round(rng.uniform(0, 60), 2) for _ in range(rng.randint(0, 10))]
        everything = [v for b in blocks for v in b] + small
        d = _durations_from(blocks, small)
        for p in (0.0, 0.1, 0.5, 0.9, 1.0):
            expected = dashboard.percentile(everything, p)
            assert d.percentile(p) == expected, (case, p)
    assert percentiles.Durations().percentile(0.5) is None


def _extra_history(services, demo, seed=7, n=700):
    """Random completed steps from December 2024 to two days after NOW (so whole years, months,
    weeks and days are rolled up and today stays live), with repeated and 2-decimal durations,
    steps without a due time or a duration, and steps nobody is recorded to have completed."""
    import random
    rng = random.Random(seed)
    with services.sessions.begin() as s:
        offices = {o.code: o.id for o in s.scalars(select(Office))}
        versions = {d.office_id: (d.latest_version_id, d.key) for d in s.scalars(select(ProcessDefinition))}
        people = {code: [uid for name, uid in demo.items() if name.startswith(code + ".")] for code in offices}
        first = wib(12, 3, 0, y=2024)
        span = (NOW + timedelta(days=2) - first).total_seconds()
        inst = None
        for i in range(n):
            code = rng.choice(["dpmk", "dpmk", "dinsos"])
            version, key = versions[offices[code]]
            if i % 4 == 0 or inst is None or inst.office_id != offices[code]:
                inst = ProcessInstance(office_id=offices[code], version_id=version, subject=f"Acak {i}",
                                       status="running", state={}, started_at=first)
                s.add(inst)
                s.flush()
            done = first + timedelta(seconds=rng.uniform(0, span))
            wm = rng.choice([5, 12.5, 30, 7.25]) if rng.random() < 0.3 else round(rng.uniform(0.5, 240), 2)
            if rng.random() < 0.03:
                wm = None
            due = None if rng.random() < 0.15 else done + timedelta(minutes=rng.uniform(-120, 120))
            by = None if rng.random() < 0.05 else rng.choice(people[code])
            s.add(HumanTask(task_guid=str(uuid.uuid4()), instance_id=inst.id, office_id=inst.office_id,
                            version_id=version, bpmn_id=f"step{rng.randint(1, 4)}", name="Langkah", lane="x",
                            state="completed", assignee_id=by, completed_by_id=by, ready_at=done - timedelta(hours=1),
                            completed_at=done, due_at=due, working_minutes=wm))
    return offices


def _rollup_counts(services):
    from sqlalchemy import func
    with services.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(t))
                     for t in (rollup.blk, rollup.step_blk, rollup.officer_blk))


def _variants(history, offices):
    dpmk, dinsos = offices["dpmk"], offices["dinsos"]
    users = history["users"]
    start12, today = dashboard.default_period(NOW)
    periods = [PERIOD, dict(start=start12, end=today), dict(start=today - timedelta(days=364), end=today),
               dict(start=None, end=None), dict(start=date(2025, 2, 15), end=None), dict(start=None, end=date(2025, 6, 30)),
               dict(start=date(2025, 1, 1), end=date(2025, 12, 31)), dict(start=date(2025, 2, 1), end=date(2025, 2, 28)),
               dict(start=date(2025, 1, 27), end=date(2025, 3, 2)), dict(start=date(2025, 5, 6), end=date(2025, 5, 6)),
               dict(start=date(2026, 3, 10), end=date(2026, 3, 20)), dict(start=date(2026, 3, 12), end=None)]
    out = [Filters(office_id=o, **p) for p in periods for o in (dpmk, dinsos, None)]
    out += [Filters(office_id=dpmk, step="step2", **periods[2]), Filters(office_id=dpmk, process_key=DPMK, **periods[3]),
            Filters(office_id=dpmk, officer_id=users["dpmk.kasubbag"], **periods[3]),
            Filters(officer_id=users["dinsos.petugas"], **periods[6]), Filters(process_key=DINSOS, **periods[1])]
    return out


def test_rollup_and_live_paths_agree_on_every_figure(services, history):
    offices = _extra_history(services, history["users"])
    variants = _variants(history, offices)
    with services.sessions() as s:
        live = [(dashboard.overview(s, f, NOW, rollup=False), dashboard.officers(s, f, NOW, rollup=False)) for f in variants]
    assert _rollup_counts(services) == (0, 0, 0)  # the live path neither reads nor builds the rollup
    assert sum(r.completed for r in live[11][0]) > 650  # all time, regency: the random history is there

    def compare():
        for f, (ov, of) in zip(variants, live):
            with services.sessions() as s:  # a fresh session per query, as a request has
                assert dashboard.overview(s, f, NOW) == ov, f
                assert dashboard.officers(s, f, NOW) == of, f

    compare()  # builds lazily, block by block, what each period needs
    lazily = _rollup_counts(services)
    assert lazily[0] > 400 and lazily[1] > 0 and lazily[2] > 0
    built = dashboard.build_rollup(services.engine, NOW)  # and the rest, as the beat tick would
    assert built["d"] == 0  # every final day was already built by the queries above
    compare()
    after = _rollup_counts(services)
    with services.sessions() as s:
        spans = dict(s.execute(select(rollup.blk.c.span, func_count()).group_by(rollup.blk.c.span)).all())
    assert spans.get("y") and spans.get("m") and spans.get("w") and spans.get("d")
    # nothing is built twice: building again and querying again add no block
    assert dashboard.build_rollup(services.engine, NOW) == {"d": 0, "w": 0, "m": 0, "y": 0}
    compare()
    assert _rollup_counts(services) == after


def func_count():
    from sqlalchemy import func
    return func.count()


def test_today_stays_live_and_a_block_is_unique(services, history):
    from sqlalchemy.exc import IntegrityError
    dpmk = history["offices"]["dpmk"]
    f = Filters(office_id=dpmk, start=date(2026, 3, 2), end=date(2026, 3, 15))
    with services.sessions() as s:
        before = _by_step(dashboard.overview(s, f, NOW))
    assert before["step2"].completed == 4
    with services.sessions.begin() as s:  # a step completed now, after the rollup of the past days
        h = History(s, history["users"])
        h.instance("T1", DPMK, NOW - timedelta(hours=2))
        h.task("T1", "step2", ready=NOW - timedelta(hours=1), due=NOW, done=NOW - timedelta(minutes=1), wm=59,
               by="dpmk.kasubbag")
    with services.sessions() as s:
        after = _by_step(dashboard.overview(s, f, NOW))
        assert after == _by_step(dashboard.overview(s, f, NOW, rollup=False))
    assert (after["step2"].completed, after["step2"].on_time) == (5, 3)
    # the past days were not built again, and a block's key cannot be inserted twice
    with services.sessions() as s:
        day = s.execute(select(rollup.blk).where(rollup.blk.c.span == "d")).first()
    with pytest.raises(IntegrityError):
        with services.sessions.begin() as s:
            s.execute(rollup.blk.insert().values(office_id=day.office_id, span="d", day=day.day, built_at=NOW))
    with services.engine.begin() as conn:  # the builders' claim skips it
        assert rollup.claim(conn, day.office_id, "d", [day.day]) == []


def _build_in_other_process(url, now_iso):
    from engine.config import Settings
    from engine.services import Services
    import tempfile
    from pathlib import Path
    services = Services.from_settings(Settings(database_url=url, broker_url="memory://",
                                               data_dir=Path(tempfile.mkdtemp()), base_url="http://127.0.0.1"))
    try:
        return dashboard.build_rollup(services.engine, datetime.fromisoformat(now_iso))
    finally:
        services.dispose()


def test_two_processes_building_at_once_build_each_block_once(services, history):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    _extra_history(services, history["users"], seed=8, n=400)
    url = services.settings.database_url
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_build_in_other_process, [url, url], [NOW.isoformat()] * 2))
    blocks = _rollup_counts(services)[0]
    assert sum(sum(r.values()) for r in results) == blocks > 400  # every block built by exactly one of them
    f = Filters(start=None, end=None)
    with services.sessions() as s:
        assert dashboard.overview(s, f, NOW) == dashboard.overview(s, f, NOW, rollup=False)
        assert dashboard.officers(s, f, NOW) == dashboard.officers(s, f, NOW, rollup=False)
    assert _rollup_counts(services)[0] == blocks
