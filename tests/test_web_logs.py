"""`lajur web` with LAJUR_LOG_FORMAT=json: the real process (nginx before gunicorn) writes its
gunicorn error and access logs as JSON lines, in the workers' and beat's format
(engine/logformat.py); every line it writes parses, and the access lines carry the requests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .test_workers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["sqlite"])
def test_lajur_web_logs_json_lines(services, demo, tmp_path):
    port = free_port()
    env = {**os.environ, "LAJUR_DATABASE_URL": services.settings.database_url,
           "LAJUR_DATA_DIR": str(tmp_path / "web-data"), "PYTHONPATH": str(ROOT), "LAJUR_LOG_FORMAT": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out, err = open(tmp_path / "stdout.log", "wb"), open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--port", str(port), "--workers", "1"],
                            cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(up, 30, "lajur web")
        assert requests.get(f"{base}/login?next=/inbox", timeout=5).status_code == 200
        assert requests.get(f"{base}/no/such/page", timeout=5).status_code == 404
        assert requests.post(f"{base}/login", data={"username": "x", "password": "y"}, timeout=5).status_code == 400
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        out.close()
        err.close()
    lines = []
    for name in ("stdout.log", "stderr.log"):
        for raw in (tmp_path / name).read_text().splitlines():
            if raw.strip():
                record = json.loads(raw)  # every line is one JSON object
                assert {"time", "level", "logger", "message"} <= record.keys(), record
                lines.append(record)
    access = [r for r in lines if r["logger"] == "gunicorn.access"]
    by_path = {(r["method"], r["path"]): r for r in access}
    assert by_path[("GET", "/login")]["status"] == 200 and by_path[("GET", "/login")]["query"] == "next=/inbox"
    assert by_path[("GET", "/no/such/page")]["status"] == 404
    assert by_path[("POST", "/login")]["status"] == 400  # no CSRF token
    assert all(r["client"] == "127.0.0.1" and r["duration_ms"] >= 0 for r in access)  # the address nginx forwarded
    errors = [r for r in lines if r["logger"] == "gunicorn.error"]
    assert any("Booting worker" in r["message"] for r in errors), errors
    assert any("Listening at: unix:" in r["message"] for r in errors), errors
