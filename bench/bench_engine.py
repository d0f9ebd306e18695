"""Engine throughput and inbox query latency on PostgreSQL (issue 2's targets).

1. 1,000 DPMK instances completed end to end through the engine service (start, then
   claim + complete for each of the 5 steps), as task completions per second; in the
   same run the same steps on a bare in-memory SpiffWorkflow loop (the ceiling).
   Targets: >= 300 completions/s and >= half of the ceiling.
2. The "my tasks" query (Runtime.list_tasks) p95 with 100,000 open tasks in the
   database. Target: <= 20 ms. Reference: a bare `SELECT 1` round trip.

Run: .venv/bin/python bench/bench_engine.py [--instances 1000] [--open 100000]
"""
from __future__ import annotations

import argparse
import copy
import io
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from bench.common import (backend_cpu_seconds, machine, process_cpu_seconds, scratch_database, summary,  # noqa: E402
                          timed)
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import HumanTask, ProcessVersion, User  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.services import Services, tune_gc  # noqa: E402
from tests.sopdata import ACTORS, DPMK, STEP_DATA  # noqa: E402

STEPS = ["step1", "step2", "step3", "step4", "step5"]
STEP_ACTORS = {"step1": "dpmk.penerima", "step2": "dpmk.kasubbag", "step3": "dpmk.sekdin", "step4": "dpmk.operator",
               "step5": "dpmk.penerima"}


def engine_run(services: Services, users: dict[str, int], instances: int, claim: bool) -> tuple[float, int]:
    """Start + complete every step; with `claim`, each step is claimed first (as in the web inbox).

    Without it, each step is claimed and completed in one call (`complete(..., claim=True)`)."""
    rt = services.runtime
    completions = 0
    t0 = time.perf_counter()
    for i in range(instances):
        iid = rt.start(users["dpmk.penerima"], DPMK, f"Bench {i}")
        with services.sessions() as session:
            task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
        for step in STEPS:
            uid = users[STEP_ACTORS[step]]
            if claim:
                rt.claim(uid, task_id)
            opened = rt.complete(uid, task_id, STEP_DATA[(DPMK, step)], claim=not claim)
            completions += 1
            task_id = opened[0] if opened else None
    return time.perf_counter() - t0, completions


def _parallel_worker(url: str, users: dict[str, int], instances: int, barrier, out) -> None:
    settings = Settings(database_url=url, broker_url="memory://", data_dir=Path("/tmp/lajur-bench-engine"),
                        base_url="http://127.0.0.1:5000")
    services = Services.from_settings(settings)
    tune_gc()
    barrier.wait()
    out.put(engine_run(services, users, instances, claim=False))
    services.dispose()


