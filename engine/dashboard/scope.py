"""The query scope: which offices, SOPs and versions a dashboard query covers, and the
WHERE clauses every `human_task` query shares.

Office isolation is the caller's job only in choosing `Filters.office_id` (the user's own
office for a supervisor); every query built from a `Scope` applies it as a server-side WHERE.
The small tables (offices, SOPs, versions) are read once here, so the big queries over
`human_task` need no joins to them.

SLA states, defined once for every figure (SQL) and for the drill-down rows (Python):

* On time: `completed_at <= due_at`. Steps without a due time (no Mutu Baku) are left out
  of the on-time rate's denominator.
* Due within the hour: open, not paused, now <= due_at < now + 1 wall-clock hour.
* Late (open): not paused and due_at < now. Paused steps count as open only.
* Late (completed): completed_at > due_at.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..sla import finished_late_sql, is_finished_late, is_overdue, overdue_sql
from ..models import HumanTask, Office, ProcessDefinition, ProcessInstance, ProcessVersion
from .filters import Filters
from .rows import Sop
from .zones import Zones

DUE_SOON = timedelta(hours=1)

ht = HumanTask.__table__
pv = ProcessVersion.__table__
pi = ProcessInstance.__table__


def step_order(bpmn_id: str) -> tuple:
    """step2 before step10: natural order of the ids."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", bpmn_id))


def ordered_steps(steps: dict) -> list[tuple[str, dict]]:
    """A version's steps in SOP order: the SOP's step number, then the ids' natural order."""
    return sorted((steps or {}).items(), key=lambda kv: (kv[1].get("no") or 0, step_order(kv[0])))


def entry_step(steps: dict) -> str | None:
    """The step an instance starts at (and a TIDAK decision returns to): the one deploy marked
    `entry` (the first user task after the start event), else the first in SOP order."""
    marked = [sid for sid, s in (steps or {}).items() if s.get("entry")]
    if marked:
        return min(marked, key=step_order)
    ordered = ordered_steps(steps)
    return ordered[0][0] if ordered else None


