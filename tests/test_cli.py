"""The `lajur` command as an operator uses it, on the embedded SQLite default."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .sopdata import DPMK, STEP_DATA

LAJUR = [sys.executable, "-m", "engine.cli"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(tmp_path):
    env = dict(os.environ, LAJUR_DATA_DIR=str(tmp_path / "data"))
    env.pop("LAJUR_DATABASE_URL", None)

    def _run(*args, ok=True, extra_env=None):
        proc = subprocess.run([*LAJUR, *args], cwd=ROOT, env={**env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=120)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc
    _run("migrate")
    _run("seed-demo")
    return _run


def _task_id(out: str) -> int:
    line = next(l for l in out.splitlines() if l.strip().startswith("#"))
    return int(line.split()[0].lstrip("#"))


def test_walk_an_instance_from_the_cli(run, tmp_path):
    assert "instance 1 started" in run("start", "dpmk.penerima", DPMK, "--subject", "Lewat CLI").stdout
    listing = run("tasks", "dpmk.penerima").stdout
    # the starter holds step 1 of their own lane
    assert "[mine] 1 task(s)" in listing and "holder=Rina Wulandari" in listing and "WIB" in listing
    assert "Lewat CLI" in listing
    tid = _task_id(listing)
    assert f"task {tid} claimed" in run("claim", "dpmk.penerima", str(tid)).stdout  # again: harmless
    data_file = tmp_path / "step1.json"
    data_file.write_text(json.dumps(STEP_DATA[(DPMK, "step1")]))
    assert "completed" in run("complete", "dpmk.penerima", str(tid), "--data", f"@{data_file}").stdout
    nxt = _task_id(run("tasks", "dpmk.kasubbag").stdout)
    refused = run("complete", "dpmk.kasubbag", str(nxt), "--data", json.dumps(STEP_DATA[(DPMK, "step2")]), ok=False)
    assert refused.returncode != 0 and "take this step first" in refused.stderr  # nobody holds it yet
    run("complete", "dpmk.kasubbag", str(nxt), "--claim", "--data", json.dumps(STEP_DATA[(DPMK, "step2")]))
    shown = run("show", "dpmk.sekdin", "1").stdout
    assert "instance 1: Lewat CLI" in shown
    for word in ("instance_started", "task_claimed", "task_completed", "step3", "Kasubbag".lower()):
        assert word in shown.lower()


@pytest.mark.parametrize("args,message", [
    (("tasks", "nobody"), "user 'nobody' does not exist"),
    (("complete", "dpmk.penerima", "1", "--data", "{not json"), "--data is not valid JSON"),
    (("complete", "dpmk.penerima", "1", "--data", "{}"), "form data invalid"),
    (("claim", "dinsos.petugas", "1"), "another office"),
    (("claim", "dpmk.operator", "1"), "lane"),
    (("start", "dpmk.operator", DPMK, "--subject", "x"), "only members of"),
    (("deploy", "processes/dpmk-pemutakhiran-website", "--as", "dpmk.sekdin"), "only a process owner"),
])
def test_errors_are_one_line_and_non_zero(run, args, message):
    run("start", "dpmk.penerima", DPMK, "--subject", "Uji galat")
    proc = run(*args, ok=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def test_deploy_reports_unchanged_and_new_versions(run, tmp_path):
    import shutil
    out = run("deploy", "processes/dpmk-pemutakhiran-website").stdout
    assert "unchanged, already version 1" in out
    copy = tmp_path / "dpmk"
    shutil.copytree(ROOT / "processes" / DPMK, copy)
    bpmn = copy / "process.bpmn"
    bpmn.write_text(bpmn.read_text().replace(">PT5M<", ">PT10M<", 1))
    assert "deployed version 2" in run("deploy", str(copy), "--as", "dpmk.pemilik").stdout
    bpmn.write_text(bpmn.read_text().replace("<bpmn:userTask id=\"step2\"", "<bpmn:userTask id=\"step2\" <x", 1))
    proc = run("deploy", str(copy), ok=False)
    assert proc.returncode == 1 and "process.bpmn:" in proc.stderr and "XML syntax error" in proc.stderr


def test_failed_deliveries_are_visible_to_the_operator(run):
    """An email that cannot be delivered ends `failed` after its attempts, and `notify status` lists it."""
    import socket
    with socket.socket() as sock:  # a port nobody listens on: the SMTP server is down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = {"LAJUR_SMTP_HOST": "127.0.0.1", "LAJUR_SMTP_PORT": str(port), "LAJUR_MAX_ATTEMPTS": "1"}
    out = run("notify", "test", "dpmk.penerima", extra_env=down).stdout
    assert "email" in out and "failed" in out
    status = run("notify", "status", "--office", "dpmk").stdout
    assert "failed 1" in status and "failed: 1" in status and "email" in status


def test_pause_request_from_the_cli(run):
    """Staff ask; a supervisor decides; the office may stop clocks at once (issue 14)."""
    run("start", "dpmk.penerima", DPMK, "--subject", "Jeda lewat CLI")
    tid = _task_id(run("tasks", "dpmk.penerima").stdout)
    assert "pause requested" in run("pause", "dpmk.penerima", str(tid), "--reason", "Menunggu foto").stdout
    refused = run("decide-pause", "dpmk.penerima", "1", "--approve", ok=False)
    assert refused.returncode == 1 and "only a supervisor" in refused.stderr
    assert "pause request 1: approved" in run("decide-pause", "dpmk.kasubbag", "1", "--approve").stdout
    assert "clock resumed" in run("resume", "dpmk.penerima", str(tid)).stdout
    bad = run("calendar", "pause-mode", "dpmk", "sometimes", ok=False)
    assert bad.returncode != 0
    assert "immediate" in run("calendar", "pause-mode", "dpmk", "immediate").stdout
    assert "clock paused" in run("pause", "dpmk.penerima", str(tid), "--reason", "Menunggu narasumber").stdout
