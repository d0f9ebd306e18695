"""Heartbeats of the worker and beat processes and of the deadline tick, kept in the database.

Why the database: it is the one thing every node of an installation shares, so any process
(and `lajur status`, and an administrator's page) can see which others are alive, and a tick
that stopped is noticed even when the beat that should drive it is the process that died.

Each worker and beat writes its row every `heartbeat_seconds`; the tick writes the "tick"
row each time it runs. A row is stale when it was not written for `STALE_BEATS` intervals
(the tick: for `STALE_BEATS` heartbeat intervals or 10 ticks, whichever is longer). A
`Watch` per process turns the stale set into log warnings, once when a row goes stale and
once when it recovers, so a dead beat does not fill the log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .config import Settings
from .db import as_utc
from .models import Deadline, Delivery, ProcessHeartbeat

STALE_BEATS = 3
FORGET_AFTER = timedelta(hours=1)  # a process silent this long is gone, not stalled
TICK = ("tick", "deadline")

_table = ProcessHeartbeat.__table__


def record(conn: Connection, kind: str, name: str, now: datetime, info: dict | None = None,
           started_at: datetime | None = None) -> None:
    """Write a process's (or the tick's) sign of life: one upsert, in the caller's transaction."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values = {"kind": kind, "name": name, "seen_at": now, "info": info, "started_at": started_at or now}
    update = {"seen_at": now, "info": info}
    if started_at is not None:
        update["started_at"] = started_at
    conn.execute(insert(_table).values(**values).on_conflict_do_update(
        index_elements=[_table.c.kind, _table.c.name], set_=update))


def forget_gone(conn: Connection, now: datetime) -> int:
    """Drop the rows of worker and beat processes silent for over an hour (restarted under
    another name, or retired); the tick's row stays."""
    return conn.execute(delete(_table).where(_table.c.kind != TICK[0],
                                             _table.c.seen_at < now - FORGET_AFTER)).rowcount


@dataclass(frozen=True)
class Beat:
    kind: str
    name: str
    started_at: datetime
    seen_at: datetime
    info: dict | None
    age: float      # seconds since seen
    stale: bool


def stale_after(settings: Settings, kind: str) -> float:
    beats = STALE_BEATS * settings.heartbeat_seconds
    return max(beats, 10 * settings.tick_seconds) if kind == TICK[0] else beats


def read(conn: Connection, settings: Settings, now: datetime) -> list[Beat]:
    """Every heartbeat row, the tick first, then beats and workers by name."""
    order = {"tick": 0, "beat": 1, "worker": 2}
    out = []
    for r in conn.execute(select(_table)).all():
        seen = as_utc(r.seen_at)
        age = (now - seen).total_seconds()
        out.append(Beat(r.kind, r.name, as_utc(r.started_at), seen, r.info, age, age > stale_after(settings, r.kind)))
    return sorted(out, key=lambda b: (order.get(b.kind, 9), b.name))


def problems(beats: list[Beat], me: tuple[str, str] | None = None) -> dict[tuple[str, str], str]:
    """What is wrong, by row: a stale tick or process (other than `me`)."""
    found = {(b.kind, b.name): f"{b.kind} {b.name} silent for {b.age:.0f} s (last seen {b.seen_at:%H:%M:%S} UTC)"
             for b in beats if b.stale and (b.kind, b.name) != me}
    if TICK in found:
        found[TICK] = f"the deadline tick has not run for {next(b.age for b in beats if (b.kind, b.name) == TICK):.0f} s"
    return found


def outbox_depth(conn: Connection) -> dict[str, int]:
    """Deliveries waiting or under way, and those that gave up."""
    rows = conn.execute(select(Delivery.status, func.count()).where(
        Delivery.status.in_(("pending", "sending", "failed"))).group_by(Delivery.status)).all()
    return {"pending": 0, "sending": 0, "failed": 0, **dict(rows)}


_OLDEST_DUE = select(func.min(Deadline.due_at)).where(Deadline.status == "pending", Deadline.due_at <= bindparam("now"))


def tick_lag(conn: Connection, now: datetime) -> float:
    """Seconds the oldest due reminder deadline has waited unfired (0 when none is due)."""
    oldest = as_utc(conn.execute(_OLDEST_DUE, {"now": now}).scalar())
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


@dataclass(frozen=True)
class Status:
    """The installation's health as `lajur status`, the administrators' status page and the
    metrics endpoint show it: one reading, so they never disagree."""

    beats: list[Beat]
    tick_lag: float         # seconds
    outbox: dict[str, int]  # pending, sending, failed
    problems: list[str]

    @property
    def outbox_depth(self) -> int:
        return self.outbox["pending"] + self.outbox["sending"]

    @property
    def failed(self) -> int:
        return self.outbox["failed"]

    @property
    def never_ticked(self) -> bool:
        return not any((b.kind, b.name) == TICK for b in self.beats)


def status(conn: Connection, settings: Settings, now: datetime) -> Status:
    """Read every heartbeat, the tick lag and the outbox; name what is wrong (a silent tick
    or process, or a tick that never ran)."""
    beats = read(conn, settings, now)
    found = Status(beats, tick_lag(conn, now), outbox_depth(conn), list(problems(beats).values()))
    if found.never_ticked:
        found.problems.insert(0, "the deadline tick has never run (is a worker and a beat running?)")
    return found


@dataclass
class Watch:
    """One process's view of the others: which problems it has already warned about."""

    me: tuple[str, str]
    warned: dict = field(default_factory=dict)

    def changes(self, beats: list[Beat]) -> tuple[list[str], list[str]]:
        """(new problems, recovered ones) since the last call."""
        now_wrong = problems(beats, self.me)
        new = [text for key, text in now_wrong.items() if key not in self.warned]
        recovered = [("the deadline tick runs again" if key == TICK else f"{key[0]} {key[1]} is back")
                     for key in self.warned if key not in now_wrong]
        self.warned = now_wrong
        return new, recovered


def report(conn: Connection, settings: Settings, now: datetime) -> tuple[list[str], list[str]]:
    """`lajur status`: one line per heartbeat, one for the tick lag and one for the outbox; and
    what is wrong (see status())."""
    found = status(conn, settings, now)
    lines = []
    for b in found.beats:
        info = " ".join(f"{k}={v}" for k, v in (b.info or {}).items())
        lines.append(f"{b.kind:6} {b.name:40} seen {b.age:7.1f} s ago  {'STALE' if b.stale else 'ok':5}  {info}")
    lines.append(f"tick lag: {found.tick_lag:.1f} s")
    lines.append("outbox: " + ", ".join(f"{k} {v}" for k, v in found.outbox.items()))
    return lines, found.problems
