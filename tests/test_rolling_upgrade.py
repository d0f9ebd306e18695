"""Schema changes without stopping: the previous release's code runs its hot paths against
the new schema (README "Schema changes without stopping": add, backfill, then switch).

During a rolling upgrade the database is migrated first, while nodes of the previous release
still serve; they must keep starting, claiming and completing. The previous release
(PREVIOUS, taken from git at test time with `git archive`) is imported in a subprocess with
its own PYTHONPATH, against a PostgreSQL database migrated by this code's head, and works
alongside this code on the same instances: old starts, new completes, and the other way round.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from engine.migrate import alembic_config
from engine.models import HumanTask

from .helpers import open_task, work_step
from .sopdata import DPMK, STEP_DATA

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "d7bd662"  # the release before issue 17 (the last commit of the hot-path work)

# Runs inside the previous release: start two instances, claim and complete, print what it did.
OLD_NODE = r"""
import json, sys
import engine
from engine.config import Settings
from engine.services import Services
from sqlalchemy import select
from engine.models import HumanTask, User
assert engine.__file__.startswith(sys.argv[1]), engine.__file__  # really the previous release
args = json.loads(sys.argv[2])
svc = Services.from_settings(Settings.from_env())
rt = svc.runtime
users = {u.username: u.id for u in svc.sessions().scalars(select(User))}
def ready(iid):
    with svc.sessions() as s:
        return s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))
out = {"started": [], "completed": []}
for i in range(2):                       # start, claim, complete steps 1-2 of a new instance
    iid = rt.start(users["dpmk.penerima"], args["key"], f"Node lama {i}")
    out["started"].append(iid)
    for step, user in (("step1", "dpmk.penerima"), ("step2", "dpmk.kasubbag")):
        task = ready(iid)
        assert task.bpmn_id == step, task.bpmn_id
        rt.claim(users[user], task.id)
        rt.complete(users[user], task.id, args["data"][step])
        out["completed"].append(task.id)
for iid in args["continue"]:             # finish instances the new code started
    task = ready(iid)
    rt.claim(users["dpmk.kasubbag"], task.id)
    rt.complete(users["dpmk.kasubbag"], task.id, args["data"][task.bpmn_id])
    out["completed"].append(task.id)
    out["continued"] = out.get("continued", []) + [task.id]
print(json.dumps(out))
"""


def previous_release(into: Path) -> Path:
    """The previous release's Python packages, from git (no checkout of the work tree)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS, "engine", "webui",
                              "workers"], capture_output=True)
    if archive.returncode != 0:
        pytest.fail(f"commit {PREVIOUS} is not in this clone's history: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


@pytest.mark.parametrize("backend", ["postgresql"])
def test_previous_release_hot_paths_on_the_new_schema(services, demo, tmp_path):
    head = ScriptDirectory.from_config(alembic_config(services.settings.database_url)).get_current_head()
    with services.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    old = previous_release(tmp_path / "previous")
    data = {step: STEP_DATA[(DPMK, step)] for step in ("step1", "step2", "step3")}
    # this code starts one instance and completes step 1; the old node finishes step 2
    mine = services.runtime.start(demo["dpmk.penerima"], DPMK, "Node baru")
    work_step(services, demo, DPMK, mine, "step1")
    env = {**os.environ, "PYTHONPATH": str(old), "LAJUR_DATABASE_URL": services.settings.database_url,
           "LAJUR_DATA_DIR": str(services.settings.data_dir)}
    run = subprocess.run([sys.executable, "-c", OLD_NODE, str(old),
                          json.dumps({"key": DPMK, "data": data, "continue": [mine]})],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(out["started"]) == 2 and len(out["completed"]) == 5
    # what the old node wrote, this code reads and carries on
    with services.sessions() as session:
        done = session.scalars(select(HumanTask).where(HumanTask.id.in_(out["completed"]))).all()
    assert {t.state for t in done} == {"completed"} and len(done) == 5
    assert open_task(services, mine).bpmn_id == "step3"
    for iid in out["started"]:
        work_step(services, demo, DPMK, iid, "step3")
        detail = services.runtime.instance_detail(demo["dpmk.sekdin"], iid)
        kinds = [e.kind for e in detail["events"]]
        assert kinds.count("task_completed") == 3, kinds  # two by the old node, one by this code
    rows = services.runtime.list_tasks(demo["dpmk.operator"], "group")
    assert {r.instance_id for r in rows} >= set(out["started"])


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_check_fails_on_a_change_made_the_wrong_way(services, demo, tmp_path):
    """A negative control: a column added NOT NULL without a default (instead of add nullable,
    backfill, then switch) breaks the previous release's start, and the check above would say so."""
    old = previous_release(tmp_path / "previous")
    env = {**os.environ, "PYTHONPATH": str(old), "LAJUR_DATABASE_URL": services.settings.database_url,
           "LAJUR_DATA_DIR": str(services.settings.data_dir)}
    with services.engine.begin() as conn:
        conn.execute(text("ALTER TABLE human_task ADD COLUMN priority integer NOT NULL"))
    try:
        run = subprocess.run([sys.executable, "-c", OLD_NODE, str(old),
                              json.dumps({"key": DPMK, "data": {}, "continue": []})],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        with services.engine.begin() as conn:
            conn.execute(text("ALTER TABLE human_task DROP COLUMN priority"))
    assert run.returncode != 0 and "priority" in run.stderr, run.stderr[-2000:]
