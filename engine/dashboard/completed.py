"""Completed-step figures of a period: rollup blocks for the final days, live rows for the rest.

The read side of rollup.py. Counts add up across blocks; durations merge as (value, count)
pairs, so medians and p90 equal the live computation on the same data exactly.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import LargeBinary, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from .filters import Filters
from .percentiles import Durations, centi
from .rollup import coverage, ensure_rollup, final_spans, officer_blk, ranges, rollup_cutoff, step_blk
from .scope import Scope, count_if, filter_conds, ht, is_pg, late_completed, on_time
from .zones import day_bounds


@dataclass(frozen=True)
class DoneRow:
    """A completed-figures row shaped like the live query's, so both paths share the assembly."""

    definition_id: int
    bpmn_id: str
    n: int
    with_due: int
    on_time: int
    completed_by_id: int | None = None


@dataclass
class Done:
    """Completed-step figures of one group (step, or officer and step) over a period."""

    completed: int = 0
    with_due: int = 0
    on_time: int = 0
    late: int = 0
    durations: Durations = field(default_factory=Durations)


def completed_rollup(session: Session, filters: Filters, scope: Scope, now: datetime,
                     per_officer: bool) -> dict[tuple, Done]:
    """Completed-step figures of the period per (definition, step) or (officer, definition, step):
    built blocks for the final days, human_task live for the rest. Same figures as the live path."""
    pg = is_pg(session)
    officer_rows = per_officer or filters.officer_id is not None
    table = officer_blk if officer_rows else step_blk
    zones = {o: scope.zones.of(o) for o in scope.office_ids}
    spans = final_spans(session, zones, filters.start, filters.end, now)
    cover = coverage(session, spans)
    missing = [o for o, (_, gaps, better) in cover.items() if gaps or better]
    if missing and pg:  # lazily build what this period lacks (SQLite built it before the session began)
        ensure_rollup(session, filters, now, missing)
        cover.update(coverage(session, {o: spans[o] for o in missing}))

    # live day ranges per office: final days not built, then everything from the cutoff on
    plans: dict[tuple, list[int]] = defaultdict(list)  # (blocks, live ranges, zone) -> offices
    for o, tz in zones.items():
        blocks, gaps, _ = cover.get(o, ([], [], False))
        live: list[tuple[date, date | None]] = list(ranges(gaps))
        cutoff = rollup_cutoff(now, tz)
        tail = cutoff if filters.start is None else max(filters.start, cutoff)
        if filters.end is None or tail <= filters.end:
            live.append((tail, filters.end))
        plans[(tuple(blocks), tuple(live), tz)].append(o)

    acc: dict[tuple, Done] = defaultdict(Done)

    def key(officer, version, step):
        d = scope.version_def.get(version)
        return None if d is None else ((officer, d, step) if per_officer else (d, step))

    for (blocks, live, tz), office_ids in plans.items():
        if blocks:
            by_span: dict[str, list[date]] = defaultdict(list)
            for span, d in blocks:
                by_span[span].append(d)
            spans_or = []
            for span, ds in by_span.items():
                if span == "d":
                    spans_or += [and_(table.c.span == "d", table.c.day.between(a, b)) for a, b in ranges(ds)]
                else:
                    spans_or.append(and_(table.c.span == span, table.c.day.in_(ds)))
            conds = [table.c.office_id.in_(office_ids), or_(*spans_or),
                     *filter_conds(filters, scope, table.c.version_id, table.c.bpmn_id,
                                   table.c.officer_id if officer_rows else None)]
            if pg:  # the day blocks of a group concatenated into one row; months and years one row each
                bday = case((table.c.span == "d", None), else_=table.c.day).label("bday")
                keys = [table.c.span, bday, table.c.version_id, table.c.bpmn_id]
                if per_officer:
                    keys.append(table.c.officer_id)
                q = (select(*keys, *[func.sum(table.c[c]).label(c) for c in ("completed", "with_due", "on_time",
                                                                              "late")],
                            func.string_agg(table.c.durations, literal(b"", LargeBinary)).label("durations"))
                     .where(*conds).group_by(*keys))
            else:
                q = select(table).where(*conds)
            for r in session.execute(q):
                k = key(r.officer_id if per_officer else None, r.version_id, r.bpmn_id)
                if k is None:
                    continue
                a = acc[k]
                a.completed += int(r.completed)
                a.with_due += int(r.with_due)
                a.on_time += int(r.on_time)
                a.late += int(r.late)
                a.durations.add_blob(r.durations, big=r.span != "d")
        if live:
            windows = []
            for a, b in live:
                lo, hi = day_bounds(a, b, tz)
                windows.append(and_(ht.c.completed_at >= lo, *([ht.c.completed_at < hi] if hi is not None else [])))
            conds = [ht.c.state == "completed", ht.c.office_id.in_(office_ids), or_(*windows),
                     *filter_conds(filters, scope, ht.c.version_id, ht.c.bpmn_id, ht.c.completed_by_id)]
            if per_officer:
                conds.append(ht.c.completed_by_id.is_not(None))
            keys = [ht.c.version_id, ht.c.bpmn_id, *([ht.c.completed_by_id] if per_officer else []),
                    ht.c.working_minutes]
            for r in session.execute(
                    select(*keys, func.count().label("n"), count_if(ht.c.due_at.is_not(None)).label("with_due"),
                           count_if(on_time()).label("on_time"), count_if(late_completed()).label("late"))
                    .where(*conds).group_by(*keys)):
                k = key(r.completed_by_id if per_officer else None, r.version_id, r.bpmn_id)
                if k is None:
                    continue
                a = acc[k]
                a.completed += r.n
                a.with_due += int(r.with_due)
                a.on_time += int(r.on_time)
                a.late += int(r.late)
                if r.working_minutes is not None:
                    a.durations.add(centi(r.working_minutes), r.n)
    return acc
