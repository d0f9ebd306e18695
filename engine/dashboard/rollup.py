"""The rollup of past days: completed-step figures built once into blocks.

A completed step never changes (completed_at, working_minutes, due_at and completed_by_id are
written once, at completion), so the completed-step figures of an office's local day that is
over are immutable. They are rolled up once, lazily (the first query that needs a day builds
it; the beat tick may call `build_rollup` ahead), into blocks of one office and one day ("d"),
ISO week inside a month ("w", from its days), month ("m", from its days) or year ("y", from
its months); days are the office's own (`Office.timezone`):

* `stats_block` (office_id, span, day = the block's first day): the block is built; its rows
  commit in the same transaction.
* `stats_step_block`: per (SOP version, step): completed, with_due, on_time, late and the
  durations: every distinct working time (centi-minutes, i.e. rounded to 2 decimals) with its
  count, packed as little-endian int64 pairs (value, count), values ascending. Pairs, so that
  PostgreSQL can concatenate the day blocks of a period (string_agg) into one row per group.
* `stats_officer_block`: the same per (SOP version, step, officer).

A query (completed.py) reads the largest built blocks that fit in its period, and reads
human_task live for the rest (today, the first hour after midnight, and anything not built).
Rows of instances deleted later stay counted in their blocks: to rebuild, delete the
`stats_block` rows (the figures' rows go with them, ON DELETE CASCADE) and the next query
builds them again. The primary keys keep a block from being built twice: builders claim a
block with INSERT .. ON CONFLICT DO NOTHING (PostgreSQL blocks a second claimer until the
first commits, then skips; SQLite serialises writers with BEGIN IMMEDIATE).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..db import as_utc
from ..models import Office, ProcessDefinition, StatsBlock, StatsOfficerBlock, StatsStepBlock
from .filters import Filters, utc
from .percentiles import centi, pack, unpack
from .scope import count_if, ht, is_pg, late_completed, on_time
from .zones import DEFAULT_TZ, Zones, day_bounds, local_day

ROLLUP_GRACE = timedelta(hours=1)  # a day is final one hour after its midnight (late commits)
_CHUNK_DAYS = 31  # build at most this many days per aggregate query (bounded memory)

blk = StatsBlock.__table__
step_blk = StatsStepBlock.__table__
officer_blk = StatsOfficerBlock.__table__


def as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def rollup_cutoff(now: datetime, tz: str = DEFAULT_TZ) -> date:
    """The first local day (of zone `tz`) that is not final: days before it may be (and are) rolled up.

    Never after the wall clock's (a `now` in the future must not freeze days still to come),
    and one hour of grace after midnight for transactions that commit late."""
    t = min(utc(now), datetime.now(timezone.utc)) - ROLLUP_GRACE
    return local_day(t, tz)


def month_last(d: date) -> date:
    return (date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)) - timedelta(days=1)


def next_block(span: str, d: date) -> date:
    if span == "y":
        return date(d.year + 1, 1, 1)
    if span == "m":
        return month_last(d) + timedelta(days=1)
    return d + timedelta(days=7 if span == "w" else 1)


def _week_fits(d: date, lo: date, hi: date) -> bool:
    """A week block (Monday..Sunday) is used inside a month the period does not hold whole
    (a whole month is one month block; a week never straddles two months)."""
    last = d + timedelta(days=6)
    first_of_month = date(d.year, d.month, 1)
    return (d.weekday() == 0 and last <= hi and last.month == d.month
            and not (first_of_month >= lo and month_last(d) <= hi))


def ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as inclusive runs of consecutive days."""
    out: list[list[date]] = []
    for d in days:
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def _walk(lo: date, hi: date, big: set, days: set | None) -> tuple[list[tuple[str, date]], list[date], bool]:
    """Cover [lo, hi] with built blocks, largest first; return (blocks, days not covered, whether
    a larger block that fits is not built yet)."""
    blocks, gaps, better = [], [], False
    d = lo
    while d <= hi:
        if d.month == 1 and d.day == 1 and ("y", d) in big and date(d.year, 12, 31) <= hi:
            blocks.append(("y", d))
        elif d.day == 1 and ("m", d) in big and month_last(d) <= hi:
            blocks.append(("m", d))
        elif ("w", d) in big and _week_fits(d, lo, hi):
            blocks.append(("w", d))
        else:
            (blocks.append(("d", d)) if days is not None and d in days else gaps.append(d))
            better = better or (d.day == 1 and month_last(d) <= hi) or _week_fits(d, lo, hi)
            d += timedelta(days=1)
            continue
        d = next_block(blocks[-1][0], d)
    return blocks, gaps, better


def _first_day(conn, office_id: int, tz: str) -> date | None:
    first = conn.execute(select(func.min(ht.c.completed_at))
                         .where(ht.c.office_id == office_id, ht.c.state == "completed")).scalar()
    return None if first is None else local_day(as_utc(first if isinstance(first, datetime) else
                                                       datetime.fromisoformat(str(first))), tz)