def parallel_run(url: str, users: dict[str, int], instances: int, processes: int) -> tuple[float, int]:
    """The same flow from several OS processes at once (as several web or worker processes would)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_parallel_worker, args=(url, users, instances // processes, barrier, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return max(r[0] for r in results), sum(r[1] for r in results)


def ceiling_run(services: Services, instances: int) -> tuple[float, int]:
    with services.sessions() as session:
        version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == "dpmk_pemutakhiran_website"))
        spec, subprocess_specs = services.runtime.store.spec_from_dict(version.spec)
    completions = 0
    t0 = time.perf_counter()
    for _ in range(instances):
        wf = BpmnWorkflow(spec, subprocess_specs)
        wf.do_engine_steps()
        for step in STEPS:
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.set_data(**copy.deepcopy(STEP_DATA[(DPMK, step)]))
            task.run()
            wf.do_engine_steps()
            completions += 1
        assert wf.is_completed()
    return time.perf_counter() - t0, completions


def load_open_tasks(services: Services, count: int, users: dict[str, int]) -> None:
    """Bulk-load `count` open tasks (and their instances) with COPY, spread over both offices."""
    with services.sessions() as session:
        versions = {v.process_id: v for v in session.scalars(select(ProcessVersion))}
        people = {u.username: (u.id, u.office_id, [g.id for g in u.groups]) for u in session.scalars(select(User))}
    staff = [(name, *people[name]) for name in ACTORS.values()]
    now = datetime.now(timezone.utc)
    inst_buf, task_buf = io.StringIO(), io.StringIO()
    raw = services.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT coalesce(max(id), 0) FROM process_instance")
        base = cur.fetchone()[0] + 1
        for n in range(count):
            name, uid, office_id, groups = staff[n % len(staff)]
            version = versions["dpmk_pemutakhiran_website" if name.startswith("dpmk") else "dinsos_website_medsos"]
            iid = base + n
            ready = now - timedelta(minutes=n % 5000)
            inst_buf.write(f"{iid}\t{office_id}\t{version.id}\tBerita massal {n}\trunning\t{{}}\t1\t{ready.isoformat()}\n")
            assignee = str(uid) if n % 3 == 0 else "\\N"
            task_buf.write(f"bench-{iid}\t{iid}\t{office_id}\t{version.id}\tstep1\tLangkah massal\t{name}\t"
                           f"{groups[0]}\tready\t{assignee}\t60\t{ready.isoformat()}\t"
                           f"{(ready + timedelta(minutes=60 + n % 900)).isoformat()}\n")
        with cur.copy("COPY process_instance (id, office_id, version_id, subject, status, state, lock_version, "
                      "started_at) FROM STDIN") as cp:
            cp.write(inst_buf.getvalue())
        with cur.copy("COPY human_task (task_guid, instance_id, office_id, version_id, bpmn_id, name, lane, "
                      "group_id, state, assignee_id, mutu_baku_minutes, ready_at, due_at) FROM STDIN") as cp:
            cp.write(task_buf.getvalue())
        cur.execute("SELECT setval(pg_get_serial_sequence('process_instance', 'id'), (SELECT max(id) FROM process_instance))")
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--open", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--processes", type=int, nargs="*", default=[2, 4],
                    help="also run the end-to-end flow from this many processes at once")
    args = ap.parse_args()
    tune_gc()  # as `lajur web` / `lajur worker` processes do (engine/services.py)
    print(f"machine: {machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    with scratch_database("lajur_bench_engine") as url:
        upgrade(url)
        settings = Settings(database_url=url, broker_url="memory://", data_dir=Path("/tmp/lajur-bench-engine"),
                            base_url="http://127.0.0.1:5000")
        services = Services.from_settings(settings)
        with services.sessions.begin() as session:
            seed_demo(session, services.runtime.store, settings.data_dir / "logins.json")
        with services.sessions() as session:
            users = {u.username: u.id for u in session.scalars(select(User))}

        ceiling_s, ceiling_n = ceiling_run(services, args.instances)
        ceiling = ceiling_n / ceiling_s
        engine_run(services, users, 5, claim=False)  # warm: parsed specs, prepared statements
        cpu0, pg0 = process_cpu_seconds(), backend_cpu_seconds(url)
        run_s, run_n = engine_run(services, users, args.instances, claim=False)
        cpu1, pg1 = process_cpu_seconds(), backend_cpu_seconds(url)
        rate = run_n / run_s
        print(f"\n[1] {args.instances} DPMK instances end to end, {run_n} task completions")
        print(f"    engine service on PostgreSQL : {rate:8.1f} completions/s ({run_s:.1f} s, start + complete "
              f"of every step)")
        print(f"    CPU per completion (start included): client {(cpu1 - cpu0) * 1000 / run_n:.2f} ms, "
              f"PostgreSQL {(pg1 - pg0) * 1000 / run_n:.2f} ms; wall {run_s * 1000 / run_n:.2f} ms")
        print(f"    reference: bare in-memory SpiffWorkflow loop (ceiling): {ceiling:8.1f} completions/s")
        print(f"    ratio {rate / ceiling:.2f} of the ceiling")
        claim_s, claim_n = engine_run(services, users, max(args.instances // 5, 1), claim=True)
        print(f"    with an explicit claim before each completion (the inbox flow): {claim_n / claim_s:8.1f} completions/s")
        rates = {1: rate}
        for procs in args.processes:
            par_s, par_n = parallel_run(url, users, args.instances, procs)
            rates[procs] = par_n / par_s
            print(f"    {procs} client processes at once: {rates[procs]:8.1f} completions/s in all")
        for procs, r in rates.items():
            print(f"    targets, {procs} process(es): >= 300/s {'MET' if r >= 300 else 'MISSED'}, >= half the "
                  f"(one-process) ceiling {'MET' if r >= ceiling / 2 else 'MISSED'} ({r / ceiling:.2f})")
        cold = Services.from_settings(settings)
        cold.runtime = Runtime(cold.sessions, workflow_cache_size=0)  # every step deserializes the workflow
        cold_s, cold_n = engine_run(cold, users, max(args.instances // 5, 1), claim=False)
        print(f"    without the workflow cache (every step loads from PostgreSQL): {cold_n / cold_s:8.1f} completions/s")
        cold.dispose()

        load_open_tasks(services, args.open, users)
        with services.sessions() as session:
            open_count = session.scalar(text("SELECT count(*) FROM human_task WHERE state = 'ready'"))
        print(f"\n[2] 'my tasks' query with {open_count} open tasks in the database")
        for view in ("mine", "group", "overdue"):
            uid = users["dpmk.penerima"]
            print(f"    list_tasks({view:7}) first 200 rows: "
                  f"{summary(timed(lambda: services.runtime.list_tasks(uid, view), args.queries))}")
        with services.engine.connect() as conn:
            ref = timed(lambda: conn.execute(text("SELECT 1")).scalar(), args.queries)
        print(f"    reference: SELECT 1 round trip            : {summary(ref)}")
        services.dispose()


if __name__ == "__main__":
    main()