def count_if(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# ---- SLA states (one definition) -------------------------------------------------------------

def late_open(now: datetime):
    """An open step past its due time, its clock running (engine.sla's one definition)."""
    return overdue_sql(ht.c, now)


def due_soon(now: datetime):
    return and_(ht.c.paused_at.is_(None), ht.c.due_at >= now, ht.c.due_at < now + DUE_SOON)


def on_time():
    return ht.c.completed_at <= ht.c.due_at


def late_completed():
    return finished_late_sql(ht.c)


def is_late(due: datetime | None, done: datetime | None, paused_at: datetime | None, now: datetime) -> bool:
    """The same rules for one row in Python (drill-down rows carry it): engine.sla's."""
    return is_finished_late(due, done) if done is not None else is_overdue("ready", due, paused_at, now)


# ---- scope -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The SOPs in scope and the WHERE clauses every task query shares."""

    sops: dict[int, Sop]  # definition_id -> Sop
    version_def: dict[int, int]  # version_id -> definition_id
    zones: Zones = field(default_factory=lambda: Zones({}))
    entry: dict[int, str] = field(default_factory=dict)  # version_id -> entry step
    conds: tuple = field(default=())

    @property
    def empty(self) -> bool:
        return not self.sops

    @property
    def office_ids(self) -> list[int]:
        return sorted({s.office_id for s in self.sops.values()})


def resolve(session: Session, filters: Filters) -> Scope:
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
    entry: dict[int, str] = {}
    if defs:
        ids = [d.id for d, _ in defs]
        versions = session.execute(select(ProcessVersion.id, ProcessVersion.definition_id, ProcessVersion.steps)
                                   .where(ProcessVersion.definition_id.in_(ids))).all()
        version_def = {v.id: v.definition_id for v in versions}
        steps_of = {v.id: v.steps for v in versions}
        entry = {v.id: e for v in versions if (e := entry_step(v.steps)) is not None}
        for d, office in defs:
            ordered = ordered_steps(steps_of.get(d.latest_version_id) or {})
            sops[d.id] = Sop(d.id, office.id, office.code, office.name, d.key, d.name,
                             tuple((sid, s.get("name") or sid, s.get("mutu_baku_minutes")) for sid, s in ordered),
                             office.timezone or "Asia/Jakarta")
    conds = []
    if filters.office_id is not None:
        conds.append(ht.c.office_id == filters.office_id)
    else:  # regency view: listing the offices lets PostgreSQL use the (office_id, ...) indexes
        conds.append(ht.c.office_id.in_(sorted({s.office_id for s in sops.values()}) or [-1]))
    if filters.process_key is not None:
        conds.append(ht.c.version_id.in_(list(version_def) or [-1]))
    if filters.step is not None:
        conds.append(ht.c.bpmn_id == filters.step)
    zones = Zones({s.office_id: s.tz for s in sops.values()})
    return Scope(sops, version_def, zones, entry, tuple(conds))


def in_period(col, filters: Filters, scope: Scope, office_col=None) -> list:
    """`col` inside the period, in each office's own days."""
    return scope.zones.period_conds(col, ht.c.office_id if office_col is None else office_col,
                                    filters.start, filters.end)


def completed_conds(filters: Filters, scope: Scope) -> list:
    conds = [ht.c.state == "completed", *scope.conds, *in_period(ht.c.completed_at, filters, scope)]
    if filters.officer_id is not None:
        conds.append(ht.c.completed_by_id == filters.officer_id)
    return conds


def open_conds(filters: Filters, scope: Scope) -> list:
    conds = [ht.c.state == "ready", *scope.conds]
    if filters.officer_id is not None:
        conds.append(ht.c.assignee_id == filters.officer_id)
    return conds


def late_conds(filters: Filters, scope: Scope, now: datetime) -> list:
    """A step that missed its due time (completed after it, or still open past it and not
    paused), its due time in the period."""
    done_late = and_(ht.c.state == "completed", late_completed())
    open_late = and_(ht.c.state == "ready", late_open(now))
    if filters.officer_id is not None:
        done_late = and_(done_late, ht.c.completed_by_id == filters.officer_id)
        open_late = and_(open_late, ht.c.assignee_id == filters.officer_id)
    return [or_(done_late, open_late), *in_period(ht.c.due_at, filters, scope)]


def filter_conds(filters: Filters, scope: Scope, version_col, step_col, officer_col) -> list:
    """The SOP, step and officer filters on a table of completed-step rows (human_task or a rollup block)."""
    conds = []
    if filters.process_key is not None:
        conds.append(version_col.in_(list(scope.version_def) or [-1]))
    if filters.step is not None:
        conds.append(step_col == filters.step)
    if filters.officer_id is not None and officer_col is not None:
        conds.append(officer_col == filters.officer_id)
    return conds


def entry_rows(filters: Filters, scope: Scope):
    """The entry-step rows of the instances in scope, numbered per instance (1 = the first).

    The entry step is each version's own (`entry_step`), so rework counts for any step id."""
    by_step: dict[str, list[int]] = {}
    for version, sid in scope.entry.items():
        by_step.setdefault(sid, []).append(version)
    entry = or_(*[and_(ht.c.bpmn_id == sid, ht.c.version_id.in_(sorted(vs))) for sid, vs in sorted(by_step.items())]) \
        if by_step else ht.c.id < 0
    conds = [entry, ht.c.state != "cancelled"]
    if filters.office_id is not None:
        conds.append(ht.c.office_id == filters.office_id)
    rn = func.row_number().over(partition_by=ht.c.instance_id, order_by=(ht.c.ready_at, ht.c.id)).label("rn")
    return (select(ht.c.id, ht.c.instance_id, ht.c.office_id, pv.c.definition_id, ht.c.ready_at, rn)
            .select_from(ht.join(pv, pv.c.id == ht.c.version_id)).where(*conds).subquery())


def old_step(session: Session, scope: Scope, definition_id: int, bpmn_id: str) -> dict:
    """Name and Mutu Baku of a step the latest version no longer has (rare: read the older versions)."""
    versions = [v for v, d in scope.version_def.items() if d == definition_id]
    for steps in session.scalars(select(ProcessVersion.steps).where(ProcessVersion.id.in_(versions))
                                 .order_by(ProcessVersion.version.desc())):
        if bpmn_id in (steps or {}):
            return {"name": steps[bpmn_id].get("name") or bpmn_id, "mb": steps[bpmn_id].get("mutu_baku_minutes")}
    return {"name": bpmn_id, "mb": None}
