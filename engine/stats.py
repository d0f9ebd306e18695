"""The supervisor SLA dashboard's figures, computed from `human_task`.

Every number the dashboard shows, drills into or exports comes from the functions here,
so the screen, the CSV and the XLSX can never disagree (the web layer renders and exports
the same `Table`). No Flask here: the CLI, tests and the benchmark call it directly.

Definitions (documented once, used everywhere):

* Period: `Filters.start`/`end` are calendar dates in WIB (Asia/Jakarta), both inclusive.
  Completed figures count steps whose `completed_at` falls in the period; "open now",
  "due within the hour", "late" and "held" are a snapshot at `now` and ignore the period.
* Duration: `working_minutes`, the working time from ready to completion in the office
  calendar, stored by the engine at completion with the same calendar as due times and
  reminders.
* On time: `completed_at <= due_at`. Steps without a due time (no Mutu Baku) are left out
  of the on-time rate's denominator. The rate is `None` when nothing can be rated.
* Median and p90: continuous percentiles with linear interpolation between the closest
  ranks, i.e. PostgreSQL's `percentile_cont`: for sorted values v[0..n-1] and fraction p,
  pos = p*(n-1), result = v[floor(pos)] + (v[ceil(pos)] - v[floor(pos)]) * (pos - floor(pos)).
  PostgreSQL computes it in SQL (1M rows stay fast); SQLite has no percentile function,
  so its durations are fetched and `percentile()` below does the same arithmetic.
  Both are rounded to 2 decimals so the two backends give identical numbers.
* Due within the hour: open, not paused, now <= due_at < now + 1 wall-clock hour.
  Late (open): not paused and due_at < now. Paused steps count as open only.
* Weeks are ISO weeks (Monday start) and weekdays are taken in WIB, the zone of every
  Bantul office. WIB has had no daylight saving since 1964, so SQLite can use a fixed
  +7 hours; PostgreSQL uses the zone name.
* Rework: an instance whose entry step (`step1`) became ready again was sent back by a
  TIDAK decision; every such repeat is one return.

Office isolation is the caller's job only in choosing `Filters.office_id` (the user's own
office for a supervisor); every query here applies it as a server-side WHERE.
"""
from __future__ import annotations

import math
import re
import sys
from array import array
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from itertools import accumulate
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column, Date, DateTime, ForeignKey, ForeignKeyConstraint, Integer, LargeBinary, String, Table, and_, case, cast,
    extract, func, insert, or_, select, text, true, tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .models import (
    Base, HumanTask, Office, ProcessDefinition, ProcessInstance, ProcessVersion, User, user_group,
)

TZ_NAME = "Asia/Jakarta"
WIB = ZoneInfo(TZ_NAME)
WIB_OFFSET_HOURS = 7  # fixed: no DST in Indonesia
ENTRY_STEP = "step1"  # a TIDAK returns the instance here (both SOPs)
DUE_SOON = timedelta(hours=1)
DRILL_LIMIT = 500

ht = HumanTask.__table__
pv = ProcessVersion.__table__
pi = ProcessInstance.__table__

FIGURES = ("open", "due_soon", "late_open", "paused", "completed", "on_time", "late_completed",
           "late", "returns")


# ---- inputs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What the supervisor narrowed the dashboard to; None means "no restriction"."""

    office_id: int | None = None
    start: date | None = None
    end: date | None = None
    process_key: str | None = None
    step: str | None = None
    officer_id: int | None = None

    def narrowed(self, **changes: Any) -> "Filters":
        return replace(self, **changes)


def default_period(now: datetime, weeks: int = 12) -> tuple[date, date]:
    """The last `weeks` ISO weeks up to today (WIB), the dashboard's default period."""
    today = now.astimezone(WIB).date()
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(weeks=weeks - 1), today


def period_bounds(filters: Filters) -> tuple[datetime | None, datetime | None]:
    """[lo, hi) in UTC for the WIB dates of the period."""
    lo = hi = None
    if filters.start is not None:
        lo = datetime.combine(filters.start, time(0), WIB).astimezone(timezone.utc)
    if filters.end is not None:
        hi = datetime.combine(filters.end + timedelta(days=1), time(0), WIB).astimezone(timezone.utc)
    return lo, hi


