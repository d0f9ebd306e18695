"""The overview (per SOP step), the regency's per-office totals and the per-officer workload.

Completed figures of past days come from the rollup (completed.py; built when missing);
with `rollup=False` everything is read live from human_task (same figures, slower: the
tests and the benchmark compare both). Duration is `working_minutes`, the working time
from ready to completion in the office calendar, stored by the engine at completion.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from ..models import User, user_group
from .completed import DoneRow, completed_rollup
from .filters import Filters, utc, weeks_in
from .percentiles import by_group, r2
from .rollup import ensure_rollup
from .rows import OfficeRow, OfficerRow, OfficerStep, StepRow, rate
from .scope import (
    Scope, completed_conds, count_if, due_soon, ht, is_pg, late_open, old_step, on_time, open_conds, pv, resolve,
)


def prepare(session: Session, filters: Filters, now: datetime, rollup: bool) -> tuple[datetime, Scope, bool]:
    """What overview() and officers() do first: UTC now, the rollup (SQLite: before this session
    holds the write lock), the office scope, and the PostgreSQL planner settings."""
    now = utc(now)
    pg = is_pg(session)
    if rollup and not pg:
        ensure_rollup(session, filters, now)
    scope = resolve(session, filters)
    if not scope.empty and pg:
        # give this transaction's sorts room: percentile_cont sorts every group's durations,
        # and a sort that spills to disk costs more than the whole query should
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    return now, scope, pg


def overview(session: Session, filters: Filters, now: datetime, *, rollup: bool = True) -> list[StepRow]:
    """One row per (office SOP, step): open now, due soon, late, completed, on-time, median, p90.

    Every step of each SOP's latest version is listed, also with zero activity, so a
    supervisor sees the whole SOP; steps only older versions had are added when they have data.
    """
    now, scope, pg = prepare(session, filters, now, rollup)
    if scope.empty:
        return []
    key_cols = [pv.c.definition_id, ht.c.bpmn_id]
    joined = ht.join(pv, pv.c.id == ht.c.version_id)

    open_rows = session.execute(
        select(*key_cols, func.count().label("n"), count_if(due_soon(now)).label("due_soon"),
               count_if(late_open(now)).label("late"), count_if(ht.c.paused_at.is_not(None)).label("paused"))
        .select_from(joined).where(*open_conds(filters, scope)).group_by(*key_cols)).all()

    if rollup:
        done = completed_rollup(session, filters, scope, now, per_officer=False)
        done_rows = [DoneRow(d, sid, a.completed, a.with_due, a.on_time) for (d, sid), a in done.items()]
        pct = {k: (r2(a.durations.percentile(0.5)), r2(a.durations.percentile(0.9))) for k, a in done.items()}
    else:
        done_conds = completed_conds(filters, scope)
        done_cols = [*key_cols, func.count().label("n"), count_if(ht.c.due_at.is_not(None)).label("with_due"),
                     count_if(on_time()).label("on_time")]
        if pg:  # one scan for counts and percentiles
            done_cols += [func.percentile_cont(0.5).within_group(ht.c.working_minutes).label("p50"),
                          func.percentile_cont(0.9).within_group(ht.c.working_minutes).label("p90")]
        done_rows = session.execute(select(*done_cols).select_from(joined).where(*done_conds)
                                    .group_by(*key_cols)).all()
        if pg:
            pct = {(r.definition_id, r.bpmn_id): (r2(r.p50), r2(r.p90)) for r in done_rows}
        else:
            pct = by_group(session, key_cols, done_conds, (0.5, 0.9))

    weeks = weeks_in(filters)
    cells: dict[tuple[int, str], dict] = {}
    for sop in scope.sops.values():
        for sid, name, minutes in sop.steps:
            if filters.step is None or filters.step == sid:
                cells[(sop.definition_id, sid)] = {"name": name, "mb": minutes}

    def cell(def_id: int, sid: str) -> dict:
        if (def_id, sid) not in cells:
            cells[(def_id, sid)] = old_step(session, scope, def_id, sid)
        return cells[(def_id, sid)]

    for r in open_rows:
        c = cell(r.definition_id, r.bpmn_id)
        c.update(open=r.n, due_soon=int(r.due_soon), late_open=int(r.late), paused=int(r.paused))
    for r in done_rows:
        c = cell(r.definition_id, r.bpmn_id)
        c.update(completed=r.n, with_due=int(r.with_due), on_time=int(r.on_time))

    rows, order = [], {}
    for (def_id, sid), c in cells.items():
        sop = scope.sops[def_id]
        completed, with_due, n_on_time = c.get("completed", 0), c.get("with_due", 0), c.get("on_time", 0)
        p50, p90 = pct.get((def_id, sid), (None, None))
        order[(sop.office_code, sop.name, sop.key, sid)] = sop.position(sid)
        rows.append(StepRow(
            office_id=sop.office_id, office_code=sop.office_code, office_name=sop.office_name,
            process_key=sop.key, process_name=sop.name, step=sid, step_name=c["name"], mutu_baku_minutes=c["mb"],
            open=c.get("open", 0), due_soon=c.get("due_soon", 0), late_open=c.get("late_open", 0),
            paused=c.get("paused", 0), completed=completed, with_due=with_due, on_time=n_on_time,
            late_completed=with_due - n_on_time, on_time_rate=rate(n_on_time, with_due),
            median_minutes=p50, p90_minutes=p90,
            per_week=round(completed / weeks, 2) if weeks else None))
    rows.sort(key=lambda r: (r.office_code, r.process_name, r.process_key,
                             order[(r.office_code, r.process_name, r.process_key, r.step)]))
    return rows


def office_summary(rows: Iterable[StepRow]) -> list[OfficeRow]:
    """The regency view's per-office totals, from overview rows (counts add up; rates are recomputed)."""
    acc: dict[int, dict] = {}
    for r in rows:
        a = acc.setdefault(r.office_id, {"code": r.office_code, "name": r.office_name, "open": 0, "due_soon": 0,
                                         "late_open": 0, "completed": 0, "with_due": 0, "on_time": 0})
        for k in ("open", "due_soon", "late_open", "completed", "with_due", "on_time"):
            a[k] += getattr(r, k)
    return [OfficeRow(oid, a["code"], a["name"], a["open"], a["due_soon"], a["late_open"], a["completed"],
                      a["with_due"], a["on_time"], a["with_due"] - a["on_time"], rate(a["on_time"], a["with_due"]))
            for oid, a in sorted(acc.items(), key=lambda kv: kv[1]["code"])]


