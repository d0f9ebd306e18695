"""Supervisor dashboard latency on PostgreSQL (issue 5's target).

Loads 1,000,000 completed and 100,000 open `human_task` rows (with their instances) into
a throw-away database with COPY, not through the engine, builds the rollup of the past days
(`dashboard.build_rollup`, timed apart: what the beat tick or the first request does), then times

* dashboard.overview()  -- target p95 <= 300 ms
* dashboard.officers()  -- target p95 <= 300 ms

for one office and for the regency view (all offices), each for the dashboard's default
period (the last 12 ISO weeks), the last year and all time, checking once per view that the
rollup gives the live path's figures; then the live path (`rollup=False`), trends, heatmap and
rework, and, as the reference in the same run, a bare `SELECT count(*) FROM human_task`.

Data: the two demo offices (seed_demo deploys both SOPs) with 20 extra officers each;
three years of history; the measured office (DPMK) holds 60% of all rows; 5% of the
instances have a TIDAK return; step durations scatter around the Mutu Baku so that about
70% are on time.

Run: .venv/bin/python bench/bench_dashboard.py [--completed 1000000] [--open 100000] [--repeat 40]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from engine import dashboard  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Office, ProcessDefinition, ProcessVersion, User  # noqa: E402
from engine.services import Services  # noqa: E402
from bench.common import timed  # noqa: E402

ADMIN_URL = os.environ.get("LAJUR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)  # Friday 10:00 WIB
YEARS = 3
SHARE = {"dpmk": 0.6, "dinsos": 0.4}
OFFICERS_PER_OFFICE = 20


@contextmanager
def scratch_database(name: str = "lajur_bench_dash", keep: bool = False):
    """CREATE DATABASE for this run (a random suffix: runs never collide) and drop it at the end
    (unless `keep`: then its URL is printed for `--url`)."""
    name = f"{name}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        if keep:
            print(f"kept: --url {url}")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def p(values: list[float], q: float) -> float:
    return dashboard.percentile(values, q)


def line(label: str, ms: list[float], target: float | None = None) -> str:
    verdict = "" if target is None else ("  OK" if p(ms, 0.95) <= target else "  MISSED")
    return (f"{label:<44} p50 {p(ms, 0.5):7.1f} ms  p95 {p(ms, 0.95):7.1f} ms  max {max(ms):7.1f} ms"
            f"  (n={len(ms)}){verdict}")


# ---- loading --------------------------------------------------------------------------------

def prepare(services: Services) -> dict:
    """Demo offices, SOPs and users, plus extra officers per lane; returns what the loader needs."""
    with services.sessions.begin() as session:
        seed_demo(session, services.runtime.store, services.settings.data_dir / "demo-logins.json")
        offices = {o.code: o.id for o in session.scalars(select(Office))}
        sops = {}
        for d in session.scalars(select(ProcessDefinition)):
            version = session.get(ProcessVersion, d.latest_version_id)
            code = next(c for c, i in offices.items() if i == d.office_id)
            steps = [(sid, s["name"], s["lane"], s["mutu_baku_minutes"]) for sid, s in version.steps.items()]
            steps.sort(key=lambda s: dashboard.step_order(s[0]))
            sops[code] = {"office_id": d.office_id, "version_id": version.id, "steps": steps}
        hash_ = session.scalar(select(User.password_hash).limit(1))
        officers = {}
        for code, office_id in offices.items():
            users = []
            for i in range(OFFICERS_PER_OFFICE):
                u = User(username=f"bench.{code}.{i}", full_name=f"Pegawai {code.upper()} {i:02d}",
                         password_hash=hash_, office_id=office_id, roles="staff")
                session.add(u)
                users.append(u)
            session.flush()
            officers[code] = [u.id for u in users]
    return {"offices": offices, "sops": sops, "officers": officers}


def generate(meta: dict, completed_target: int, open_target: int, rng: random.Random):
    """Yield (instance row, [task rows]) until the targets of completed and open steps are met."""
    start_of_history = NOW - timedelta(days=365 * YEARS)
    span = (NOW - start_of_history).total_seconds()
    plan = []
    for code, share in SHARE.items():
        plan.append((code, int(completed_target * share), int(open_target * share)))
    for code, done_goal, open_goal in plan:
        sop = meta["sops"][code]
        people = meta["officers"][code]
        steps = sop["steps"]
        done = opened = 0
        while done < done_goal or opened < open_goal:
            running = opened < open_goal and (done >= done_goal or rng.random() < open_goal / max(done_goal, 1) * 4)
            if running:
                started = NOW - timedelta(seconds=rng.uniform(0, 14 * 86400))
            else:
                started = start_of_history + timedelta(seconds=rng.uniform(0, span - 15 * 86400))
            path = list(range(len(steps)))
            if rng.random() < 0.05:  # a TIDAK at step 3: back to step 1
                path = [0, 1, 2] + path
            if running:
                path = path[:rng.randint(1, len(path))]
            tasks = []
            t = started
            for i, step_index in enumerate(path):
                sid, name, lane, mb = steps[step_index]
                due = t + timedelta(minutes=mb)
                last_open = running and i == len(path) - 1
                if last_open:
                    # open: due between two days ago and two days ahead; 1% paused
                    due = NOW + timedelta(minutes=rng.uniform(-2880, 2880))
                    paused = NOW - timedelta(hours=1) if rng.random() < 0.01 else None
                    tasks.append((sid, name, lane, "ready", rng.choice(people) if rng.random() < 0.7 else None,
                                  None, mb, t, None, due, paused, None))
                    opened += 1
                    break
                wm = max(0.5, rng.lognormvariate(0, 0.6) * mb * 0.75)
                finished = t + timedelta(minutes=wm)
                who = rng.choice(people)
                tasks.append((sid, name, lane, "completed", who, who, mb, t, finished, due, None, round(wm, 2)))
                done += 1
                t = finished
            status = "running" if running else "completed"
            yield code, started, status, (None if running else t), tasks


COLS_TASK = ("id", "task_guid", "instance_id", "office_id", "version_id", "bpmn_id", "name", "lane", "state",
             "assignee_id", "completed_by_id", "mutu_baku_minutes", "ready_at", "completed_at", "due_at",
             "paused_at", "working_minutes")
COLS_INST = ("id", "office_id", "version_id", "subject", "status", "state", "lock_version", "started_at",
             "completed_at")


def load(url: str, meta: dict, completed: int, open_: int, seed: int = 5) -> tuple[int, int, float]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    n_tasks = n_inst = 0
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY process_instance ({', '.join(COLS_INST)}) FROM STDIN") as inst_copy:
                task_rows = []
                for code, started, status, finished, tasks in generate(meta, completed, open_, rng):
                    sop = meta["sops"][code]
                    n_inst += 1
                    inst_copy.write_row((n_inst, sop["office_id"], sop["version_id"], f"Berita {n_inst}", status,
                                         "{}", 1, started, finished))
                    for sid, name, lane, state, who, by, mb, ready, done, due, paused, wm in tasks:
                        n_tasks += 1
                        task_rows.append((n_tasks, str(uuid.UUID(int=rng.getrandbits(128))), n_inst,
                                          sop["office_id"], sop["version_id"], sid, name, lane, state, who, by, mb,
                                          ready, done, due, paused, wm))
            with cur.copy(f"COPY human_task ({', '.join(COLS_TASK)}) FROM STDIN") as task_copy:
                for row in task_rows:
                    task_copy.write_row(row)
            cur.execute("SELECT setval(pg_get_serial_sequence('process_instance', 'id'), %s)", (n_inst,))
            cur.execute("SELECT setval(pg_get_serial_sequence('human_task', 'id'), %s)", (n_tasks,))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum does on a live system: visibility map + statistics
    return n_inst, n_tasks, time.perf_counter() - t0


# ---- timing ---------------------------------------------------------------------------------

def prebuild(services: Services) -> str:
    """Roll up every final day first, as the beat tick (or the first request) would; timed apart."""
    t0 = time.perf_counter()
    built = dashboard.build_rollup(services.engine, NOW)
    secs = time.perf_counter() - t0
    with services.engine.connect() as conn:
        sizes = {t: conn.execute(text(f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{t}')) FROM {t}")).one()
                 for t in ("stats_block", "stats_step_block", "stats_officer_block")}
    return (f"rollup build: {secs:.1f} s, blocks built {built}; "
            + ", ".join(f"{t} {n:,} rows {size}" for t, (n, size) in sizes.items()))


def measure(services: Services, office: int, repeat: int) -> list[str]:
    """Time the dashboard's functions for one office and for the regency on the loaded data:
    through the rollup (the default), and the live path (`rollup=False`) for reference."""
    start12, today = dashboard.default_period(NOW)
    periods = [("12 weeks (default)", start12, today), ("last year", today - timedelta(days=364), today),
               ("all time", None, None)]
    results = []

    def run(fn, filters, rollup=True):
        def call():
            with services.sessions() as session:
                return fn(session, filters, NOW, rollup=rollup)
        return call

    for scope, office_id in (("one office", office), ("regency (all offices)", None)):
        for label, start, end in periods:
            f = dashboard.Filters(office_id=office_id, start=start, end=end)
            with services.sessions() as session:
                done = sum(r.completed for r in dashboard.overview(session, f, NOW))
            for fn in (dashboard.overview, dashboard.officers):
                same = run(fn, f)() == run(fn, f, False)()  # the rollup gives the live path's figures
                results.append(line(f"{fn.__name__}, {scope}, {label} [{done:,} done]{'' if same else ' DIFFERENT'}",
                                    timed(run(fn, f), repeat), 300))
    for label, start, end in periods:
        f = dashboard.Filters(office_id=office, start=start, end=end)
        for fn in (dashboard.overview, dashboard.officers):
            results.append(line(f"live path: {fn.__name__}, one office, {label}", timed(run(fn, f, False), 10)))
    f12 = dashboard.Filters(office_id=office, start=start12, end=today)
    for fn in (dashboard.trends, dashboard.late_heatmap, dashboard.rework):
        def call(fn=fn):
            with services.sessions() as session:
                fn(session, f12, NOW)
        results.append(line(f"{fn.__name__}, one office, 12 weeks", timed(call, 10)))

    def count_all():
        with services.engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM human_task")).scalar()
    results.append(line("reference: SELECT count(*) FROM human_task", timed(count_all, repeat)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--completed", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--url", help="time against an already loaded database (kept; for tuning)")
    parser.add_argument("--keep", action="store_true", help="keep the loaded database (prints its --url)")
    parser.add_argument("--load-only", action="store_true", help="load (and keep) the database, time nothing")
    args = parser.parse_args()

    print(f"# bench_dashboard {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"lajur-bench-dash-{uuid.uuid4().hex[:6]}"

    def services_for(url: str) -> Services:
        return Services.from_settings(Settings(database_url=url.replace("postgresql://", "postgresql+psycopg://"),
                                               broker_url="memory://", data_dir=data_dir,
                                               base_url="http://127.0.0.1"))

    if args.url:
        services = services_for(args.url)
        try:
            with services.sessions() as session:
                office = session.scalar(select(Office.id).where(Office.code == "dpmk"))
            print(prebuild(services))
            print("\n".join(measure(services, office, args.repeat)))
        finally:
            services.dispose()
        return

    with scratch_database(keep=args.keep or args.load_only) as url:
        upgrade(url.replace("postgresql://", "postgresql+psycopg://"))
        services = services_for(url)
        try:
            meta = prepare(services)
            n_inst, n_tasks, secs = load(url, meta, args.completed, args.open)
            with services.engine.connect() as conn:
                counts = dict(conn.execute(text("SELECT state, count(*) FROM human_task GROUP BY state")).all())
                pg_version = conn.execute(text("SHOW server_version")).scalar()
            print(f"loaded {n_inst:,} instances, {n_tasks:,} steps ({counts}) in {secs:.1f} s; "
                  f"PostgreSQL {pg_version}")
            if not args.load_only:
                print(prebuild(services))
                print("\n".join(measure(services, meta["offices"]["dpmk"], args.repeat)))
        finally:
            services.dispose()


if __name__ == "__main__":
    main()
