"""Patterns over time: completed steps per ISO week, late steps per weekday, TIDAK returns.

Weeks are ISO weeks (Monday start) and weekdays are taken in each office's own time zone.
Rework: an instance whose entry step (each version's own first step, whatever its id)
became ready again was sent back by a TIDAK decision; every such repeat is one return.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.orm import Session

from .filters import Filters, utc
from .rollup import as_date
from .rows import HeatRow, ReworkRow, WeekRow, rate
from .scope import (
    completed_conds, count_if, entry_rows, ht, in_period, is_pg, late_conds, on_time, pi, pv, resolve,
)
from .zones import DEFAULT_TZ, local_day


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def trends(session: Session, filters: Filters, now: datetime) -> list[WeekRow]:
    """Per ISO week of the period: completed steps, on-time rate, instances started and
    completed (the throughput). Weeks without activity are included as zeros.

    Grouped per local day in SQL (few rows whatever the volume), then summed per week here.
    Instances follow the office and SOP filters only (a step or officer has no instances).
    """
    now = utc(now)
    scope = resolve(session, filters)
    if scope.empty:
        return []
    pg = is_pg(session)
    day = scope.zones.local_date(ht.c.completed_at, ht.c.office_id, pg).label("day")
    steps = session.execute(
        select(day, func.count().label("n"), count_if(ht.c.due_at.is_not(None)).label("with_due"),
               count_if(on_time()).label("on_time"))
        .where(*completed_conds(filters, scope)).group_by(day)).all()

    inst_conds = [pi.c.version_id.in_(list(scope.version_def) or [-1])]
    if filters.office_id is not None:
        inst_conds.append(pi.c.office_id == filters.office_id)

    def inst_by_day(col, *extra):
        d = scope.zones.local_date(col, pi.c.office_id, pg).label("day")
        conds = [*inst_conds, *extra, *in_period(col, filters, scope, pi.c.office_id)]
        return {as_date(r.day): r.n for r in session.execute(
            select(d, func.count().label("n")).where(*conds).group_by(d))}

    started = inst_by_day(pi.c.started_at)
    finished = inst_by_day(pi.c.completed_at, pi.c.status == "completed")

    acc: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for r in steps:
        a = acc[_monday(as_date(r.day))]
        a[0] += r.n
        a[1] += int(r.with_due)
        a[2] += int(r.on_time)
    for d, n in started.items():
        acc[_monday(d)][3] += n
    for d, n in finished.items():
        acc[_monday(d)][4] += n

    first = _monday(filters.start) if filters.start else (min(acc) if acc else None)
    last = _monday(filters.end or local_day(now, scope.zones.single or DEFAULT_TZ))
    if first is None:
        return []
    rows = []
    week = first
    while week <= last:
        n, with_due, n_on_time, st, fin = acc.get(week, [0, 0, 0, 0, 0])
        iso = week.isocalendar()
        rows.append(WeekRow(week, f"{iso.year}-W{iso.week:02d}", n, with_due, n_on_time, with_due - n_on_time,
                            rate(n_on_time, with_due), st, fin))
        week += timedelta(weeks=1)
    return rows


def late_heatmap(session: Session, filters: Filters, now: datetime) -> list[HeatRow]:
    """Late steps per (SOP step, weekday of the due time, office-local) whose due time is in
    the period: steps completed after their due time and steps still open past it."""
    now = utc(now)
    scope = resolve(session, filters)
    if scope.empty:
        return []
    wd = scope.zones.local_weekday(ht.c.due_at, ht.c.office_id, is_pg(session)).label("wd")
    keys = [pv.c.definition_id, ht.c.bpmn_id]
    data = session.execute(select(*keys, wd, func.count().label("n"))
                           .select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                           .where(*scope.conds, *late_conds(filters, scope, now)).group_by(*keys, wd)).all()
    cells: dict[tuple[int, str], list[int]] = {}
    for sop in scope.sops.values():
        for sid, _, _ in sop.steps:
            if filters.step is None or filters.step == sid:
                cells[(sop.definition_id, sid)] = [0] * 7
    for r in data:
        cells.setdefault((r.definition_id, r.bpmn_id), [0] * 7)[int(r.wd)] += r.n
    keyed = []
    for (def_id, sid), counts in cells.items():
        sop = scope.sops[def_id]
        name = (sop.step_info(sid) or (sid, None))[0]
        keyed.append(((sop.office_code, sop.name, sop.key, sop.position(sid)),
                      HeatRow(sop.office_id, sop.office_code, sop.key, sop.name, sid, name, tuple(counts))))
    return [row for _, row in sorted(keyed, key=lambda kv: kv[0])]


def rework(session: Session, filters: Filters, now: datetime) -> list[ReworkRow]:
    """TIDAK returns per SOP: how often the entry step became ready again, in the period.

    The step and officer filters do not apply (a return belongs to the instance).
    """
    scope = resolve(session, filters)
    if scope.empty:
        return []
    s = entry_rows(filters, scope)
    period = and_(true(), *in_period(s.c.ready_at, filters, scope, s.c.office_id))
    data = {r.definition_id: r for r in session.execute(
        select(s.c.definition_id,
               count_if(and_(s.c.rn == 1, period)).label("started"),
               count_if(and_(s.c.rn > 1, period)).label("returns"),
               func.count(func.distinct(case((and_(s.c.rn > 1, period), s.c.instance_id)))).label("returned"))
        .group_by(s.c.definition_id))}
    rows = []
    for sop in scope.sops.values():
        r = data.get(sop.definition_id)
        started, returns, returned = (int(r.started), int(r.returns), int(r.returned)) if r else (0, 0, 0)
        rows.append(ReworkRow(sop.office_id, sop.office_code, sop.key, sop.name, started, returns, returned,
                              rate(returned, started)))
    return rows
