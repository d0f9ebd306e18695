"""Benchmark: 10,000 reminder deadlines falling due within one minute, PostgreSQL + Redis.

Real processes: a Celery worker (prefork, as many children as `lajur worker` has by default)
and beat (tick every second) started as subprocesses, deliveries over the webhook channel
to an HTTP receiver in this process.
Reports the lateness of the first delivery of each deadline after its due time (p50, p99,
max), duplicates and losses, and, as reference from the same run, the tick interval and
the split of lateness into tick (due -> delivery row) and Celery send path (row -> received).

    .venv/bin/python bench/bench_deadlines.py [--n 10000] [--spread 60] [--concurrency N]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.cli.ops import WORKER_CONCURRENCY  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import (Deadline, Delivery, HumanTask, ProcessDefinition, ProcessInstance,  # noqa: E402
                           ProcessVersion, User)
from engine.services import Services  # noqa: E402

PG_ADMIN = os.environ.get("LAJUR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("LAJUR_BENCH_REDIS", "redis://127.0.0.1:6379/14")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        at = time.time()
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append((int(self.headers["X-Lajur-Delivery"]), at))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--spread", type=float, default=60.0, help="deadlines fall due over this many seconds")
    ap.add_argument("--lead", type=float, default=15.0, help="seconds before the first deadline (startup)")
    ap.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY,
                    help="worker children (default: that of `lajur worker`)")
    args = ap.parse_args()

    name = f"lajur_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(f"/tmp/lajur-bench-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.lock = [], threading.Lock()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "LAJUR_DATABASE_URL": db_url, "LAJUR_BROKER_URL": REDIS, "LAJUR_DATA_DIR": str(tmp),
           "LAJUR_QUEUE": f"bench-{tag}", "LAJUR_BROKER_PREFIX": f"bench-{tag}:", "LAJUR_TICK_SECONDS": "1",
           "LAJUR_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook", "LAJUR_WEBHOOK_SECRET": "bench",
           "PYTHONPATH": str(ROOT)}
    try:
        upgrade(db_url)
        settings = Settings(database_url=db_url, broker_url=REDIS, data_dir=tmp, base_url="http://127.0.0.1:5000")
        svc = Services.from_settings(settings)
        with svc.sessions.begin() as session:
            seed_demo(session, svc.runtime.store, tmp / "logins.json")
        with svc.sessions.begin() as session:
            user = session.scalar(select(User).where(User.username == "dpmk.penerima"))
            user.notify_channels = "inapp,webhook"
            definition = session.scalar(select(ProcessDefinition).where(
                ProcessDefinition.key == "dpmk-pemutakhiran-website"))
            version = session.get(ProcessVersion, definition.latest_version_id)
            uid, office_id, version_id, group_id = user.id, user.office_id, version.id, user.groups[0].id
        now = datetime.now(timezone.utc)
        first_due = now + timedelta(seconds=args.lead)
        print(f"seeding {args.n} open steps with deadlines due between +{args.lead:.0f}s and "
              f"+{args.lead + args.spread:.0f}s ...", flush=True)
        with svc.engine.begin() as conn:
            conn.execute(insert(ProcessInstance), [
                {"id": i + 1, "office_id": office_id, "version_id": version_id, "subject": f"Bench {i}",
                 "status": "running", "state": {}, "lock_version": 1, "started_at": now, "started_by_id": uid}
                for i in range(args.n)])
            conn.execute(insert(HumanTask), [
                {"id": i + 1, "task_guid": str(uuid.uuid4()), "instance_id": i + 1, "office_id": office_id,
                 "version_id": version_id, "bpmn_id": "step1", "name": "Menerima berita", "lane": "x",
                 "group_id": group_id, "state": "ready", "assignee_id": uid, "mutu_baku_minutes": 120.0,
                 "ready_at": now, "due_at": now + timedelta(hours=2)} for i in range(args.n)])
            conn.execute(insert(Deadline), [
                {"human_task_id": i + 1, "office_id": office_id, "level": "warn", "seq": 0, "at_fraction": 0.8,
                 "status": "pending", "due_at": first_due + timedelta(seconds=args.spread * i / args.n)}
                for i in range(args.n)])
        celery = str(Path(sys.executable).parent / "celery")
        for kind in ("worker", "beat"):
            cmd = [celery, "-A", "workers.app", kind, "--loglevel", "WARNING"]
            if kind == "worker":
                cmd += ["--pool", "prefork", "-c", str(args.concurrency), "--without-gossip", "--without-mingle",
                        "--without-heartbeat"]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(tmp / f"{kind}.log", "wb"),
                                          stderr=subprocess.STDOUT, start_new_session=True))
        end = first_due + timedelta(seconds=args.spread + 60)
        while datetime.now(timezone.utc) < end:
            with server.lock:
                got = len({d for d, _ in server.received})
            if got >= args.n and datetime.now(timezone.utc) > first_due + timedelta(seconds=args.spread):
                break
            time.sleep(1)
        time.sleep(3)  # anything arriving now would be a duplicate
        with svc.sessions() as session:
            rows = session.execute(select(Delivery.id, Delivery.due_at, Delivery.created_at, Delivery.sent_at,
                                          Delivery.attempts, Delivery.status)).all()
            dl_status = dict(session.execute(text("select status, count(*) from deadline group by status")).all())
        svc.dispose()
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(15)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
        server.shutdown()

    first: dict[int, float] = {}
    counts: dict[int, int] = {}
    for delivery_id, at in server.received:
        counts[delivery_id] = counts.get(delivery_id, 0) + 1
        first.setdefault(delivery_id, at)
    by_id = {r.id: r for r in rows}
    lateness = [first[i] - by_id[i].due_at.timestamp() for i in first if i in by_id]
    tick_part = [r.created_at.timestamp() - r.due_at.timestamp() for r in rows]
    send_part = [first[r.id] - r.created_at.timestamp() for r in rows if r.id in first]
    duplicates = sum(c - 1 for c in counts.values())
    losses = args.n - len(first)
    print(f"\n{args.n} deadlines due over {args.spread:.0f} s; PostgreSQL + Redis; worker prefork -c "
          f"{args.concurrency}; tick 1 s")
    print(f"deadline rows: {dl_status}; delivery rows: {len(rows)}, sent "
          f"{sum(1 for r in rows if r.status == 'sent')}, retried {sum(1 for r in rows if r.attempts > 1)}")
    if lateness:
        print(f"lateness of first delivery after due: p50 {pct(lateness, 50):.2f} s  p99 {pct(lateness, 99):.2f} s"
              f"  max {max(lateness):.2f} s  mean {statistics.mean(lateness):.2f} s")
        print(f"  of which tick (due -> delivery row): p50 {pct(tick_part, 50):.2f} s  p99 {pct(tick_part, 99):.2f} s")
        print(f"  of which Celery send path (row -> received): p50 {pct(send_part, 50):.2f} s  "
              f"p99 {pct(send_part, 99):.2f} s")
    print(f"duplicates: {duplicates}   losses: {losses}")
    print("reference: tick interval 1.00 s (expected lateness from polling alone: uniform 0-1 s, p50 0.5 s);"
          " spiff-arena documents 20-30 s for its timers")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sys.exit(0 if duplicates == 0 and losses == 0 else 1)


if __name__ == "__main__":
    main()
