"""Prometheus metrics (webui/metrics.py): by route through Flask's test client on both
databases, its protection, and multi-process mode under a real gunicorn (`lajur web`) with a
worker killed -9."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from engine.models import Deadline, Delivery

from .helpers import work_step
from .sopdata import DPMK
from .test_web import login, make_app, users, work  # noqa: F401 (users is a fixture)
from .test_workers import free_port, reminder_due_now, wait_for

ROOT = Path(__file__).resolve().parent.parent


def samples(body: str) -> dict[tuple, float]:
    """{(sample name, sorted labels...): value}."""
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, *sorted(labels.items())), 0.0)


def test_metrics_by_route_completions_and_backlog(services, users):
    app = make_app(services)
    sekdin = login(app, "dpmk.sekdin")
    iid = services.runtime.start(users["dpmk.penerima"], DPMK, "Berita untuk metrik")
    work_step(services, users, DPMK, iid, "step1")
    task = work(app, services, iid, DPMK, "step2")  # through HTTP: one completion
    for _ in range(3):
        assert sekdin.get(f"/tasks/{task.id}").status_code == 200
    assert sekdin.get("/no/such/page").status_code == 404
    # the backlog: one reminder waiting 30 s past due, one failed delivery
    reminder = reminder_due_now(services, users, "inapp,email")
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id == reminder, Deadline.level == "warn")
                        .values(due_at=datetime.now(timezone.utc) - timedelta(seconds=30)))
    # fires it: a queued delivery (an installation with a mail server: without one no email is made)
    services.runtime.deadline_tick(dataclasses.replace(services.settings, smtp_host="smtp.bantulkab.go.id"),
                                   lambda ids: None)
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id == reminder, Deadline.level == "breach")
                        .values(status="pending", due_at=datetime.now(timezone.utc) - timedelta(seconds=30)))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    found = samples(response.data.decode())
    route = "/tasks/<int:task_id>"
    assert value(found, "lajur_http_requests_total", route=route, method="GET", status="200") == 3
    assert value(found, "lajur_http_requests_total", route=route, method="POST", status="302") == 1
    assert value(found, "lajur_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert not any(f"/tasks/{task.id}" in str(k) for k in found)  # raw paths never become labels
    assert value(found, "lajur_http_request_duration_seconds_count", route=route) == 4
    assert value(found, "lajur_step_completions_total") == 1
    assert 29 <= value(found, "lajur_tick_lag_seconds") < 120
    assert value(found, "lajur_outbox_depth") == 1  # the email of the fired warning, not yet sent
    assert value(found, "lajur_deliveries_failed") == 0 and value(found, "lajur_incidents_open") == 0
    with services.sessions.begin() as session:
        session.execute(update(Delivery).values(status="failed"))
    found = samples(app.test_client().get("/metrics").data.decode())
    assert value(found, "lajur_deliveries_failed") == 1 and value(found, "lajur_outbox_depth") == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_metrics_only_for_loopback_or_the_token(services, users):
    app = make_app(services)
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    # forwarded by the front: the client is not on this machine, whatever the socket says
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    from dataclasses import replace
    services.settings = replace(services.settings, metrics_token="rahasia-metrik")
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_overrides=remote).status_code == 401
    assert client.get("/metrics", environ_overrides=remote, headers={"Authorization": "Bearer salah"}).status_code == 401
    ok = client.get("/metrics", environ_overrides=remote, headers={"Authorization": "Bearer rahasia-metrik"})
    assert ok.status_code == 200 and b"lajur_outbox_depth" in ok.data


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _worker_pids(lajur_web: int) -> list[int]:
    """gunicorn's workers: the children of the gunicorn master that `lajur web` runs beside nginx."""
    for pid in _children(lajur_web):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except FileNotFoundError:
            continue
        if b"gunicorn" in cmdline:
            return _children(pid)
    return []


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_multiprocess_totals_under_gunicorn_survive_a_killed_worker(services, demo, tmp_path):
    port = free_port()
    data_dir = tmp_path / "web-data"
    stale = data_dir / "metrics" / f"web-{port}"
    stale.mkdir(parents=True)
    (stale / "counter_999999.db").write_bytes(b"left by an earlier run")  # must not be added up
    env = {**os.environ, "LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(data_dir),
           "PYTHONPATH": str(ROOT), "LAJUR_METRICS_TOKEN": "rahasia-metrik"}
    # `lajur web` serves through nginx, which forwards every request: a scrape needs the token
    scrape = {"Authorization": "Bearer rahasia-metrik"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(up, 30, "gunicorn")
        wait_for(lambda: len(_worker_pids(proc.pid)) == 2, 15, "two gunicorn workers")
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        before = value(samples(requests.get(f"{base}/metrics", headers=scrape, timeout=5).text), "lajur_http_requests_total",
                       **healthz)  # the probes of up() (one that timed out client-side still counts)
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as pool:  # concurrent: usually both workers serve some
            assert all(r.status_code == 200 for r in pool.map(
                lambda _: requests.get(f"{base}/healthz", timeout=5), range(39)))
        files = sorted(p.name for p in stale.iterdir())
        assert "counter_999999.db" not in files
        served = [pid for pid in _worker_pids(proc.pid) if f"gauge_livesum_{pid}.db" in files]
        assert served, files
        found = samples(requests.get(f"{base}/metrics", headers=scrape, timeout=5).text)
        assert value(found, "lajur_http_requests_total", **healthz) == before + 39
        victim = served[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_worker_pids(proc.pid)) == 2 and victim not in _worker_pids(proc.pid), 20,
                 "gunicorn to replace the killed worker")
        wait_for(lambda: not (stale / f"gauge_livesum_{victim}.db").exists(), 10,
                 "the dead worker's live gauge to be cleaned")
        found = samples(requests.get(f"{base}/metrics", headers=scrape, timeout=5).text)
        # the dead worker's requests still count; its in-progress gauge does not
        assert value(found, "lajur_http_requests_total", **healthz) == before + 39
        assert value(found, "lajur_http_requests_in_progress") == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        log.close()
    print((tmp_path / "gunicorn.log").read_text()[-2000:])
