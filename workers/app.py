"""The Celery application (`celery -A workers.app worker|beat`).

Celery is only the doorbell: deadlines and deliveries are database rows, the tick claims
them, and every queued message is an immediate, idempotent task. Hence:
- acks_late + reject_on_worker_lost: a worker killed mid-task gets its message redelivered;
- prefetch 1: a slow send never holds other messages hostage in a worker's memory;
- a modest visibility_timeout (Redis): an unacked message comes back within minutes, and
  the tick's lease/requeue check covers brokers without one (the SQL broker) anyway;
- no ETA/countdown anywhere: retries wait in `delivery.next_attempt_at`.

The same configuration runs over Redis or the SQL broker (`sqla+sqlite:///...`, the
embedded default). Over Redis the transport is kombu's with one fix (workers/broker.py):
a Redis restart while sends are under way no longer stops the worker.
"""
from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone

from celery import Celery
from kombu import Connection, Queue

from engine.config import Settings
from engine.services import tune_gc


def tick_queue(settings: Settings) -> str:
    return f"{settings.queue}.tick"


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.broker_url.startswith("sqla+"):
        # kombu hands these straight to SQLAlchemy's create_engine: only engine arguments here.
        transport: dict = {"connect_args": {"timeout": 30}} if "sqlite" in settings.broker_url else {}
    else:
        transport = {"visibility_timeout": int(os.environ.get("LAJUR_VISIBILITY_TIMEOUT", "300"))}
        prefix = os.environ.get("LAJUR_BROKER_PREFIX")
        if prefix:
            transport["global_keyprefix"] = prefix  # lets several installations (or tests) share one Redis
    app = Celery("lajur", broker=settings.broker_url, include=["workers.tasks"])
    from . import logs
    from .heartbeat import WorkerHeartbeat
    logs.install()  # quiet ticks, JSON lines
    app.steps["worker"].add(WorkerHeartbeat)
    if settings.broker_url.startswith("redis://"):
        # kombu's Redis transport, except that a Redis restart cannot stop the worker (see broker.py)
        app.conf.broker_transport = "workers.broker:Transport"
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.queue,
        # The tick has its own queue: behind a burst of thousands of sends it would wait (and
        # expire) in a shared FIFO queue; the worker consumes both queues round-robin.
        task_queues=[Queue(settings.queue), Queue(tick_queue(settings))],
        task_routes={"workers.tasks.tick": {"queue": tick_queue(settings)}},
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # Redis restarting only delays, never stops, the worker
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            # the dashboard's rollup of finished days; hourly, so a restart never leaves a gap long
            # (last run "long ago": due when beat starts, as the schedule is not kept across restarts)
            "lajur-dashboard-rollup": {"task": "workers.tasks.build_rollup", "schedule": 3600.0,
                                       "last_run_at": datetime(2000, 1, 1, tzinfo=timezone.utc)},
            # uploads no step refers to, after their grace period (engine.attachments.prune)
            "lajur-prune-files": {"task": "workers.tasks.prune_files", "schedule": 3600.0},
            # published links recorded by a completed step: fetched outside its transaction
            "lajur-publication-checks": {"task": "workers.tasks.check_publications", "schedule": 10.0,
                                         "options": {"expires": 30.0}},
            "lajur-tick": {
                "task": "workers.tasks.tick",
                "schedule": settings.tick_seconds,
                # a tick that waited longer than a few intervals is pointless: the next one comes
                "options": {"expires": max(2.0, settings.tick_seconds * 3)},
            },
        },
        beat_scheduler="workers.heartbeat:Scheduler",  # in memory, plus a heartbeat
    )
    app.conf.lajur_settings = settings
    if settings.broker_url.startswith("sqla+"):
        for queue in (settings.queue, tick_queue(settings)):
            prepare_sql_broker(settings.broker_url, queue, transport)
    return app


def prepare_sql_broker(url: str, queue: str, transport_options: dict, attempts: int = 20) -> None:
    """Create kombu's tables and the queue row once, tolerating a racing process.

    kombu's SQL transport creates the queue row on first use; a worker and beat starting
    together both insert it, and the loser's session is left unusable (UNIQUE failed).
    Doing it here, with retries on fresh connections, removes that race.
    """
    for attempt in range(attempts):
        try:
            with Connection(url, transport_options=transport_options) as conn:
                conn.default_channel.queue_declare(queue=queue)  # creates the row (kombu's public channel API)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.2)


app = make_app()
tune_gc()  # the worker process (and its forked children) run the engine too