def coverage(conn, spans: dict[int, tuple[date, date]]) -> dict[int, tuple[list, list[date], bool]]:
    """Per office: the built blocks covering its final days [lo, hi], the days not built, and
    whether larger blocks could be built (see `_walk`)."""
    if not spans:
        return {}
    lo_all, hi_all = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    big: dict[int, set] = defaultdict(set)
    for r in conn.execute(select(blk.c.office_id, blk.c.span, blk.c.day).where(
            blk.c.office_id.in_(list(spans)), blk.c.span.in_(("w", "m", "y")), blk.c.day.between(lo_all, hi_all))):
        big[r.office_id].add((r.span, as_date(r.day)))
    gaps = {o: ranges(_walk(lo, hi, big[o], None)[1]) for o, (lo, hi) in spans.items()}
    days: dict[int, set] = defaultdict(set)
    wanted = [and_(blk.c.office_id == o, blk.c.day.between(a, b)) for o, rs in gaps.items() for a, b in rs]
    for i in range(0, len(wanted), 200):
        for r in conn.execute(select(blk.c.office_id, blk.c.day).where(blk.c.span == "d", or_(*wanted[i:i + 200]))):
            days[r.office_id].add(as_date(r.day))
    return {o: _walk(lo, hi, big[o], days[o]) for o, (lo, hi) in spans.items()}


def final_spans(conn, zones: dict[int, str], start: date | None, end: date | None,
                now: datetime) -> dict[int, tuple[date, date]]:
    """Per office (id -> its time zone), the final days of the period (start None: from the
    office's first completion)."""
    spans = {}
    for o, tz in zones.items():
        cutoff = rollup_cutoff(now, tz)
        last = cutoff - timedelta(days=1) if end is None else min(end, cutoff - timedelta(days=1))
        lo = start if start is not None else _first_day(conn, o, tz)
        if lo is not None and lo <= last:
            spans[o] = (lo, last)
    return spans