# ---- outputs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sop:
    """A process definition (an office's SOP) with its latest version's steps in order."""

    definition_id: int
    office_id: int
    office_code: str
    office_name: str
    key: str
    name: str
    steps: tuple[tuple[str, str, float | None], ...]  # (bpmn_id, name, mutu_baku_minutes)

    def step_info(self, bpmn_id: str) -> tuple[str, float | None] | None:
        for sid, name, minutes in self.steps:
            if sid == bpmn_id:
                return name, minutes
        return None


@dataclass(frozen=True)
class StepRow:
    """One line of the overview: one step of one SOP of one office."""

    office_id: int
    office_code: str
    office_name: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    mutu_baku_minutes: float | None
    open: int = 0
    due_soon: int = 0
    late_open: int = 0
    paused: int = 0
    completed: int = 0
    with_due: int = 0
    on_time: int = 0
    late_completed: int = 0
    on_time_rate: float | None = None
    median_minutes: float | None = None
    p90_minutes: float | None = None
    per_week: float | None = None


@dataclass(frozen=True)
class OfficeRow:
    """Regency view: one office's totals (sums of its StepRows; rates recomputed from counts)."""

    office_id: int
    office_code: str
    office_name: str
    open: int
    due_soon: int
    late_open: int
    completed: int
    with_due: int
    on_time: int
    late_completed: int
    on_time_rate: float | None


@dataclass(frozen=True)
class OfficerStep:
    process_key: str
    process_name: str
    office_id: int
    step: str
    step_name: str
    mutu_baku_minutes: float | None
    completed: int
    with_due: int
    on_time: int
    on_time_rate: float | None
    median_minutes: float | None


@dataclass(frozen=True)
class OfficerRow:
    """Workload of one officer: what they hold now and what they completed in the period."""

    user_id: int
    full_name: str
    office_id: int | None
    office_code: str
    held: int
    held_late: int
    completed: int
    with_due: int
    on_time: int
    on_time_rate: float | None
    steps: tuple[OfficerStep, ...] = ()


@dataclass(frozen=True)
class WeekRow:
    week_start: date  # the Monday (WIB)
    label: str  # ISO week, e.g. 2026-W05
    completed: int
    with_due: int
    on_time: int
    late_completed: int
    on_time_rate: float | None
    instances_started: int
    instances_completed: int


@dataclass(frozen=True)
class HeatRow:
    """Late steps of one SOP step by weekday (Mon..Sun) of their due time in WIB."""

    office_id: int
    office_code: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    by_weekday: tuple[int, int, int, int, int, int, int]

    @property
    def total(self) -> int:
        return sum(self.by_weekday)


@dataclass(frozen=True)
class ReworkRow:
    office_id: int
    office_code: str
    process_key: str
    process_name: str
    started: int  # instances whose entry step first became ready in the period
    returns: int  # TIDAK returns (repeats of the entry step) in the period
    instances_returned: int  # distinct instances with at least one return in the period
    return_rate: float | None  # instances_returned / started


@dataclass(frozen=True)
class DrillRow:
    task_id: int
    instance_id: int
    subject: str
    instance_status: str
    office_code: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    state: str
    person: str | None  # who completed it, or who holds it
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    working_minutes: float | None
    mutu_baku_minutes: float | None
    late: bool
    paused: bool


@dataclass(frozen=True)
class DrillResult:
    rows: list[DrillRow]
    total: int  # rows behind the figure; `rows` holds at most DRILL_LIMIT of them
    figure: str


# ---- small pure helpers --------------------------------------------------------------------

def percentile(values: Iterable[float], p: float) -> float | None:
    """Continuous percentile with linear interpolation (PostgreSQL percentile_cont)."""
    v = sorted(values)
    if not v:
        return None
    pos = p * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _r2(x: float | None) -> float | None:
    return None if x is None else round(float(x), 2)


