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
import operator
import re
import sys
from array import array
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from itertools import accumulate, repeat
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date, Integer, LargeBinary, and_, case, cast, extract, func, literal, or_, select, text, true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .db import as_utc
from .models import (
    HumanTask, Office, ProcessDefinition, ProcessInstance, ProcessVersion, StatsBlock, StatsOfficerBlock,
    StatsStepBlock, User, user_group,
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


def _prepare(session: Session, filters: Filters, now: datetime, rollup: bool) -> tuple[datetime, _Scope, bool]:
    """What overview() and officers() do first: UTC now, the rollup (SQLite: before this session
    holds the write lock), the office scope, and the PostgreSQL planner settings."""
    now = _utc(now)
    pg = _is_pg(session)
    if rollup and not pg:
        ensure_rollup(session, filters, now)
    scope = _scope(session, filters)
    if not scope.empty:
        _tune(session)
    return now, scope, pg


def _tune(session: Session) -> None:
    """On PostgreSQL give this transaction's sorts room: percentile_cont sorts every group's
    durations, and a sort that spills to disk costs more than the whole query should."""
    if _is_pg(session):
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def _weeks_in(filters: Filters) -> float | None:
    if filters.start is None or filters.end is None or filters.end < filters.start:
        return None
    return ((filters.end - filters.start).days + 1) / 7


# ---- rollup of past days -------------------------------------------------------------------
#
# A completed step never changes (completed_at, working_minutes, due_at and completed_by_id are
# written once, at completion), so the completed-step figures of a WIB day that is over are
# immutable. They are rolled up once, lazily (the first query that needs a day builds it; the
# beat tick may call `build_rollup` ahead), into blocks of one office and one day ("d"), ISO
# week inside a month ("w", from its days), month ("m", from its days) or year ("y", from its
# months):
#
# * `stats_block` (office_id, span, day = the block's first day): the block is built; its rows
#   commit in the same transaction.
# * `stats_step_block`: per (SOP version, step): completed, with_due, on_time, late and the
#   durations: every distinct working time (centi-minutes, i.e. rounded to 2 decimals) with its
#   count, packed as little-endian int64 pairs (value, count), values ascending. Pairs, so that
#   PostgreSQL can concatenate the day blocks of a period (string_agg) into one row per group.
# * `stats_officer_block`: the same per (SOP version, step, officer).
#
# A query reads the largest built blocks that fit in its period, and reads human_task live for
# the rest (today, the first hour after midnight, and anything not built). Rows of instances
# deleted later stay counted in their blocks: to rebuild, delete the `stats_block` rows
# (the figures' rows go with them, ON DELETE CASCADE) and the next query builds them again. Medians and p90 are
# computed from the merged (value, count) pairs with percentile_cont's interpolation, so they
# equal the live computation on the same data exactly (tests/test_stats.py checks every figure).
# The primary keys keep a block from being built twice: builders claim a block with INSERT ..
# ON CONFLICT DO NOTHING (PostgreSQL blocks a second claimer until the first commits, then skips;
# SQLite serialises writers with BEGIN IMMEDIATE).

ROLLUP_GRACE = timedelta(hours=1)  # a day is final one hour after its midnight (late commits)
_CHUNK_DAYS = 31  # build at most this many days per aggregate query (bounded memory)


blk = StatsBlock.__table__
step_blk = StatsStepBlock.__table__
officer_blk = StatsOfficerBlock.__table__


def _centi(minutes: float) -> int:
    """A working time as integer centi-minutes: round(minutes, 2) exactly (c / 100 gives it back)."""
    return int(round(round(minutes, 2) * 100))


def _pack(values: dict[int, int]) -> bytes:
    pairs = array("q")
    for k in sorted(values):
        pairs.append(k)
        pairs.append(values[k])
    if sys.byteorder == "big":
        pairs.byteswap()
    return pairs.tobytes()


def _unpack(blob: bytes) -> array:
    """(value, count) pairs, interleaved."""
    a = array("q")
    a.frombytes(bytes(blob))
    if sys.byteorder == "big":
        a.byteswap()
    return a


_SHIFT = 32  # small blocks sort as value << 32 | count (a count per day and step stays < 2**32)
_MASK = (1 << _SHIFT) - 1


class _Durations:
    """A multiset of durations in centi-minutes, as sorted blocks with cumulative counts.

    Month and year blocks stay apart; day blocks and live values are merged into one block
    (sorted in C: value << 32 | count). Order statistics by binary search over the value with
    a bisection per block, so a median over years costs ~20 x blocks bisections, not a sort."""

    __slots__ = ("blocks", "small", "n")

    def __init__(self) -> None:
        self.blocks: list[tuple[array, list[int]]] = []
        self.small = array("q")  # interleaved (value, count), any order
        self.n = 0

    def add(self, centi: int, count: int) -> None:
        self.small.append(centi)
        self.small.append(count)
        self.n += count

    def add_blob(self, blob: bytes, big: bool) -> None:
        a = _unpack(blob)
        if not a:
            return
        if big:
            cum = list(accumulate(a[1::2]))
            self.blocks.append((a[0::2], cum))
            self.n += cum[-1]
        else:
            self.small.extend(a)
            self.n += sum(a[1::2])

    def _freeze(self) -> None:
        if self.small:
            s = self.small
            packed = sorted(map(operator.or_, map(operator.lshift, s[0::2], repeat(_SHIFT)), s[1::2]))
            self.blocks.append((array("q", map(operator.rshift, packed, repeat(_SHIFT))),
                                list(accumulate(map(operator.and_, packed, repeat(_MASK))))))
            self.small = array("q")

    def kth(self, k: int) -> int:
        """The k-th smallest value (0-based)."""
        self._freeze()
        blocks = self.blocks
        if len(blocks) == 1:
            values, cum = blocks[0]
            return values[bisect_right(cum, k)]
        lo, hi = min(b[0][0] for b in blocks), max(b[0][-1] for b in blocks)
        while lo < hi:  # the smallest x with more than k values <= x
            mid = (lo + hi) // 2
            below = 0
            for values, cum in blocks:
                i = bisect_right(values, mid)
                if i:
                    below += cum[i - 1]
            if below > k:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def percentile(self, p: float) -> float | None:
        """Exactly `percentile()` on the expanded values (percentile_cont's interpolation)."""
        if not self.n:
            return None
        pos = p * (self.n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        c_lo = self.kth(lo)
        c_hi = c_lo if hi == lo else self._next(c_lo, hi)
        v_lo, v_hi = c_lo / 100, c_hi / 100
        return v_lo + (v_hi - v_lo) * (pos - lo)

    def _next(self, v: int, k: int) -> int:
        """The k-th smallest value, knowing the (k-1)-th is v: v again, or the next larger value."""
        below, following = 0, None
        for values, cum in self.blocks:
            i = bisect_right(values, v)
            if i:
                below += cum[i - 1]
            if i < len(values) and (following is None or values[i] < following):
                following = values[i]
        return v if below > k else following


@dataclass(frozen=True)
class _DoneRow:
    """A completed-figures row shaped like the live query's, so both paths share the assembly."""

    definition_id: int
    bpmn_id: str
    n: int
    with_due: int
    on_time: int
    completed_by_id: int | None = None


@dataclass
class _Done:
    """Completed-step figures of one group (step, or officer and step) over a period."""

    completed: int = 0
    with_due: int = 0
    on_time: int = 0
    late: int = 0
    durations: _Durations = field(default_factory=_Durations)


def rollup_cutoff(now: datetime) -> date:
    """The first WIB day that is not final: days before it may be (and are) rolled up.

    Never after the wall clock's (a `now` in the future must not freeze days still to come),
    and one hour of grace after midnight for transactions that commit late."""
    t = min(_utc(now), datetime.now(timezone.utc)) - ROLLUP_GRACE
    return t.astimezone(WIB).date()


def _month_last(d: date) -> date:
    return (date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)) - timedelta(days=1)


def _next_block(span: str, d: date) -> date:
    if span == "y":
        return date(d.year + 1, 1, 1)
    if span == "m":
        return _month_last(d) + timedelta(days=1)
    return d + timedelta(days=7 if span == "w" else 1)


def _week_fits(d: date, lo: date, hi: date) -> bool:
    """A week block (Monday..Sunday) is used inside a month the period does not hold whole
    (a whole month is one month block; a week never straddles two months)."""
    last = d + timedelta(days=6)
    first_of_month = date(d.year, d.month, 1)
    return (d.weekday() == 0 and last <= hi and last.month == d.month
            and not (first_of_month >= lo and _month_last(d) <= hi))


def _ranges(days: list[date]) -> list[tuple[date, date]]:
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
        elif d.day == 1 and ("m", d) in big and _month_last(d) <= hi:
            blocks.append(("m", d))
        elif ("w", d) in big and _week_fits(d, lo, hi):
            blocks.append(("w", d))
        else:
            (blocks.append(("d", d)) if days is not None and d in days else gaps.append(d))
            better = better or (d.day == 1 and _month_last(d) <= hi) or _week_fits(d, lo, hi)
            d += timedelta(days=1)
            continue
        d = _next_block(blocks[-1][0], d)
    return blocks, gaps, better


def _first_day(conn, office_id: int, pg: bool) -> date | None:
    first = conn.execute(select(func.min(ht.c.completed_at))
                         .where(ht.c.office_id == office_id, ht.c.state == "completed")).scalar()
    return None if first is None else as_utc(first if isinstance(first, datetime) else
                                             datetime.fromisoformat(str(first))).astimezone(WIB).date()


def _coverage(conn, spans: dict[int, tuple[date, date]]) -> dict[int, tuple[list, list[date], bool]]:
    """Per office: the built blocks covering its final days [lo, hi], the days not built, and
    whether larger blocks could be built (see `_walk`)."""
    if not spans:
        return {}
    lo_all, hi_all = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    big: dict[int, set] = defaultdict(set)
    for r in conn.execute(select(blk.c.office_id, blk.c.span, blk.c.day).where(
            blk.c.office_id.in_(list(spans)), blk.c.span.in_(("w", "m", "y")), blk.c.day.between(lo_all, hi_all))):
        big[r.office_id].add((r.span, _as_date(r.day)))
    gaps = {o: _ranges(_walk(lo, hi, big[o], None)[1]) for o, (lo, hi) in spans.items()}
    days: dict[int, set] = defaultdict(set)
    wanted = [and_(blk.c.office_id == o, blk.c.day.between(a, b)) for o, rs in gaps.items() for a, b in rs]
    for i in range(0, len(wanted), 200):
        for r in conn.execute(select(blk.c.office_id, blk.c.day).where(blk.c.span == "d", or_(*wanted[i:i + 200]))):
            days[r.office_id].add(_as_date(r.day))
    return {o: _walk(lo, hi, big[o], days[o]) for o, (lo, hi) in spans.items()}


def _final_spans(conn, office_ids: Iterable[int], start: date | None, end: date | None, cutoff: date,
                 pg: bool) -> dict[int, tuple[date, date]]:
    """Per office, the final days of the period (start None: from the office's first completion)."""
    last = cutoff - timedelta(days=1) if end is None else min(end, cutoff - timedelta(days=1))
    spans = {}
    for o in office_ids:
        lo = start if start is not None else _first_day(conn, o, pg)
        if lo is not None and lo <= last:
            spans[o] = (lo, last)
    return spans


def _insert_ignore(conn, table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


def _claim(conn, office_id: int, span: str, days: list[date]) -> list[date]:
    """Mark blocks as built (ascending, so two builders never deadlock); return those we got."""
    got = []
    stamp = datetime.now(timezone.utc)
    for i in range(0, len(days), 500):
        rows = [{"office_id": office_id, "span": span, "day": d, "built_at": stamp} for d in days[i:i + 500]]
        got += [_as_date(d) for d in conn.execute(_insert_ignore(conn, blk).values(rows).returning(blk.c.day))
                .scalars()]
    return sorted(got)


def _write(conn, office_id: int, span: str, groups: dict[tuple, list]) -> None:
    """Insert the rows of new blocks: groups[(day, version, step, officer or None)] = [5 figures]."""
    steps, officers = [], []
    for (d, version, step, officer), (completed, with_due, on_time, late, values) in groups.items():
        row = {"office_id": office_id, "span": span, "day": d, "version_id": version, "bpmn_id": step,
               "completed": completed, "with_due": with_due, "on_time": on_time, "late": late,
               "durations": _pack(values)}
        if officer is None:
            steps.append(row)
        else:
            officers.append({**row, "officer_id": officer})
    for table, rows in ((step_blk, steps), (officer_blk, officers)):
        for i in range(0, len(rows), 5000):
            conn.execute(_insert_ignore(conn, table), rows[i:i + 5000])


def _figures() -> list:
    return [0, 0, 0, 0, defaultdict(int)]


def _build_days(conn, office_id: int, days: list[date], pg: bool) -> int:
    """Roll up these final days of one office from human_task; returns how many were ours to build."""
    claimed = _claim(conn, office_id, "d", days)
    for a, b in _ranges(claimed):
        while a <= b:
            z = min(b, a + timedelta(days=_CHUNK_DAYS - 1))
            lo = datetime.combine(a, time(0), WIB).astimezone(timezone.utc)
            hi = datetime.combine(z + timedelta(days=1), time(0), WIB).astimezone(timezone.utc)
            day = _local_date(ht.c.completed_at, pg).label("day")
            keys = [day, ht.c.version_id, ht.c.bpmn_id, ht.c.completed_by_id, ht.c.working_minutes]
            groups: dict[tuple, list] = defaultdict(_figures)
            for r in conn.execute(
                    select(*keys, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
                           _count_if(_on_time()).label("on_time"),
                           _count_if(ht.c.completed_at > ht.c.due_at).label("late"))
                    .where(ht.c.office_id == office_id, ht.c.state == "completed", ht.c.completed_at >= lo,
                           ht.c.completed_at < hi).group_by(*keys)):
                d = _as_date(r.day)
                targets = [groups[(d, r.version_id, r.bpmn_id, None)]]
                if r.completed_by_id is not None:
                    targets.append(groups[(d, r.version_id, r.bpmn_id, r.completed_by_id)])
                for g in targets:
                    g[0] += r.n
                    g[1] += int(r.with_due)
                    g[2] += int(r.on_time)
                    g[3] += int(r.late)
                    if r.working_minutes is not None:
                        g[4][_centi(r.working_minutes)] += r.n
            _write(conn, office_id, "d", groups)
            a = z + timedelta(days=1)
    return len(claimed)


def _build_merged(conn, office_id: int, span: str, firsts: list[date]) -> int:
    """Build week or month blocks from their days ("w", "m") or year blocks from their months ("y")."""
    claimed = _claim(conn, office_id, span, firsts)
    part = "m" if span == "y" else "d"
    for first in claimed:
        last = _next_block(span, first) - timedelta(days=1)
        groups: dict[tuple, list] = defaultdict(_figures)
        for table, officer in ((step_blk, False), (officer_blk, True)):
            for r in conn.execute(select(table).where(table.c.office_id == office_id, table.c.span == part,
                                                      table.c.day.between(first, last))):
                g = groups[(first, r.version_id, r.bpmn_id, r.officer_id if officer else None)]
                g[0] += r.completed
                g[1] += r.with_due
                g[2] += r.on_time
                g[3] += r.late
                pairs = _unpack(r.durations)
                for v, c in zip(pairs[0::2], pairs[1::2]):
                    g[4][v] += c
        _write(conn, office_id, span, groups)
    return len(claimed)


def _build(conn, spans: dict[int, tuple[date, date]], pg: bool) -> dict[str, int]:
    """Build every missing block that fits in each office's final days."""
    built = {"d": 0, "w": 0, "m": 0, "y": 0}
    for office_id, (blocks, gaps, _) in _coverage(conn, spans).items():
        lo, hi = spans[office_id]
        if gaps:
            built["d"] += _build_days(conn, office_id, gaps, pg)
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
            if m >= lo and _month_last(m) <= hi and ("m", m) not in have and \
                    not any(s == "y" and b.year == m.year for s, b in have):
                months.append(m)
            m = _next_block("m", m)
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

    In a transaction of its own, committed, so every later request reuses it; only on SQLite
    when the caller's session already holds a transaction (SQLite has one writer: a second
    connection would wait for the caller) it writes in the caller's transaction."""
    pg = _is_pg(session)
    cutoff = rollup_cutoff(now)

    def run(conn) -> dict[str, int]:
        ids = sorted(offices) if offices is not None else _scope_offices(conn, filters)
        return _build(conn, _final_spans(conn, ids, filters.start, filters.end, cutoff, pg), pg)

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
        offices = sorted(office_ids) if office_ids is not None else sorted(conn.execute(select(Office.id)).scalars())
        return _build(conn, _final_spans(conn, offices, None, None, rollup_cutoff(now), pg), pg)


def _day_bounds(a: date, b: date | None) -> tuple[datetime, datetime | None]:
    lo = datetime.combine(a, time(0), WIB).astimezone(timezone.utc)
    hi = None if b is None else datetime.combine(b + timedelta(days=1), time(0), WIB).astimezone(timezone.utc)
    return lo, hi


def _filter_conds(filters: Filters, scope: _Scope, version_col, step_col, officer_col) -> list:
    """The SOP, step and officer filters on a table of completed-step rows (human_task or a rollup block)."""
    conds = []
    if filters.process_key is not None:
        conds.append(version_col.in_(list(scope.version_def) or [-1]))
    if filters.step is not None:
        conds.append(step_col == filters.step)
    if filters.officer_id is not None and officer_col is not None:
        conds.append(officer_col == filters.officer_id)
    return conds


def _completed_rollup(session: Session, filters: Filters, scope: _Scope, now: datetime,
                      per_officer: bool) -> dict[tuple, _Done]:
    """Completed-step figures of the period per (definition, step) or (officer, definition, step):
    built blocks for the final days, human_task live for the rest. Same figures as the live path."""
    pg = _is_pg(session)
    cutoff = rollup_cutoff(now)
    officer_rows = per_officer or filters.officer_id is not None
    table = officer_blk if officer_rows else step_blk
    offices = sorted({s.office_id for s in scope.sops.values()})
    spans = _final_spans(session, offices, filters.start, filters.end, cutoff, pg)
    cover = _coverage(session, spans)
    missing = [o for o, (_, gaps, better) in cover.items() if gaps or better]
    if missing and pg:  # lazily build what this period lacks (SQLite built it before the session began)
        ensure_rollup(session, filters, now, missing)
        cover.update(_coverage(session, {o: spans[o] for o in missing}))

    # live day ranges per office: final days not built, then everything from the cutoff on
    plans: dict[tuple, list[int]] = defaultdict(list)  # (blocks, live ranges) -> offices
    for o in offices:
        blocks, gaps, _ = cover.get(o, ([], [], False))
        live = [(a, b) for a, b in _ranges(gaps)]
        tail = cutoff if filters.start is None else max(filters.start, cutoff)
        if filters.end is None or tail <= filters.end:
            live.append((tail, filters.end))
        plans[(tuple(blocks), tuple(live))].append(o)

    acc: dict[tuple, _Done] = defaultdict(_Done)

    def key(officer, version, step):
        d = scope.version_def.get(version)
        return None if d is None else ((officer, d, step) if per_officer else (d, step))

    for (blocks, live), office_ids in plans.items():
        if blocks:
            by_span: dict[str, list[date]] = defaultdict(list)
            for span, d in blocks:
                by_span[span].append(d)
            spans_or = []
            for span, ds in by_span.items():
                if span == "d":
                    spans_or += [and_(table.c.span == "d", table.c.day.between(a, b)) for a, b in _ranges(ds)]
                else:
                    spans_or.append(and_(table.c.span == span, table.c.day.in_(ds)))
            conds = [table.c.office_id.in_(office_ids), or_(*spans_or),
                     *_filter_conds(filters, scope, table.c.version_id, table.c.bpmn_id,
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
            ranges = []
            for a, b in live:
                lo, hi = _day_bounds(a, b)
                ranges.append(and_(ht.c.completed_at >= lo, *([ht.c.completed_at < hi] if hi is not None else [])))
            conds = [ht.c.state == "completed", ht.c.office_id.in_(office_ids), or_(*ranges),
                     *_filter_conds(filters, scope, ht.c.version_id, ht.c.bpmn_id, ht.c.completed_by_id)]
            if per_officer:
                conds.append(ht.c.completed_by_id.is_not(None))
            keys = [ht.c.version_id, ht.c.bpmn_id, *([ht.c.completed_by_id] if per_officer else []),
                    ht.c.working_minutes]
            for r in session.execute(
                    select(*keys, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
                           _count_if(_on_time()).label("on_time"),
                           _count_if(ht.c.completed_at > ht.c.due_at).label("late"))
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
                    a.durations.add(_centi(r.working_minutes), r.n)
    return acc


# ---- 1. overview ---------------------------------------------------------------------------

def overview(session: Session, filters: Filters, now: datetime, *, rollup: bool = True) -> list[StepRow]:
    """One row per (office SOP, step): open now, due soon, late, completed, on-time, median, p90.

    Every step of each SOP's latest version is listed, also with zero activity, so a
    supervisor sees the whole SOP; steps only older versions had are added when they have data.
    Completed figures of past days come from the rollup (built here when missing); with
    `rollup=False` everything is read live from human_task (same figures, slower).
    """
    now, scope, pg = _prepare(session, filters, now, rollup)
    if scope.empty:
        return []
    key_cols = [pv.c.definition_id, ht.c.bpmn_id]
    joined = ht.join(pv, pv.c.id == ht.c.version_id)

    open_rows = session.execute(
        select(*key_cols, func.count().label("n"), _count_if(_due_soon(now)).label("due_soon"),
               _count_if(_late_open(now)).label("late"), _count_if(ht.c.paused_at.is_not(None)).label("paused"))
        .select_from(joined).where(*_open_conds(filters, scope)).group_by(*key_cols)).all()

    if rollup:
        done = _completed_rollup(session, filters, scope, now, per_officer=False)
        done_rows = [_DoneRow(d, sid, a.completed, a.with_due, a.on_time) for (d, sid), a in done.items()]
        pct = {k: (_r2(a.durations.percentile(0.5)), _r2(a.durations.percentile(0.9))) for k, a in done.items()}
    else:
        done_conds = _completed_conds(filters, scope)
        done_cols = [*key_cols, func.count().label("n"), _count_if(ht.c.due_at.is_not(None)).label("with_due"),
                     _count_if(_on_time()).label("on_time")]
        if pg:  # one scan for counts and percentiles
            done_cols += [func.percentile_cont(0.5).within_group(ht.c.working_minutes).label("p50"),
                          func.percentile_cont(0.9).within_group(ht.c.working_minutes).label("p90")]
        done_rows = session.execute(select(*done_cols).select_from(joined).where(*done_conds)
                                    .group_by(*key_cols)).all()
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
    def cell(def_id: int, sid: str) -> dict:
        if (def_id, sid) not in cells:
            cells[(def_id, sid)] = _old_step(session, scope, def_id, sid)
        return cells[(def_id, sid)]

    for r in open_rows:
        c = cell(r.definition_id, r.bpmn_id)
        c.update(open=r.n, due_soon=int(r.due_soon), late_open=int(r.late), paused=int(r.paused))
    for r in done_rows:
        c = cell(r.definition_id, r.bpmn_id)
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

def officers(session: Session, filters: Filters, now: datetime, *, rollup: bool = True) -> list[OfficerRow]:
    """Per officer: steps held now (and how many of them are late), completed in the period,
    on-time rate and median working time per step.

    For reading workload fairly, not ranking: rows are in name order, and every lane member
    of the office is listed, also with nothing held or completed.
    """
    now, scope, pg = _prepare(session, filters, now, rollup)
    if scope.empty:
        return []

    held = {r.assignee_id: (r.n, int(r.late)) for r in session.execute(
        select(ht.c.assignee_id, func.count().label("n"), _count_if(_late_open(now)).label("late"))
        .where(*_open_conds(filters, scope), ht.c.assignee_id.is_not(None)).group_by(ht.c.assignee_id))}

    if rollup:
        acc = _completed_rollup(session, filters, scope, now, per_officer=True)
        done = [_DoneRow(d, sid, a.completed, a.with_due, a.on_time, officer)
                for (officer, d, sid), a in acc.items()]
        medians = {k: _r2(a.durations.percentile(0.5)) for k, a in acc.items()}
    else:
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
        due, done = as_utc(r.due_at), as_utc(r.completed_at)
        late = bool(due and ((done and done > due) or (not done and r.paused_at is None and due < now)))
        rows.append(DrillRow(r.id, r.instance_id, r.subject, r.instance_status, sop.office_code, sop.key, sop.name,
                             r.bpmn_id, r.name, r.state, r.full_name, as_utc(r.ready_at), due, done,
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
