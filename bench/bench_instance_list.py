"""The instance list's one query (engine/instance_list.py) on PostgreSQL with a big office.

Seeds the demo, then bulk-inserts N instances of DPMK's SOP (a quarter completed, the rest
with one open step, a tenth of them late, started over a year) and times one page (25 rows)
as the supervisor and as a member of staff: newest first, deep keyset page, soonest due,
late filter, step + subject filter.

Run: .venv/bin/python bench/bench_instance_list.py [--instances 50000]
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.common import machine, scratch_database, summary, timed  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.instance_list import InstanceFilters, cursor_of, list_instances  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import ProcessDefinition, User  # noqa: E402
from engine.services import Services  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    now = datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc)
    with scratch_database("lajur_bench_list") as url:
        upgrade(url)
        import tempfile
        tmp = Path(tempfile.mkdtemp())
        services = Services.from_settings(Settings(database_url=url, broker_url=f"sqla+sqlite:///{tmp}/b.sqlite3",
                                                   data_dir=tmp / "data", base_url="http://127.0.0.1"))
        with services.sessions.begin() as s:
            seed_demo(s, services.runtime.store, tmp / "logins.json")
        with services.sessions() as s:
            users = {u.username: u for u in s.scalars(select(User))}
            d = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == "dpmk-pemutakhiran-website"))
            office, version = d.office_id, d.latest_version_id
        penerima, kasubbag = users["dpmk.penerima"].id, users["dpmk.kasubbag"].id
        raw = url.replace("postgresql+psycopg://", "postgresql://")
        n = args.instances
        with psycopg.connect(raw) as conn:
            start = now - timedelta(days=365)
            inst, tasks = [], []
            for i in range(1, n + 1):
                started = start + timedelta(minutes=i * 365 * 24 * 60 // n)
                done = i % 4 == 0
                inst.append((i, office, version, f"Berita kegiatan {i}", "completed" if done else "running", "{}",
                             1, penerima, started, started + timedelta(hours=3) if done else None))
                due = now - timedelta(hours=1) if i % 10 == 1 else now + timedelta(minutes=i % 500)
                tasks.append((i, f"00000000-0000-0000-0000-{i:012d}", i, office, version,
                              "step1" if i % 3 else "step2", "Langkah", "completed" if done else "ready",
                              penerima if i % 7 == 0 else None, started, due,
                              penerima if done else None, started + timedelta(hours=1) if done else None))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO process_instance (id, office_id, version_id, subject, status, state, "
                                "lock_version, started_by_id, started_at, completed_at) VALUES "
                                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", inst)
                cur.executemany("INSERT INTO human_task (id, task_guid, instance_id, office_id, version_id, bpmn_id, "
                                "name, state, assignee_id, ready_at, due_at, completed_by_id, completed_at) VALUES "
                                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", tasks)
                cur.execute("ANALYZE")
            conn.commit()
        print(f"{machine()}; PostgreSQL; {n} instances in one office, {n} steps")
        F = InstanceFilters
        with services.sessions() as s:
            deep = None
            rows = list_instances(s, kasubbag, F(), now, limit=100)
            for _ in range(20):
                rows = list_instances(s, kasubbag, F(), now, limit=100, after=cursor_of(rows[-1], "new"))
            deep = cursor_of(rows[-1], "new")
            cases = {
                "supervisor, newest first": lambda: list_instances(s, kasubbag, F(), now),
                "supervisor, page 80 (keyset)": lambda: list_instances(s, kasubbag, F(), now, after=deep),
                "supervisor, soonest due": lambda: list_instances(s, kasubbag, F(), now, sort="due"),
                "supervisor, late only": lambda: list_instances(s, kasubbag, F(late=True), now),
                "supervisor, step2 + subject": lambda: list_instances(s, kasubbag, F(step="step2", subject="99"), now),
                "staff (own), newest first": lambda: list_instances(s, penerima, F(), now),
            }
            for name, fn in cases.items():
                print(f"{name:32} {summary(timed(fn, args.repeat))}")
        services.dispose()


if __name__ == "__main__":
    main()
