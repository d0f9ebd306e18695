"""Celery tasks: thin calls into `engine.deadlines` and `engine.outbox` through a per-process
Services object."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from celery.signals import worker_process_init, worker_process_shutdown

from engine import heartbeat
from engine.outbox import send_many
from engine.services import Services

from .app import app

log = logging.getLogger("lajur.workers")


class _ProcessServices:
    """One Services per worker process, built after the fork (a database connection must
    never cross a fork) and dropped when the process ends."""

    def __init__(self):
        self._services: Services | None = None

    def get(self) -> Services:
        if self._services is None:
            self._services = Services.from_settings(app.conf.lajur_settings)
        return self._services

    def reset(self) -> None:
        if self._services is not None:
            self._services.dispose()
        self._services = None


_process = _ProcessServices()


@worker_process_init.connect
def _after_fork(**_):
    _process._services = None  # inherited from the parent: do not reuse, do not dispose


@worker_process_shutdown.connect
def _on_exit(**_):
    _process.reset()


CHUNK = 20  # deliveries per message: amortises the broker and DB round trips over a burst


def _enqueue(ids: list[int]) -> None:
    queue = app.conf.lajur_settings.queue
    for i in range(0, len(ids), CHUNK):
        send_deliveries.apply_async((ids[i:i + CHUNK],), queue=queue)


@app.task(name="workers.tasks.tick", acks_late=False, ignore_result=True, bind=True)
def tick(self) -> dict:
    """Fire due BPMN timers and reminder deadlines; (re)enqueue the sends that need it; then
    write the tick's heartbeat (what `lajur status` and the other processes watch)."""
    svc = _process.get()
    started = time.monotonic()
    result = svc.runtime.deadline_tick(svc.settings, _enqueue)
    with svc.engine.begin() as conn:
        heartbeat.record(conn, *heartbeat.TICK, datetime.now(timezone.utc), {
            "worker": self.request.hostname, "ms": round((time.monotonic() - started) * 1000, 1),
            "fired": result.fired, "enqueued": len(result.enqueued), "timers": result.timers})
    if result.fired or result.enqueued or result.timers:
        log.info("tick: %d deadline(s) fired, %d cancelled, %d send(s) enqueued, %d timer instance(s)",
                 result.fired, result.cancelled, len(result.enqueued), result.timers)
    return {"fired": result.fired, "enqueued": len(result.enqueued), "timers": result.timers}


@app.task(name="workers.tasks.send_deliveries", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> dict:
    """Send each delivery at most once (the claim in the database decides, not the broker)."""
    svc = _process.get()
    result = send_many(svc.sessions, svc.settings, list(delivery_ids), svc.runtime.clock)
    for delivery_id, status in result.items():
        log.info("delivery %s: %s", delivery_id, status)
    return {str(k): v for k, v in result.items()}


@app.task(name="workers.tasks.build_rollup", acks_late=True, ignore_result=True)
def build_rollup() -> dict:
    """Roll up the dashboard's finished days ahead of time, so no supervisor's request pays for it.
    Safe to run often and from several processes: a block is claimed once (see engine/dashboard/rollup.py)."""
    from engine.dashboard import build_rollup as build
    svc = _process.get()
    built = build(svc.engine, svc.runtime.clock())
    if any(built.values()):
        log.info("dashboard rollup: %s", built)
    return built


@app.task(name="workers.tasks.prune_files", acks_late=True, ignore_result=True)
def prune_files() -> int:
    """Remove evidence files no step refers to after their grace period (engine/attachments.py);
    the same as `lajur files prune`. Hourly: a run handles up to 500 files."""
    from engine.attachments import prune
    svc = _process.get()
    with svc.sessions.begin() as session:
        removed = prune(session, svc.settings.data_dir, svc.runtime.clock())
    if removed:
        log.info("files: %d unreferenced upload(s) removed", removed)
    return removed


@app.task(name="workers.tasks.check_publications", acks_late=True, ignore_result=True)
def check_publications() -> dict:
    """Fetch the website links completed steps recorded (engine/published.py): whether the page
    answers and shows the title. Outside any completion's transaction; a failed one is shown on
    the instance page and retried from there."""
    from engine import published
    svc = _process.get()
    done = published.run_pending(svc.sessions, published.Policy.of(svc.settings), svc.runtime.clock)
    if done:
        log.info("publication checks: %s", done)
    return {str(k): v for k, v in done.items()}
