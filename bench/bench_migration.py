"""Moving running instances between versions (engine/migration.py) on PostgreSQL.

N DPMK instances waiting at step 2 (half of them claimed), then version 2 (step 2's Mutu Baku
15 -> 20 minutes, a step added after step 1, step 5 removed: tests/migration_data.py); times
the dry run (`migration.plan`) and the move (`migration.apply`: one transaction per instance,
Mutu Baku re-timed, deadlines replaced, audit rows), per instance.

Command: `.venv/bin/python bench/bench_migration.py [--instances 300]`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from bench.common import machine, scratch_database  # noqa: E402
from engine import migration  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.deploy import deploy_folder  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import HumanTask, User  # noqa: E402
from engine.services import Services  # noqa: E402
from tests.migration_data import DPMK, write_v2  # noqa: E402
from tests.sopdata import STEP_DATA  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=300)
    args = parser.parse_args()
    with scratch_database("lajur_bench_migration") as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        svc = Services.from_settings(Settings(database_url=url, broker_url=f"sqla+sqlite:///{tmp}/b.sqlite3",
                                              data_dir=Path(tmp) / "data", base_url="http://127.0.0.1:5000"))
        with svc.sessions.begin() as session:
            seed_demo(session, svc.runtime.store, Path(tmp) / "logins.json")
        with svc.sessions() as session:
            users = {u.username: u.id for u in session.scalars(select(User))}
        rt = svc.runtime
        for n in range(args.instances):
            instance = rt.start(users["dpmk.penerima"], DPMK, f"Berita {n}")
            with svc.sessions() as session:
                task = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance,
                                                                 HumanTask.state == "ready"))
            rt.complete(users["dpmk.penerima"], task, STEP_DATA[(DPMK, "step1")])
            if n % 2:
                with svc.sessions() as session:
                    task = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance,
                                                                     HumanTask.state == "ready"))
                rt.claim(users["dpmk.kasubbag"], task)
        with svc.sessions.begin() as session:
            deploy_folder(session, write_v2(Path(tmp) / DPMK), rt.store)
        t0 = time.perf_counter()
        report = migration.plan(rt, users["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
        dry = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = migration.apply(rt, users["dpmk.pemilik"], "dpmk", DPMK, 1, 2)
        move = time.perf_counter() - t0
        n = len(report.instances)
        print(f"{machine()}; {n} instances at step 2, {report.movable} movable")
        print(f"dry run: {dry:.2f} s, {dry / n * 1000:.2f} ms per instance")
        print(f"move:    {move:.2f} s, {move / n * 1000:.2f} ms per instance "
              f"(moved {done.count('moved')}, stayed {done.count('stayed')}, failed {done.count('failed')})")
        svc.dispose()


if __name__ == "__main__":
    main()
