"""Heartbeats of the worker and beat processes (engine/heartbeat.py says what they mean).

Both hook into Celery through its documented extension points, no internals:
- the worker through a bootstep (`app.steps["worker"]`) that uses the worker's own timer;
- beat through a Scheduler subclass (`beat_scheduler`) whose `tick` also beats. It is Celery's
  in-memory scheduler, not the default file-backed one: beat has nothing worth persisting
  (deadlines live in the database), and two beats on one machine sharing a schedule file
  crash each other (seen: `EOFError` from shelve when both started together), as does a
  file left half-written by a kill -9.

Each heartbeat writes the process's row and reads the others: a process, or the deadline
tick, that fell silent is logged as a warning (once, and once more when it is back). The
row is removed on a clean shutdown, so only a process that died stays behind as stale.
The database is reached through a connection per heartbeat (NullPool): the worker's
timer runs in the parent of forked pool children, and no pooled connection may cross a fork.
"""
from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timezone

from celery import bootsteps
from celery.beat import Scheduler as BaseScheduler
from sqlalchemy import delete
from sqlalchemy.pool import NullPool

from engine import heartbeat
from engine.config import Settings
from engine.db import make_engine
from engine.models import ProcessHeartbeat

log = logging.getLogger("lajur.workers")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Pulse:
    """One process's heartbeat: write its row, read the others, warn about the silent ones."""

    def __init__(self, settings: Settings, kind: str, name: str):
        self.settings, self.kind, self.name = settings, kind, name
        self.started_at = _now()
        self.engine = make_engine(settings.database_url, poolclass=NullPool)
        self.watch = heartbeat.Watch((kind, name))
        self.first = True

    def beat(self) -> None:
        now = _now()
        try:
            with self.engine.begin() as conn:
                heartbeat.record(conn, self.kind, self.name, now, {"pid": os.getpid()},
                                 started_at=self.started_at if self.first else None)
                if self.first:
                    heartbeat.forget_gone(conn, now)
                beats = heartbeat.read(conn, self.settings, now)
        except Exception as exc:  # noqa: BLE001 - a database outage must not stop the process
            log.warning("heartbeat of %s %s not written: %r", self.kind, self.name, exc)
            return
        self.first = False
        new, recovered = self.watch.changes(beats)
        for text in new:
            log.warning("%s (noticed by %s %s)", text, self.kind, self.name)
        for text in recovered:
            log.info("%s (noticed by %s %s)", text, self.kind, self.name)

    def stop(self) -> None:
        try:
            with self.engine.begin() as conn:
                t = ProcessHeartbeat.__table__
                conn.execute(delete(t).where(t.c.kind == self.kind, t.c.name == self.name))
        except Exception as exc:  # noqa: BLE001
            log.warning("heartbeat row of %s %s not removed: %r", self.kind, self.name, exc)
        self.engine.dispose()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Beats every `heartbeat_seconds` on the worker's timer, under the worker's node name."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.pulse: Pulse | None = None
        self.tref = None

    def start(self, worker):
        settings = worker.app.conf.lajur_settings
        self.pulse = Pulse(settings, "worker", worker.hostname)
        self.pulse.beat()
        self.tref = worker.timer.call_repeatedly(settings.heartbeat_seconds, self.pulse.beat)

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.pulse is not None:
            self.pulse.stop()
            self.pulse = None


class Scheduler(BaseScheduler):
    """Celery's in-memory scheduler, plus a heartbeat every `heartbeat_seconds` (beat@host:pid)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = self.app.conf.lajur_settings
        self.pulse = Pulse(settings, "beat", f"beat@{socket.gethostname()}:{os.getpid()}")
        self.next_pulse = 0.0

    def tick(self, *args, **kwargs):
        wait = super().tick(*args, **kwargs)
        now = self.app.now().timestamp()
        if now >= self.next_pulse:
            self.pulse.beat()
            self.next_pulse = now + self.pulse.settings.heartbeat_seconds
        return min(wait, max(0.0, self.next_pulse - now))

    def close(self):
        super().close()
        self.pulse.stop()