def _insert_ignore(conn, table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


def claim(conn, office_id: int, span: str, days: list[date]) -> list[date]:
    """Mark blocks as built (ascending, so two builders never deadlock); return those we got."""
    got = []
    stamp = datetime.now(timezone.utc)
    for i in range(0, len(days), 500):
        rows = [{"office_id": office_id, "span": span, "day": d, "built_at": stamp} for d in days[i:i + 500]]
        got += [as_date(d) for d in conn.execute(_insert_ignore(conn, blk).values(rows).returning(blk.c.day))
                .scalars()]
    return sorted(got)


def _write(conn, office_id: int, span: str, groups: dict[tuple, list]) -> None:
    """Insert the rows of new blocks: groups[(day, version, step, officer or None)] = [5 figures]."""
    steps, officers = [], []
    for (d, version, step, officer), (completed, with_due, n_on_time, late, values) in groups.items():
        row = {"office_id": office_id, "span": span, "day": d, "version_id": version, "bpmn_id": step,
               "completed": completed, "with_due": with_due, "on_time": n_on_time, "late": late,
               "durations": pack(values)}
        if officer is None:
            steps.append(row)
        else:
            officers.append({**row, "officer_id": officer})
    for table, rows in ((step_blk, steps), (officer_blk, officers)):
        for i in range(0, len(rows), 5000):
            conn.execute(_insert_ignore(conn, table), rows[i:i + 5000])


def _figures() -> list:
    return [0, 0, 0, 0, defaultdict(int)]


def _build_days(conn, office_id: int, days: list[date], pg: bool, tz: str) -> int:
    """Roll up these final days of one office from human_task; returns how many were ours to build."""
    claimed = claim(conn, office_id, "d", days)
    zones = Zones({office_id: tz})
    for a, b in ranges(claimed):
        while a <= b:
            z = min(b, a + timedelta(days=_CHUNK_DAYS - 1))
            lo, hi = day_bounds(a, z, tz)
            day = zones.local_date(ht.c.completed_at, ht.c.office_id, pg).label("day")
            keys = [day, ht.c.version_id, ht.c.bpmn_id, ht.c.completed_by_id, ht.c.working_minutes]
            groups: dict[tuple, list] = defaultdict(_figures)
            for r in conn.execute(
                    select(*keys, func.count().label("n"), count_if(ht.c.due_at.is_not(None)).label("with_due"),
                           count_if(on_time()).label("on_time"), count_if(late_completed()).label("late"))
                    .where(ht.c.office_id == office_id, ht.c.state == "completed", ht.c.completed_at >= lo,
                           ht.c.completed_at < hi).group_by(*keys)):
                d = as_date(r.day)
                targets = [groups[(d, r.version_id, r.bpmn_id, None)]]
                if r.completed_by_id is not None:
                    targets.append(groups[(d, r.version_id, r.bpmn_id, r.completed_by_id)])
                for g in targets:
                    g[0] += r.n
                    g[1] += int(r.with_due)
                    g[2] += int(r.on_time)
                    g[3] += int(r.late)
                    if r.working_minutes is not None:
                        g[4][centi(r.working_minutes)] += r.n
            _write(conn, office_id, "d", groups)
            a = z + timedelta(days=1)
    return len(claimed)


def _build_merged(conn, office_id: int, span: str, firsts: list[date]) -> int:
    """Build week or month blocks from their days ("w", "m") or year blocks from their months ("y")."""
    claimed = claim(conn, office_id, span, firsts)
    part = "m" if span == "y" else "d"
    for first in claimed:
        last = next_block(span, first) - timedelta(days=1)
        groups: dict[tuple, list] = defaultdict(_figures)
        for table, officer in ((step_blk, False), (officer_blk, True)):
            for r in conn.execute(select(table).where(table.c.office_id == office_id, table.c.span == part,
                                                      table.c.day.between(first, last))):
                g = groups[(first, r.version_id, r.bpmn_id, r.officer_id if officer else None)]
                g[0] += r.completed
                g[1] += r.with_due
                g[2] += r.on_time
                g[3] += r.late
                pairs = unpack(r.durations)
                for v, c in zip(pairs[0::2], pairs[1::2]):
                    g[4][v] += c
        _write(conn, office_id, span, groups)
    return len(claimed)


def _build(conn, spans: dict[int, tuple[date, date]], zones: dict[int, str], pg: bool) -> dict[str, int]:
    """Build every missing block that fits in each office's final days."""
    built = {"d": 0, "w": 0, "m": 0, "y": 0}
    for office_id, (blocks, gaps, _) in coverage(conn, spans).items():
        lo, hi = spans[office_id]
        if gaps:
            built["d"] += _build_days(conn, office_id, gaps, pg, zones[office_id])
        have = set(blocks)
        weeks, w = [], lo + timedelta(days=(7 - lo.weekday()) % 7)
        while w <= hi:
            if _week_fits(w, lo, hi) and ("w", w) not in have:
                weeks.append(w)
            w += timedelta(days=7)
        if weeks:
            built["w"] += _build_merged(conn, office_id, "w", weeks)
        months, m = [], date(lo.year, lo.month, 1)
        while m <= hi:
            if m >= lo and month_last(m) <= hi and ("m", m) not in have and \
                    not any(s == "y" and b.year == m.year for s, b in have):
                months.append(m)
            m = next_block("m", m)
        if months:
            built["m"] += _build_merged(conn, office_id, "m", months)
        years = [date(y, 1, 1) for y in range(lo.year, hi.year + 1)
                 if date(y, 1, 1) >= lo and date(y, 12, 31) <= hi and ("y", date(y, 1, 1)) not in have]
        if years:
            built["y"] += _build_merged(conn, office_id, "y", years)
    return built


def _engine_of(session: Session):
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def office_zones(conn, office_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Office id -> its time zone (every office, or those listed)."""
    q = select(Office.id, Office.timezone)
    if office_ids is not None:
        q = q.where(Office.id.in_(list(office_ids) or [-1]))
    return {o: tz or DEFAULT_TZ for o, tz in sorted(conn.execute(q).all())}  # ascending: builders never deadlock


def _scope_offices(conn, filters: Filters) -> list[int]:
    q = select(ProcessDefinition.office_id).distinct()
    if filters.office_id is not None:
        q = q.where(ProcessDefinition.office_id == filters.office_id)
    if filters.process_key is not None:
        q = q.where(ProcessDefinition.key == filters.process_key)
    return sorted(conn.execute(q).scalars())


def ensure_rollup(session: Session, filters: Filters, now: datetime,
                  offices: Iterable[int] | None = None) -> dict[str, int]:
    """Build the blocks the period of `filters` needs and lacks (the lazy path of the queries).

    In a transaction of its own, committed, so every later request reuses it (on a web
    request's one connection when the session is bound to it); only on SQLite
    when the caller's session already holds a transaction (SQLite has one writer: a second
    connection would wait for the caller) it writes in the caller's transaction."""
    pg = is_pg(session)

    def run(conn) -> dict[str, int]:
        zones = office_zones(conn, sorted(offices) if offices is not None else _scope_offices(conn, filters))
        return _build(conn, final_spans(conn, zones, filters.start, filters.end, now), zones, pg)

    bind = session.get_bind()
    if pg and isinstance(bind, Connection) and bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # a web request's one connection (engine.db.OneConnection) reads in autocommit: the build
        # is its own BEGIN .. COMMIT on that connection (psycopg's transaction block), no second checkout
        with bind.connection.driver_connection.transaction():
            return run(bind)
    if pg or not session.in_transaction():
        with _engine_of(session).begin() as conn:
            return run(conn)
    return run(session.connection())


def build_rollup(engine, now: datetime, office_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Roll up every final day of every office (or of `office_ids`): for the beat tick or a
    deployment step, so that no dashboard request pays for a first build. Returns the number
    of day, month and year blocks built (0 when another process built them)."""
    with engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        zones = office_zones(conn, sorted(office_ids) if office_ids is not None else None)
        return _build(conn, final_spans(conn, zones, None, None, now), zones, pg)