def officers(session: Session, filters: Filters, now: datetime, *, rollup: bool = True) -> list[OfficerRow]:
    """Per officer: steps held now (and how many of them are late), completed in the period,
    on-time rate and median working time per step.

    For reading workload fairly, not ranking: rows are in name order, and every lane member
    of the office is listed, also with nothing held or completed.
    """
    now, scope, pg = prepare(session, filters, now, rollup)
    if scope.empty:
        return []

    held = {r.assignee_id: (r.n, int(r.late)) for r in session.execute(
        select(ht.c.assignee_id, func.count().label("n"), count_if(late_open(now)).label("late"))
        .where(*open_conds(filters, scope), ht.c.assignee_id.is_not(None)).group_by(ht.c.assignee_id))}

    if rollup:
        acc = completed_rollup(session, filters, scope, now, per_officer=True)
        done = [DoneRow(d, sid, a.completed, a.with_due, a.on_time, officer)
                for (officer, d, sid), a in acc.items()]
        medians = {k: r2(a.durations.percentile(0.5)) for k, a in acc.items()}
    else:
        keys = [ht.c.completed_by_id, pv.c.definition_id, ht.c.bpmn_id]
        conds = completed_conds(filters, scope)
        cols = [*keys, func.count().label("n"), count_if(ht.c.due_at.is_not(None)).label("with_due"),
                count_if(on_time()).label("on_time")]
        if pg:
            cols.append(func.percentile_cont(0.5).within_group(ht.c.working_minutes).label("p50"))
        done = session.execute(select(*cols).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                               .where(*conds).group_by(*keys)).all()
        medians = ({(r.completed_by_id, r.definition_id, r.bpmn_id): r2(r.p50) for r in done} if pg else
                   {k: v[0] for k, v in by_group(session, keys, conds, (0.5,)).items()})

    per_user: dict[int, list[OfficerStep]] = defaultdict(list)
    for r in done:
        sop = scope.sops[r.definition_id]
        info = sop.step_info(r.bpmn_id) or (r.bpmn_id, None)
        per_user[r.completed_by_id].append(OfficerStep(
            sop.key, sop.name, sop.office_id, r.bpmn_id, info[0], info[1], r.n, int(r.with_due), int(r.on_time),
            rate(int(r.on_time), int(r.with_due)), medians.get((r.completed_by_id, r.definition_id, r.bpmn_id))))

    # who is listed: lane members of the offices in scope, plus anyone with work in scope
    office_ids = set(scope.office_ids)
    uq = select(User).where(or_(
        and_(User.office_id.in_(office_ids), User.active.is_(True),
             User.id.in_(select(user_group.c.user_id))),
        User.id.in_(list(set(held) | set(per_user)) or [-1])))
    if filters.officer_id is not None:
        uq = uq.where(User.id == filters.officer_id)
    users = session.scalars(uq).all()
    codes = {s.office_id: s.office_code for s in scope.sops.values()}
    positions = {(s.key, s.office_id): s for s in scope.sops.values()}

    rows = []
    for u in users:
        steps = sorted(per_user.get(u.id, []), key=lambda s: (s.process_name, positions[(s.process_key, s.office_id)]
                                                              .position(s.step)))
        n_held, n_late = held.get(u.id, (0, 0))
        completed = sum(s.completed for s in steps)
        with_due = sum(s.with_due for s in steps)
        n_on_time = sum(s.on_time for s in steps)
        rows.append(OfficerRow(u.id, u.full_name, u.office_id, codes.get(u.office_id, ""), n_held, n_late,
                               completed, with_due, n_on_time, rate(n_on_time, with_due), tuple(steps)))
    rows.sort(key=lambda r: (r.office_code, r.full_name.casefold(), r.user_id))
    return rows
