"""Several worker and beat nodes (issue 17, worker side): two ticks at once duplicate nothing
(PostgreSQL's SKIP LOCKED), heartbeats in the database and a tick that stops is noticed
(`lajur status`, a warning in the other processes' logs), `/readyz`, quiet and JSON logs.
Real PostgreSQL, Redis, Celery worker and beat processes."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update

from engine import heartbeat, tick
from engine.models import Deadline, Delivery, Notification, User
from webui import create_app

from .helpers import open_task
from .sopdata import DPMK
from .test_workers import ROOT, Celery, free_port, wait_for
from .test_workers import celery_env, redis_broker, smtp, webhook  # noqa: F401 - fixtures

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def _due_warnings(services, demo, n: int) -> list[int]:
    """`n` open steps whose warnings are due now (their breaches cancelled); the deadline ids."""
    with services.sessions.begin() as session:
        session.get(User, demo["dpmk.penerima"]).notify_channels = "inapp,email"
    tasks = []
    for i in range(n):
        task = open_task(services, services.runtime.start(demo["dpmk.penerima"], DPMK, f"Dua beat {i}"))
        tasks.append(task.id)
    now = datetime.now(timezone.utc)
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id.in_(tasks), Deadline.level == "breach")
                        .values(status="cancelled"))
        session.execute(update(Deadline).where(Deadline.human_task_id.in_(tasks), Deadline.level == "warn")
                        .values(due_at=now - timedelta(seconds=1)))
        return list(session.scalars(select(Deadline.id).where(Deadline.human_task_id.in_(tasks),
                                                              Deadline.level == "warn").order_by(Deadline.id)))


def _tick(services, settings, batch=500):
    ids: list[int] = []
    result = tick.tick(services.sessions, settings, services.runtime.calendars,
                            lambda: datetime.now(timezone.utc), ids.extend, batch=batch)
    return result, ids


def test_a_tick_skips_the_rows_another_tick_holds(services, demo, settings):
    """SKIP LOCKED, shown directly: while another transaction holds half the due deadlines
    (as a concurrent tick does), a tick fires the other half at once instead of waiting;
    the held half is fired by the next tick."""
    ids = _due_warnings(services, demo, 10)
    held = ids[:5]
    with services.engine.connect() as other:
        other.execute(select(Deadline.id).where(Deadline.id.in_(held)).with_for_update())  # the "other beat"
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(r=_tick(services, settings)), daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the tick waited for the locked rows instead of skipping them"
        assert time.monotonic() - started < 5
        assert outcome["r"][0].fired == 5
        with services.sessions() as session:
            done = set(session.scalars(select(Deadline.id).where(Deadline.id.in_(ids), Deadline.status == "done")))
        assert done == set(ids[5:])
        other.rollback()
    assert _tick(services, settings)[0].fired == 5


def test_two_ticks_at_once_fire_each_deadline_once(services, demo, settings):
    """Two beats' ticks racing over 60 due deadlines in small batches: every deadline fires
    exactly once, one notification and one delivery each, and both ticks did part of the work."""
    ids = _due_warnings(services, demo, 60)
    settings = dataclasses.replace(settings, smtp_host="smtp.bantulkab.go.id")  # email is a configured channel
    results, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        results.append(_tick(services, settings, batch=3))
    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    fired = [r.fired for r, _ in results]
    assert sum(fired) == 60 and all(fired), fired
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deadline).where(
            Deadline.id.in_(ids), Deadline.status == "done")) == 60
        per_task = session.execute(select(Notification.human_task_id, func.count()).group_by(
            Notification.human_task_id)).all()
        assert len(per_task) == 60 and {c for _, c in per_task} == {1}
        assert session.scalar(select(func.count()).select_from(Delivery)) == 60
    enqueued = [i for _, ids_ in results for i in ids_]
    assert len(enqueued) == len(set(enqueued)) == 60


def test_readyz_database_and_broker(services, tmp_path, redis_broker):
    app = create_app(services=services)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    import dataclasses
    services.settings = dataclasses.replace(services.settings, broker_url=redis_broker)
    response = client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["Cache-Control"] == "no-store"
    services.settings = dataclasses.replace(services.settings, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/readyz")
    assert response.status_code == 503 and response.text.startswith("not ready: broker")
    services.settings = dataclasses.replace(services.settings, broker_url=redis_broker)
    services.engine.dispose()
    url = services.engine.url.set(database="lajur_no_such_database")
    from engine.db import make_engine
    services.engine = make_engine(url.render_as_string(hide_password=False))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.text == "not ready: database: OperationalError"


def _lajur(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def nodes_env(celery_env):
    return {**celery_env, "LAJUR_HEARTBEAT_SECONDS": "1", "LAJUR_LOG_FORMAT": "json"}


@pytest.fixture
def nodes(tmp_path, nodes_env):
    procs = Celery(tmp_path, nodes_env)
    yield procs
    procs.stop()


def test_heartbeats_a_stopped_tick_is_noticed_and_logs_are_quiet_json(services, nodes, nodes_env, redis_broker):
    """A worker and two beats write heartbeats; `lajur status` lists them. Both beats killed
    -9: the tick stops; the worker logs a warning, `lajur status` says so and exits 1; a beat
    started again: the worker logs that the tick is back. Every log line is JSON and no line
    is logged for an idle tick at INFO."""
    env = {**nodes_env, "LAJUR_BROKER_URL": redis_broker}
    worker = nodes.start("worker", **env)
    beats = [nodes.start("beat", **env) for _ in range(2)]
    try:
        def all_alive():
            with services.engine.connect() as conn:
                beats_ = heartbeat.read(conn, services.settings, datetime.now(timezone.utc))
            kinds = sorted(b.kind for b in beats_ if not b.stale)
            return kinds == ["beat", "beat", "tick", "worker"] and beats_
        wait_for(all_alive, 30, "heartbeats of the worker, both beats and the tick")
        done = _lajur("status", env=env)
        assert done.returncode == 0, done.stderr
        assert [line.split()[0] for line in done.stdout.splitlines()] == ["tick", "beat", "beat", "worker", "tick", "outbox:"]
        time.sleep(3)  # idle ticks, several a second
        for beat in beats:
            nodes.kill9(beat)
        wait_for(lambda: b"the deadline tick has not run" in worker.log_path.read_bytes(), 30,
                 "the worker's warning about the stopped tick")
        done = _lajur("status", env=env)
        assert done.returncode == 1
        assert "error: the deadline tick has not run for" in done.stderr and "beat beat@" in done.stderr
        assert "STALE" in done.stdout
        nodes.start("beat", **env)
        wait_for(lambda: b"the deadline tick runs again" in worker.log_path.read_bytes(), 30, "the tick back")
    except AssertionError:
        print(nodes.logs())
        raise
    nodes.stop()
    for log in (worker.log_path, *[b.log_path for b in beats]):
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        records = [json.loads(line) for line in lines if line.startswith("{")]
        # celery's start-up banner is printed, not logged; every logged line is JSON
        assert len(records) >= 1 and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
        assert not [r for r in records if r["level"] == "INFO" and "tick" in r["message"].lower()
                    and "lajur" not in r["logger"]], log
    warnings = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(r["level"] == "WARNING" and "the deadline tick has not run" in r["message"] for r in warnings)
    with services.engine.connect() as conn:  # a clean stop removes the worker's and beat's rows
        rows = conn.execute(text("SELECT kind FROM process_heartbeat WHERE kind = 'worker'")).all()
    assert rows == []
