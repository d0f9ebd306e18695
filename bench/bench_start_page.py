"""What the start page costs now that it reads stored facts instead of running workflows.

Deploys N copies of the DPMK SOP (distinct keys) into a throw-away PostgreSQL database and
times `Runtime.startable()` for a member of the start lane, with the version cache warm and
cold. The reference, in the same run, is what the start page did before (issue 10): for
each SOP, restore the spec and run a fresh workflow to its first wait state.

Run: .venv/bin/python bench/bench_start_page.py [--sops 50] [--repeat 40]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, scratch_database, summary, timed  # noqa: E402
from engine.accounts import user_by_name  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import PROCESSES, seed_demo  # noqa: E402
from engine.deploy import deploy_folder  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import ProcessVersion  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.services import Services  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sops", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.sops} SOPs in one office")
    with scratch_database("lajur_bench_start") as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        svc = Services.from_settings(Settings(database_url=url, broker_url="memory://", data_dir=Path(tmp) / "data",
                                              base_url="http://127.0.0.1"))
        with svc.sessions.begin() as session:
            seed_demo(session, svc.runtime.store, Path(tmp) / "logins.json")
            for i in range(args.sops - 1):
                folder = Path(tmp) / f"sop{i}"
                shutil.copytree(PROCESSES / "dpmk-pemutakhiran-website", folder)
                sop = json.loads((folder / "sop.json").read_text())
                sop["key"], sop["name"] = f"sop-{i:03}", f"SOP {i:03}"
                (folder / "sop.json").write_text(json.dumps(sop))
                deploy_folder(session, folder, svc.runtime.store)
        with svc.sessions() as session:
            user = user_by_name(session, "dpmk.penerima").id
            version_ids = list(session.scalars(select(ProcessVersion.id)))
        assert len(svc.runtime.startable(user)) == args.sops

        warm = timed(lambda: svc.runtime.startable(user), args.repeat)
        cold = timed(lambda: Runtime(svc.sessions).startable(user), max(5, args.repeat // 4))

        def before(rt=None):  # the old read path: run each version's workflow to its first wait
            rt = rt or Runtime(svc.sessions)
            with svc.sessions() as session:
                for vid in version_ids:
                    spec, subs = rt._spec(session, vid)
                    wf = rt.store.new_workflow(spec, subs)
                    wf.do_engine_steps()
                    wf.get_tasks(state=TaskState.READY, manual=True)
        ref_cold = timed(before, max(5, args.repeat // 4))
        ref_warm = timed(lambda: before(svc.runtime), args.repeat)
        print(f"startable(), facts, cache warm      : {summary(warm)}")
        print(f"startable(), facts, cache cold      : {summary(cold)}")
        print(f"reference: run each workflow, warm  : {summary(ref_warm)}")
        print(f"reference: run each workflow, cold  : {summary(ref_cold)}")
        svc.dispose()


if __name__ == "__main__":
    main()