def rate(good: int, total: int) -> float | None:
    return good / total if total else None


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _step_order(bpmn_id: str) -> tuple:
    """step2 before step10: natural order of the ids."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", bpmn_id))


def _count_if(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _local_date(col, pg: bool):
    if pg:
        return cast(func.timezone(TZ_NAME, col), Date)
    return func.date(col, f"+{WIB_OFFSET_HOURS} hours")


def _local_weekday(col, pg: bool):
    """0 = Monday .. 6 = Sunday, in WIB."""
    if pg:
        return cast(extract("isodow", func.timezone(TZ_NAME, col)), Integer) - 1
    return (cast(func.strftime("%w", col, f"+{WIB_OFFSET_HOURS} hours"), Integer) + 6) % 7


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


# ---- scope ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Scope:
    """The SOPs in scope and the WHERE clauses every task query shares."""

    sops: dict[int, Sop]  # definition_id -> Sop
    version_def: dict[int, int]  # version_id -> definition_id
    conds: tuple = field(default=())

    @property
    def empty(self) -> bool:
        return not self.sops


def _scope(session: Session, filters: Filters) -> _Scope:
    """Resolve offices/SOPs (small tables) once, so the big queries need no joins to them."""
    q = (select(ProcessDefinition, Office).join(Office, Office.id == ProcessDefinition.office_id)
         .order_by(Office.code, ProcessDefinition.name, ProcessDefinition.id))
    if filters.office_id is not None:
        q = q.where(ProcessDefinition.office_id == filters.office_id)
    if filters.process_key is not None:
        q = q.where(ProcessDefinition.key == filters.process_key)
    defs = session.execute(q).all()
    sops: dict[int, Sop] = {}
    version_def: dict[int, int] = {}
    if defs:
        ids = [d.id for d, _ in defs]
        versions = session.execute(select(ProcessVersion.id, ProcessVersion.definition_id)
                                   .where(ProcessVersion.definition_id.in_(ids))).all()
        version_def = {v.id: v.definition_id for v in versions}
        latest_ids = [d.latest_version_id for d, _ in defs if d.latest_version_id]
        latest_steps = dict(session.execute(select(ProcessVersion.id, ProcessVersion.steps)
                                            .where(ProcessVersion.id.in_(latest_ids))).all()) if latest_ids else {}
        for d, office in defs:
            steps = latest_steps.get(d.latest_version_id) or {}
            ordered = sorted(steps.items(), key=lambda kv: (kv[1].get("no") or 0, _step_order(kv[0])))
            sops[d.id] = Sop(d.id, office.id, office.code, office.name, d.key, d.name,
                             tuple((sid, s.get("name") or sid, s.get("mutu_baku_minutes")) for sid, s in ordered))
    conds = []
    if filters.office_id is not None:
        conds.append(ht.c.office_id == filters.office_id)
    else:  # regency view: listing the offices lets PostgreSQL use the (office_id, ...) indexes
        conds.append(ht.c.office_id.in_(sorted({s.office_id for s in sops.values()}) or [-1]))
    if filters.process_key is not None:
        conds.append(ht.c.version_id.in_(list(version_def) or [-1]))
    if filters.step is not None:
        conds.append(ht.c.bpmn_id == filters.step)
    return _Scope(sops, version_def, tuple(conds))


def _completed_conds(filters: Filters, scope: _Scope) -> list:
    lo, hi = period_bounds(filters)
    conds = [ht.c.state == "completed", *scope.conds]
    if lo is not None:
        conds.append(ht.c.completed_at >= lo)
    if hi is not None:
        conds.append(ht.c.completed_at < hi)
    if filters.officer_id is not None:
        conds.append(ht.c.completed_by_id == filters.officer_id)
    return conds


def _open_conds(filters: Filters, scope: _Scope) -> list:
    conds = [ht.c.state == "ready", *scope.conds]
    if filters.officer_id is not None:
        conds.append(ht.c.assignee_id == filters.officer_id)
    return conds


def _late_open(now: datetime):
    return and_(ht.c.paused_at.is_(None), ht.c.due_at < now)


def _due_soon(now: datetime):
    return and_(ht.c.paused_at.is_(None), ht.c.due_at >= now, ht.c.due_at < now + DUE_SOON)


def _on_time():
    return ht.c.completed_at <= ht.c.due_at


def _percentiles(session: Session, keys: list, conds: list, ps: tuple[float, ...]) -> dict[tuple, tuple]:
    """Percentiles of working_minutes per group: in SQL on PostgreSQL, in Python elsewhere."""
    if _is_pg(session):
        cols = [func.percentile_cont(p).within_group(ht.c.working_minutes) for p in ps]
        rows = session.execute(select(*keys, *cols).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                               .where(*conds).group_by(*keys)).all()
        return {tuple(r[:len(keys)]): tuple(_r2(x) for x in r[len(keys):]) for r in rows}
    values: dict[tuple, list[float]] = defaultdict(list)
    for r in session.execute(select(*keys, ht.c.working_minutes).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                             .where(*conds, ht.c.working_minutes.is_not(None))):
        values[tuple(r[:len(keys)])].append(r[-1])
    return {k: tuple(_r2(percentile(v, p)) for p in ps) for k, v in values.items()}


def _old_step(session: Session, scope: _Scope, definition_id: int, bpmn_id: str) -> dict:
    """Name and Mutu Baku of a step the latest version no longer has (rare: read the older versions)."""
    versions = [v for v, d in scope.version_def.items() if d == definition_id]
    for steps in session.scalars(select(ProcessVersion.steps).where(ProcessVersion.id.in_(versions))
                                 .order_by(ProcessVersion.version.desc())):
        if bpmn_id in (steps or {}):
            return {"name": steps[bpmn_id].get("name") or bpmn_id, "mb": steps[bpmn_id].get("mutu_baku_minutes")}
    return {"name": bpmn_id, "mb": None}


def _tune(session: Session) -> None:
    """On PostgreSQL give this transaction's sorts room: percentile_cont sorts every group's
    durations, and a sort that spills to disk costs more than the whole query should."""
    if _is_pg(session):
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def _weeks_in(filters: Filters) -> float | None:
    if filters.start is None or filters.end is None or filters.end < filters.start:
        return None
    return ((filters.end - filters.start).days + 1) / 7


# ---- 1. overview ---------------------------------------------------------------------------

def overview(session: Session, filters: Filters, now: datetime) -> list[StepRow]:
    """One row per (office SOP, step): open now, due soon, late, completed, on-time, median, p90.

    Every step of each SOP's latest version is listed, also with zero activity, so a
    supervisor sees the whole SOP; steps only older versions had are added when they have data.
    """
    now = _utc(now)
    scope = _scope(session, filters)
    if scope.empty:
        return []
    pg = _is_pg(session)
    _tune(session)
    key_cols = [pv.c.definition_id, ht.c.bpmn_id]
    joined = ht.join(pv, pv.c.id == ht.c.version_id)

    open_rows = session.execute(
        select(*key_cols, func.count().label("n"), _count_if(_due_soon(now)).label("due_soon"),
               _count_if(_late_open(now)).label("late"), _count_if(ht.c.paused_at.is_not(None)).label("paused"))
        .select_from(joined).where(*_open_conds(filters, scope)).group_by(*key_cols)).all()

    done_conds = _completed_conds(filters, scope)
    done_cols = [*key_cols, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
                 _count_if(_on_time()).label("on_time")]
    if pg:  # one scan for counts and percentiles
        done_cols += [func.percentile_cont(0.5).within_group(ht.c.working_minutes).label("p50"),
                      func.percentile_cont(0.9).within_group(ht.c.working_minutes).label("p90")]
    done_rows = session.execute(select(*done_cols).select_from(joined).where(*done_conds).group_by(*key_cols)).all()
    if pg:
        pct = {(r.definition_id, r.bpmn_id): (_r2(r.p50), _r2(r.p90)) for r in done_rows}
    else:
        pct = _percentiles(session, key_cols, done_conds, (0.5, 0.9))

    weeks = _weeks_in(filters)
    cells: dict[tuple[int, str], dict] = {}
    for sop in scope.sops.values():
        for sid, name, minutes in sop.steps:
            if filters.step is None or filters.step == sid:
                cells[(sop.definition_id, sid)] = {"name": name, "mb": minutes}
    for r in open_rows:
        c = cells.setdefault((r.definition_id, r.bpmn_id), _old_step(session, scope, r.definition_id, r.bpmn_id))
        c.update(open=r.n, due_soon=int(r.due_soon), late_open=int(r.late), paused=int(r.paused))
    for r in done_rows:
        c = cells.setdefault((r.definition_id, r.bpmn_id), _old_step(session, scope, r.definition_id, r.bpmn_id))
        c.update(completed=r.n, with_due=int(r.with_due), on_time=int(r.on_time))

    rows = []
    for (def_id, sid), c in cells.items():
        sop = scope.sops[def_id]
        completed, with_due, on_time = c.get("completed", 0), c.get("with_due", 0), c.get("on_time", 0)
        p50, p90 = pct.get((def_id, sid), (None, None))
        rows.append(StepRow(
            office_id=sop.office_id, office_code=sop.office_code, office_name=sop.office_name,
            process_key=sop.key, process_name=sop.name, step=sid, step_name=c["name"], mutu_baku_minutes=c["mb"],
            open=c.get("open", 0), due_soon=c.get("due_soon", 0), late_open=c.get("late_open", 0),
            paused=c.get("paused", 0), completed=completed, with_due=with_due, on_time=on_time,
            late_completed=with_due - on_time, on_time_rate=rate(on_time, with_due),
            median_minutes=p50, p90_minutes=p90,
            per_week=round(completed / weeks, 2) if weeks else None))
    rows.sort(key=lambda r: (r.office_code, r.process_name, r.process_key, _step_order(r.step)))
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


# ---- 3. per officer ------------------------------------------------------------------------

def officers(session: Session, filters: Filters, now: datetime) -> list[OfficerRow]:
    """Per officer: steps held now (and how many of them are late), completed in the period,
    on-time rate and median working time per step.

    For reading workload fairly, not ranking: rows are in name order, and every lane member
    of the office is listed, also with nothing held or completed.
    """
    now = _utc(now)
    scope = _scope(session, filters)
    if scope.empty:
        return []
    pg = _is_pg(session)
    _tune(session)

    held = {r.assignee_id: (r.n, int(r.late)) for r in session.execute(
        select(ht.c.assignee_id, func.count().label("n"), _count_if(_late_open(now)).label("late"))
        .where(*_open_conds(filters, scope), ht.c.assignee_id.is_not(None)).group_by(ht.c.assignee_id))}

    keys = [ht.c.completed_by_id, pv.c.definition_id, ht.c.bpmn_id]
    conds = _completed_conds(filters, scope)
    cols = [*keys, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
            _count_if(_on_time()).label("on_time")]
    if pg:
        cols.append(func.percentile_cont(0.5).within_group(ht.c.working_minutes).label("p50"))
    done = session.execute(select(*cols).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                           .where(*conds).group_by(*keys)).all()
    medians = ({(r.completed_by_id, r.definition_id, r.bpmn_id): _r2(r.p50) for r in done} if pg else
               {k: v[0] for k, v in _percentiles(session, keys, conds, (0.5,)).items()})

    per_user: dict[int, list[OfficerStep]] = defaultdict(list)
    for r in done:
        sop = scope.sops[r.definition_id]
        info = sop.step_info(r.bpmn_id) or (r.bpmn_id, None)
        per_user[r.completed_by_id].append(OfficerStep(
            sop.key, sop.name, sop.office_id, r.bpmn_id, info[0], info[1], r.n, int(r.with_due), int(r.on_time),
            rate(int(r.on_time), int(r.with_due)), medians.get((r.completed_by_id, r.definition_id, r.bpmn_id))))

    # who is listed: lane members of the offices in scope, plus anyone with work in scope
    office_ids = {s.office_id for s in scope.sops.values()}
    uq = select(User).where(or_(
        and_(User.office_id.in_(office_ids), User.active.is_(True),
             User.id.in_(select(user_group.c.user_id))),
        User.id.in_(list(set(held) | set(per_user)) or [-1])))
    if filters.officer_id is not None:
        uq = uq.where(User.id == filters.officer_id)
    users = session.scalars(uq).all()
    codes = {s.office_id: s.office_code for s in scope.sops.values()}

    rows = []
    for u in users:
        steps = sorted(per_user.get(u.id, []), key=lambda s: (s.process_name, _step_order(s.step)))
        n_held, n_late = held.get(u.id, (0, 0))
        completed = sum(s.completed for s in steps)
        with_due = sum(s.with_due for s in steps)
        on_time = sum(s.on_time for s in steps)
        rows.append(OfficerRow(u.id, u.full_name, u.office_id, codes.get(u.office_id, ""), n_held, n_late,
                               completed, with_due, on_time, rate(on_time, with_due), tuple(steps)))
    rows.sort(key=lambda r: (r.office_code, r.full_name.casefold(), r.user_id))
    return rows


# ---- 4. trends -----------------------------------------------------------------------------

def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def trends(session: Session, filters: Filters, now: datetime) -> list[WeekRow]:
    """Per ISO week (WIB) of the period: completed steps, on-time rate, instances started and
    completed (the throughput). Weeks without activity are included as zeros.

    Grouped per local day in SQL (few rows whatever the volume), then summed per week here.
    Instances follow the office and SOP filters only (a step or officer has no instances).
    """
    now = _utc(now)
    scope = _scope(session, filters)
    if scope.empty:
        return []
    pg = _is_pg(session)
    day = _local_date(ht.c.completed_at, pg).label("day")
    steps = session.execute(
        select(day, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
               _count_if(_on_time()).label("on_time"))
        .where(*_completed_conds(filters, scope)).group_by(day)).all()

    lo, hi = period_bounds(filters)
    inst_conds = [pi.c.version_id.in_(list(scope.version_def) or [-1])]
    if filters.office_id is not None:
        inst_conds.append(pi.c.office_id == filters.office_id)

    def inst_by_day(col, *extra):
        d = _local_date(col, pg).label("day")
        conds = [*inst_conds, *extra]
        if lo is not None:
            conds.append(col >= lo)
        if hi is not None:
            conds.append(col < hi)
        return {_as_date(r.day): r.n for r in session.execute(
            select(d, func.count().label("n")).where(*conds).group_by(d))}

    started = inst_by_day(pi.c.started_at)
    finished = inst_by_day(pi.c.completed_at, pi.c.status == "completed")

    acc: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for r in steps:
        a = acc[_monday(_as_date(r.day))]
        a[0] += r.n
        a[1] += int(r.with_due)
        a[2] += int(r.on_time)
    for d, n in started.items():
        acc[_monday(d)][3] += n
    for d, n in finished.items():
        acc[_monday(d)][4] += n

    first = _monday(filters.start) if filters.start else (min(acc) if acc else None)
    last = _monday(filters.end or now.astimezone(WIB).date())
    if first is None:
        return []
    rows = []
    week = first
    while week <= last:
        n, with_due, on_time, st, fin = acc.get(week, [0, 0, 0, 0, 0])
        iso = week.isocalendar()
        rows.append(WeekRow(week, f"{iso.year}-W{iso.week:02d}", n, with_due, on_time, with_due - on_time,
                            rate(on_time, with_due), st, fin))
        week += timedelta(weeks=1)
    return rows


def _late_cond(filters: Filters, now: datetime):
    """A step that missed its due time: completed after it, or still open past it (not paused)."""
    done_late = and_(ht.c.state == "completed", ht.c.completed_at > ht.c.due_at)
    open_late = and_(ht.c.state == "ready", _late_open(now))
    if filters.officer_id is not None:
        done_late = and_(done_late, ht.c.completed_by_id == filters.officer_id)
        open_late = and_(open_late, ht.c.assignee_id == filters.officer_id)
    lo, hi = period_bounds(filters)
    conds = [or_(done_late, open_late)]
    if lo is not None:
        conds.append(ht.c.due_at >= lo)
    if hi is not None:
        conds.append(ht.c.due_at < hi)
    return conds


def late_heatmap(session: Session, filters: Filters, now: datetime) -> list[HeatRow]:
    """Late steps per (SOP step, weekday of the due time in WIB) whose due time is in the period.

    Counts steps completed after their due time and steps still open past it.
    """
    now = _utc(now)
    scope = _scope(session, filters)
    if scope.empty:
        return []
    wd = _local_weekday(ht.c.due_at, _is_pg(session)).label("wd")
    keys = [pv.c.definition_id, ht.c.bpmn_id]
    data = session.execute(select(*keys, wd, func.count().label("n"))
                           .select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                           .where(*scope.conds, *_late_cond(filters, now)).group_by(*keys, wd)).all()
    cells: dict[tuple[int, str], list[int]] = {}
    for sop in scope.sops.values():
        for sid, _, _ in sop.steps:
            if filters.step is None or filters.step == sid:
                cells[(sop.definition_id, sid)] = [0] * 7
    for r in data:
        cells.setdefault((r.definition_id, r.bpmn_id), [0] * 7)[int(r.wd)] += r.n
    rows = []
    for (def_id, sid), counts in cells.items():
        sop = scope.sops[def_id]
        name = (sop.step_info(sid) or (sid, None))[0]
        rows.append(HeatRow(sop.office_id, sop.office_code, sop.key, sop.name, sid, name, tuple(counts)))
    rows.sort(key=lambda r: (r.office_code, r.process_name, r.process_key, _step_order(r.step)))
    return rows


def _entry_steps(session: Session, filters: Filters, scope: _Scope):
    """The entry-step rows of the instances in scope, numbered per instance (1 = the first)."""
    conds = [ht.c.bpmn_id == ENTRY_STEP, ht.c.state != "cancelled"]
    if filters.office_id is not None:
        conds.append(ht.c.office_id == filters.office_id)
    if filters.process_key is not None:
        conds.append(ht.c.version_id.in_(list(scope.version_def) or [-1]))
    rn = func.row_number().over(partition_by=ht.c.instance_id, order_by=(ht.c.ready_at, ht.c.id)).label("rn")
    return (select(ht.c.id, ht.c.instance_id, pv.c.definition_id, ht.c.ready_at, rn)
            .select_from(ht.join(pv, pv.c.id == ht.c.version_id)).where(*conds).subquery())


def _in_period(col, filters: Filters) -> list:
    lo, hi = period_bounds(filters)
    return [c for c in ((col >= lo) if lo is not None else None, (col < hi) if hi is not None else None)
            if c is not None]


def rework(session: Session, filters: Filters, now: datetime) -> list[ReworkRow]:
    """TIDAK returns per SOP: how often the entry step became ready again, in the period.

    The step and officer filters do not apply (a return belongs to the instance).
    """
    scope = _scope(session, filters)
    if scope.empty:
        return []
    s = _entry_steps(session, filters, scope)
    period = and_(true(), *_in_period(s.c.ready_at, filters))
    data = {r.definition_id: r for r in session.execute(
        select(s.c.definition_id,
               _count_if(and_(s.c.rn == 1, period)).label("started"),
               _count_if(and_(s.c.rn > 1, period)).label("returns"),
               func.count(func.distinct(case((and_(s.c.rn > 1, period), s.c.instance_id)))).label("returned"))
        .group_by(s.c.definition_id))}
    rows = []
    for sop in scope.sops.values():
        r = data.get(sop.definition_id)
        started, returns, returned = (int(r.started), int(r.returns), int(r.returned)) if r else (0, 0, 0)
        rows.append(ReworkRow(sop.office_id, sop.office_code, sop.key, sop.name, started, returns, returned,
                              rate(returned, started)))
    return rows


# ---- 2. drill-down -------------------------------------------------------------------------

def drill(session: Session, filters: Filters, figure: str, now: datetime, *, weekday: int | None = None,
          limit: int = DRILL_LIMIT) -> DrillResult:
    """The steps behind one figure, with their instances (so the page can link to each).

    `figure` is one of FIGURES; narrow `filters` (process_key, step, officer_id, start/end)
    to the cell the user clicked. `weekday` (0 = Monday) narrows "late" to a heatmap cell.
    """
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}")
    now = _utc(now)
    scope = _scope(session, filters)
    if scope.empty:
        return DrillResult([], 0, figure)
    pg = _is_pg(session)
    if figure in ("open", "due_soon", "late_open", "paused"):
        conds = _open_conds(filters, scope)
        conds.append({"open": True, "due_soon": _due_soon(now), "late_open": _late_open(now),
                      "paused": ht.c.paused_at.is_not(None)}[figure])
        order = [ht.c.due_at, ht.c.id]
    elif figure in ("completed", "on_time", "late_completed"):
        conds = _completed_conds(filters, scope)
        if figure == "on_time":
            conds.append(_on_time())
        elif figure == "late_completed":
            conds.append(ht.c.completed_at > ht.c.due_at)
        order = [ht.c.completed_at.desc(), ht.c.id.desc()]
    elif figure == "late":
        conds = [*scope.conds, *_late_cond(filters, now)]
        if weekday is not None:
            conds.append(_local_weekday(ht.c.due_at, pg) == int(weekday))
        order = [ht.c.due_at.desc(), ht.c.id.desc()]
    else:  # returns
        s = _entry_steps(session, filters, scope)
        conds = [ht.c.id.in_(select(s.c.id).where(s.c.rn > 1, *_in_period(s.c.ready_at, filters)))]
        order = [ht.c.ready_at.desc(), ht.c.id.desc()]

    total = session.scalar(select(func.count()).select_from(ht).where(*conds))
    person = func.coalesce(ht.c.completed_by_id, ht.c.assignee_id)
    q = (select(ht, pi.c.subject, pi.c.status.label("instance_status"), User.full_name)
         .select_from(ht.join(pi, pi.c.id == ht.c.instance_id).outerjoin(User, User.id == person))
         .where(*conds).order_by(*order).limit(limit))
    rows = []
    for r in session.execute(q):
        def_id = scope.version_def.get(r.version_id)
        sop = scope.sops.get(def_id)
        if sop is None:
            continue
        due, done = _aware(r.due_at), _aware(r.completed_at)
        late = bool(due and ((done and done > due) or (not done and r.paused_at is None and due < now)))
        rows.append(DrillRow(r.id, r.instance_id, r.subject, r.instance_status, sop.office_code, sop.key, sop.name,
                             r.bpmn_id, r.name, r.state, r.full_name, _aware(r.ready_at), due, done,
                             r.working_minutes, r.mutu_baku_minutes, late, r.paused_at is not None))
    return DrillResult(rows, int(total or 0), figure)


# ---- tables: what the screen shows and the exports write -----------------------------------

@dataclass(frozen=True)
class Table:
    """A rendered view: column ids (the web layer translates them) and display values.

    Numbers are rounded here once, so the HTML, the CSV and the XLSX carry identical values.
    """

    name: str
    columns: tuple[str, ...]
    rows: list[tuple]


def pct(r: float | None) -> float | None:
    """An on-time rate as shown: percent with one decimal."""
    return None if r is None else round(r * 100, 1)


def minutes(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def overview_table(rows: list[StepRow]) -> Table:
    return Table("overview", ("office", "process", "step_no", "step", "mutu_baku", "open", "due_soon", "late_open",
                              "paused", "completed", "on_time", "late_completed", "on_time_pct", "median_minutes",
                              "p90_minutes", "per_week"),
                 [(r.office_code, r.process_name, r.step, r.step_name, minutes(r.mutu_baku_minutes), r.open,
                   r.due_soon, r.late_open, r.paused, r.completed, r.on_time, r.late_completed, pct(r.on_time_rate),
                   minutes(r.median_minutes), minutes(r.p90_minutes), r.per_week) for r in rows])


def offices_table(rows: list[OfficeRow]) -> Table:
    return Table("offices", ("office", "office_name", "open", "due_soon", "late_open", "completed", "on_time",
                             "late_completed", "on_time_pct"),
                 [(r.office_code, r.office_name, r.open, r.due_soon, r.late_open, r.completed, r.on_time,
                   r.late_completed, pct(r.on_time_rate)) for r in rows])


def officers_table(rows: list[OfficerRow]) -> Table:
    return Table("officers", ("office", "officer", "held", "held_late", "completed", "on_time", "on_time_pct"),
                 [(r.office_code, r.full_name, r.held, r.held_late, r.completed, r.on_time, pct(r.on_time_rate))
                  for r in rows])


def officer_steps_table(rows: list[OfficerRow]) -> Table:
    return Table("officer_steps", ("office", "officer", "process", "step_no", "step", "mutu_baku", "completed",
                                   "on_time", "on_time_pct", "median_minutes"),
                 [(r.office_code, r.full_name, s.process_name, s.step, s.step_name, minutes(s.mutu_baku_minutes),
                   s.completed, s.on_time, pct(s.on_time_rate), minutes(s.median_minutes))
                  for r in rows for s in r.steps])


def trends_table(rows: list[WeekRow]) -> Table:
    return Table("trends", ("week", "week_start", "completed", "on_time", "late_completed", "on_time_pct",
                            "instances_started", "instances_completed"),
                 [(r.label, r.week_start.isoformat(), r.completed, r.on_time, r.late_completed, pct(r.on_time_rate),
                   r.instances_started, r.instances_completed) for r in rows])


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def heatmap_table(rows: list[HeatRow]) -> Table:
    return Table("heatmap", ("office", "process", "step_no", "step", *WEEKDAYS, "total"),
                 [(r.office_code, r.process_name, r.step, r.step_name, *r.by_weekday, r.total) for r in rows])


def rework_table(rows: list[ReworkRow]) -> Table:
    return Table("rework", ("office", "process", "started", "returns", "instances_returned", "return_pct"),
                 [(r.office_code, r.process_name, r.started, r.returns, r.instances_returned, pct(r.return_rate))
                  for r in rows])


def drill_table(result: DrillResult) -> Table:
    def wib(dt: datetime | None) -> str | None:
        return None if dt is None else dt.astimezone(WIB).strftime("%Y-%m-%d %H:%M")
    return Table("drill", ("instance", "subject", "office", "process", "step_no", "step", "state", "person",
                           "ready_at", "due_at", "completed_at", "working_minutes", "mutu_baku", "late"),
                 [(r.instance_id, r.subject, r.office_code, r.process_name, r.step, r.step_name, r.state, r.person,
                   wib(r.ready_at), wib(r.due_at), wib(r.completed_at), minutes(r.working_minutes),
                   minutes(r.mutu_baku_minutes), r.late) for r in result.rows])
