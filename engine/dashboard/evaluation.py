"""Monitoring and evaluation of SOPs from execution data (Permenpan RB 35/2012).

The regulation's annex has two forms an office fills per period once an SOP runs: the
monitoring form (per SOP and step: how it is applied, notes from the assessment, the action
to take) and the evaluation form (seven questions on whether the SOP works). Offices fill
them by hand from memory; here they are filled from what the engine recorded, with the
figures behind every answer, and whatever data cannot answer is left to the evaluator.

Definitions (each built on the dashboard's own, so the figures match the overview):

* On-time share, median and p90 of working minutes, completions: `figures.overview` for
  the period (the same numbers as the dashboard's "per langkah SOP" table).
* Repeats: completions in the period of a step that its instance had already reached
  before (a TIDAK decision sent the work back). Rework rate = repeats / completions.
* Pauses: pauses of the step's SLA clock that began in the period.
* Step assessment: "ok" when its on-time share is at least `ON_TIME_TARGET`, "not_ok"
  below it, "no_data" with no completed step that had a due time.
* A Mutu Baku revision is proposed only with at least `MIN_SAMPLES` completions, and only
  when the p90 stays on one side over the period: above the Mutu Baku (or below half of
  it) in the whole period AND in each half of it that has `MIN_HALF_SAMPLES` completions.
  The proposed value is the p90 rounded up to `ROUND_TO` minutes (at least `ROUND_TO`).
* The SOP is followed ("berjalan dengan baik") when every step with data is "ok" and none
  of its instances is in an incident.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ..models import ProcessInstance, TaskPause
from .figures import overview
from .filters import Filters, utc
from .patterns import rework
from .rows import StepRow, rate
from .scope import count_if, ht, in_period, pv, resolve
from .tables import Table, minutes, pct

ON_TIME_TARGET = 0.8
MIN_SAMPLES = 10
MIN_HALF_SAMPLES = 5
LOW_SHARE = 0.5  # a p90 below half the Mutu Baku suggests the standard is far too loose
ROUND_TO = 5
RETURN_TARGET = 0.2  # at most one instance in five sent back by a TIDAK decision


@dataclass(frozen=True)
class Proposal:
    """A proposed new Mutu Baku for one step, with the figures behind it."""

    direction: str  # "raise" | "lower"
    current_minutes: float
    proposed_minutes: int
    p90_minutes: float
    p90_halves: tuple[float | None, float | None]
    samples: int


@dataclass(frozen=True)
class StepEvaluation:
    row: StepRow
    repeats: int
    pauses: int
    assessment: str  # "ok" | "not_ok" | "no_data"
    proposal: Proposal | None

    @property
    def rework_rate(self) -> float | None:
        return rate(self.repeats, self.row.completed)


@dataclass(frozen=True)
class Criterion:
    """One question of the evaluation form: answered from data (True/False) or left to the
    evaluator (None), with the figure that answered it."""

    code: str
    answer: bool | None
    figure: float | None  # the deciding figure (a share 0..1), None when not from data


@dataclass(frozen=True)
class SopEvaluation:
    office_id: int
    office_code: str
    office_name: str
    process_key: str
    process_name: str
    started: int
    instances_returned: int
    return_rate: float | None
    incidents: int
    on_time_rate: float | None
    on_time_halves: tuple[float | None, float | None]
    steps: tuple[StepEvaluation, ...]
    followed: bool | None  # None: nothing completed in the period
    criteria: tuple[Criterion, ...]
    tz: str = "Asia/Jakarta"  # the office's time zone


CRITERIA = ("performance", "understandable", "workable", "roles", "problems", "needs", "synergy")


def halves(filters: Filters) -> tuple[Filters, Filters] | None:
    """The period's two halves (None for an open-ended or one-day period)."""
    if filters.start is None or filters.end is None or filters.end <= filters.start:
        return None
    mid = filters.start + timedelta(days=(filters.end - filters.start).days // 2)
    return filters.narrowed(end=mid), filters.narrowed(start=mid + timedelta(days=1))


def _repeats_and_pauses(session: Session, filters: Filters, now: datetime) -> tuple[dict, dict]:
    """Per (definition, step): repeats completed in the period; pauses begun in the period."""
    scope = resolve(session, filters)
    if scope.empty:
        return {}, {}
    rn = func.row_number().over(partition_by=(ht.c.instance_id, ht.c.bpmn_id),
                                order_by=(ht.c.ready_at, ht.c.id)).label("rn")
    numbered = (select(pv.c.definition_id, ht.c.bpmn_id, ht.c.office_id, ht.c.completed_at, ht.c.state, rn)
                .select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                .where(*scope.conds, ht.c.state != "cancelled").subquery())
    in_p = in_period(numbered.c.completed_at, filters, scope, numbered.c.office_id)
    repeats = {(r.definition_id, r.bpmn_id): int(r.n) for r in session.execute(
        select(numbered.c.definition_id, numbered.c.bpmn_id,
               count_if(and_(numbered.c.rn > 1, numbered.c.state == "completed", *in_p)).label("n"))
        .group_by(numbered.c.definition_id, numbered.c.bpmn_id))}
    tp = TaskPause.__table__
    pauses = {(r.definition_id, r.bpmn_id): int(r.n) for r in session.execute(
        select(pv.c.definition_id, ht.c.bpmn_id, func.count().label("n"))
        .select_from(tp.join(ht, ht.c.id == tp.c.human_task_id).join(pv, pv.c.id == ht.c.version_id))
        .where(*scope.conds, *in_period(tp.c.paused_at, filters, scope))
        .group_by(pv.c.definition_id, ht.c.bpmn_id))}
    return repeats, pauses


def _incidents(session: Session, filters: Filters) -> dict[int, int]:
    """Instances in an incident now, per definition."""
    scope = resolve(session, filters)
    if scope.empty:
        return {}
    pi = ProcessInstance.__table__
    q = (select(pv.c.definition_id, func.count().label("n")).select_from(pi.join(pv, pv.c.id == pi.c.version_id))
         .where(pi.c.status == "incident", pi.c.office_id.in_(scope.office_ids),
                pv.c.definition_id.in_(list(scope.sops)))
         .group_by(pv.c.definition_id))
    return {r.definition_id: int(r.n) for r in session.execute(q)}


def _round_up(x: float) -> int:
    return max(ROUND_TO, int(math.ceil(x / ROUND_TO) * ROUND_TO))


def propose(row: StepRow, half_p90: tuple[float | None, float | None],
            half_n: tuple[int, int]) -> Proposal | None:
    """A revision of the step's Mutu Baku when its p90 stays on one side of it (see top)."""
    mb, p90 = row.mutu_baku_minutes, row.p90_minutes
    if not mb or p90 is None or row.completed < MIN_SAMPLES:
        return None
    usable = [p for p, n in zip(half_p90, half_n) if p is not None and n >= MIN_HALF_SAMPLES]
    if p90 > mb and all(p > mb for p in usable):
        direction = "raise"
    elif p90 < mb * LOW_SHARE and all(p < mb * LOW_SHARE for p in usable):
        direction = "lower"
    else:
        return None
    return Proposal(direction, mb, _round_up(p90), p90, half_p90, row.completed)


def _share(rows: list[StepRow]) -> float | None:
    return rate(sum(r.on_time for r in rows), sum(r.with_due for r in rows))


def evaluate(session: Session, filters: Filters, now: datetime) -> list[SopEvaluation]:
    """The monitoring and evaluation of every SOP in scope for the period of `filters`."""
    now = utc(now)
    whole = overview(session, filters, now)
    parts = halves(filters)
    half_rows = [overview(session, f, now) for f in parts] if parts else [[], []]
    half_by = [{(r.office_id, r.process_key, r.step): r for r in rows} for rows in half_rows]
    repeats, pauses = _repeats_and_pauses(session, filters, now)
    incidents = _incidents(session, filters)
    returns = {(r.office_id, r.process_key): r for r in rework(session, filters, now)}
    scope = resolve(session, filters)
    def_id = {(s.office_id, s.key): d for d, s in scope.sops.items()}
    zone_of = {s.office_id: s.tz for s in scope.sops.values()}

    by_sop: dict[tuple[int, str], list[StepRow]] = {}
    for r in whole:
        by_sop.setdefault((r.office_id, r.process_key), []).append(r)

    out = []
    for (office_id, key), rows in by_sop.items():
        d = def_id.get((office_id, key))
        steps = []
        for r in rows:
            hs = [h.get((office_id, key, r.step)) for h in half_by]
            proposal = propose(r, tuple(h.p90_minutes if h else None for h in hs),
                               tuple(h.completed if h else 0 for h in hs))
            assessment = ("no_data" if r.on_time_rate is None else
                          "ok" if r.on_time_rate >= ON_TIME_TARGET else "not_ok")
            steps.append(StepEvaluation(r, repeats.get((d, r.step), 0), pauses.get((d, r.step), 0),
                                        assessment, proposal))
        rw = returns.get((office_id, key))
        n_incidents = incidents.get(d, 0)
        share = _share(rows)
        half_shares = tuple(_share([h for h in half_rows[i] if (h.office_id, h.process_key) == (office_id, key)])
                            for i in range(2))
        with_data = [s for s in steps if s.assessment != "no_data"]
        followed = None if not with_data else (all(s.assessment == "ok" for s in with_data) and not n_incidents)
        criteria = _criteria(steps, share, half_shares, rw.return_rate if rw else None, n_incidents)
        first = rows[0]
        out.append(SopEvaluation(
            office_id, first.office_code, first.office_name, key, first.process_name,
            rw.started if rw else 0, rw.instances_returned if rw else 0, rw.return_rate if rw else None,
            n_incidents, share, half_shares, tuple(steps), followed, criteria, zone_of.get(office_id, "Asia/Jakarta")))
    return out


def _criteria(steps: list[StepEvaluation], share: float | None, half_shares: tuple, return_rate: float | None,
              incidents: int) -> tuple[Criterion, ...]:
    """The evaluation form's seven questions, answered where the data can answer them."""
    first, second = half_shares
    performance = None if first is None or second is None else second >= first
    understandable = None if return_rate is None else return_rate <= RETURN_TARGET
    workable = None if share is None else share >= ON_TIME_TARGET
    reached = [s for s in steps if s.row.completed or s.row.open]
    # every step reached in the period was taken and done by someone, none left open past its due time
    roles = None if not reached else all(s.row.completed > 0 and s.row.late_open == 0 for s in reached)
    late_open = sum(s.row.late_open for s in steps)
    problems = None if not reached else (incidents == 0 and late_open == 0)
    return (Criterion("performance", performance, second),
            Criterion("understandable", understandable, return_rate),
            Criterion("workable", workable, share),
            Criterion("roles", roles, None),
            Criterion("problems", problems, None),
            Criterion("needs", None, None),
            Criterion("synergy", None, None))


def monitoring_table(evaluations: list[SopEvaluation]) -> Table:
    """The monitoring form, one row per step: figures, assessment and the proposed action."""
    rows = []
    for e in evaluations:
        for s in e.steps:
            r, p = s.row, s.proposal
            rows.append((e.office_code, e.process_name, r.step, r.step_name, minutes(r.mutu_baku_minutes),
                         r.completed, pct(r.on_time_rate), minutes(r.median_minutes), minutes(r.p90_minutes),
                         s.repeats, pct(s.rework_rate), s.pauses, s.assessment,
                         p.proposed_minutes if p else None))
    return Table("monitoring", ("office", "process", "step_no", "step", "mutu_baku", "completed", "on_time_pct",
                                "median_minutes", "p90_minutes", "repeats", "repeat_pct", "pauses", "assessment",
                                "proposed_mutu_baku"), rows)


def evaluation_table(evaluations: list[SopEvaluation]) -> Table:
    """The evaluation form, one row per SOP and question."""
    rows = []
    for e in evaluations:
        for c in e.criteria:
            rows.append((e.office_code, e.process_name, c.code, c.answer, pct(c.figure)))
    return Table("evaluation", ("office", "process", "criterion", "answer", "figure_pct"), rows)


def summary_table(evaluations: list[SopEvaluation]) -> Table:
    """Per SOP: instances, returns, on-time share, incidents, and whether it is followed."""
    return Table("sop_summary", ("office", "process", "started", "instances_returned", "return_pct", "on_time_pct",
                                 "incidents", "followed"),
                 [(e.office_code, e.process_name, e.started, e.instances_returned, pct(e.return_rate),
                   pct(e.on_time_rate), e.incidents, e.followed) for e in evaluations])
