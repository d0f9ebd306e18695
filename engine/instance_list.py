"""Listing SOP instances with filters, and an SOP's versions (read only).

The one query path of the instance list, for the API (`/api/v1/instances`) and the web
(`/instances`, with its CSV/XLSX export). Like the inbox it reads mirrored tables
(`process_instance`, `human_task`), never a workflow. Who sees which instances is
engine/access.py's `instance_list_scope`: admins every office's, supervisors their
office's, anyone else the instances they started or held or completed a step of. "Late"
is engine/sla.py's `overdue_sql` (an open step past its due time, clock not paused).

Pages are keyset pages, so a page costs the same at the start or deep in the list and rows
arriving meanwhile do not shift it: on the instance id for "new" (newest first, the
default) and "old" (oldest first), on (earliest due time of an open step, id) for "due"
(soonest due first; instances with no open timed step after all others).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from . import access
from .db import as_utc
from .errors import Forbidden, NotFound
from .models import HumanTask, ProcessDefinition, ProcessInstance, ProcessVersion, User
from .sla import is_overdue, overdue_sql

STATUSES = ("running", "completed", "incident", "error")
SORTS = ("new", "old", "due")
MAX_PAGE = 100
# "no open timed step" sorts after every real due time (a fixed far date keeps the keyset simple)
NO_DUE = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass(frozen=True)
class InstanceFilters:
    process: str | None = None        # the SOP's key
    status: str | None = None         # running|completed|incident|error
    late: bool | None = None          # has an open step past its due time (clock not paused)
    started_from: datetime | None = None
    started_to: datetime | None = None  # exclusive
    subject: str | None = None        # text contained in the subject, any case
    officer: str | None = None        # username: started it, holds or completed a step of it
    step: str | None = None           # the BPMN id of a step open now (the current step)
    office_id: int | None = None      # admins only: one office (others always see their own)


@dataclass(frozen=True)
class InstanceRow:
    id: int
    process_key: str
    process_name: str
    version: int
    subject: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    started_by: str | None
    late: bool
    next_due_at: datetime | None = None  # the earliest due time of its open steps


@dataclass(frozen=True)
class OpenStep:
    """An open step of a listed instance (the list's "current step" column)."""

    id: int
    instance_id: int
    bpmn_id: str
    name: str
    holder: str | None
    due_at: datetime | None
    paused: bool
    late: bool


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def cursor_of(row: InstanceRow, sort: str) -> tuple:
    """The keyset position after `row` in `sort` order (what `after` takes)."""
    return (as_utc(row.next_due_at) or NO_DUE, row.id) if sort == "due" else (row.id,)


def list_instances(session: Session, user_id: int, filters: InstanceFilters, now: datetime,
                   after_id: int | None = None, limit: int = 25, sort: str = "new",
                   after: tuple | None = None) -> list[InstanceRow]:
    """One page of the instances the user may see that match the filters, in `sort` order.
    Pass `cursor_of(last row, sort)` as `after` (or the last id as `after_id`) for the next page."""
    actor = access.load_actor(session, user_id)
    scope = access.instance_list_scope(actor)
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    limit = max(1, min(limit, MAX_PAGE))
    pi, ht = ProcessInstance, HumanTask
    late = exists().where(ht.instance_id == pi.id, overdue_sql(ht, now))
    office = filters.office_id if scope == "all" else actor.office_id
    if scope != "all" and office is None:
        raise Forbidden("only members of an office list its instances")
    if sort == "due":
        # every instance's earliest open due time is needed to sort: one grouped scan of the
        # office's open steps (ix_human_task_office) joined in, not a lookup per instance
        open_due = select(ht.instance_id.label("instance_id"), func.min(ht.due_at).label("due")) \
            .where(ht.state == "ready", *([ht.office_id == office] if office is not None else [])) \
            .group_by(ht.instance_id).subquery()
        next_due = open_due.c.due
    else:  # a page of rows: the lookup per row is cheaper
        next_due = (select(func.min(ht.due_at)).where(ht.instance_id == pi.id, ht.state == "ready")
                    .correlate(pi).scalar_subquery())
    due_key = func.coalesce(next_due, literal(NO_DUE, type_=pi.started_at.type))
    q = (select(pi.id, ProcessDefinition.key, ProcessDefinition.name, ProcessVersion.version, pi.subject, pi.status,
                pi.started_at, pi.completed_at, User.full_name, late.label("late"), next_due.label("next_due"))
         .join(ProcessVersion, ProcessVersion.id == pi.version_id)
         .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
         .outerjoin(User, User.id == pi.started_by_id))
    if sort == "due":
        q = q.outerjoin(open_due, open_due.c.instance_id == pi.id)
    if office is not None:
        q = q.where(pi.office_id == office)
    if scope == "own":
        took_part = exists().where(ht.instance_id == pi.id,
                                   or_(ht.assignee_id == actor.id, ht.completed_by_id == actor.id))
        q = q.where(or_(pi.started_by_id == actor.id, took_part))
    if filters.process:
        q = q.where(ProcessDefinition.key == filters.process)
    if filters.status:
        q = q.where(pi.status == filters.status)
    if filters.late is not None:
        q = q.where(late if filters.late else ~late)
    if filters.step:
        q = q.where(exists().where(ht.instance_id == pi.id, ht.state == "ready", ht.bpmn_id == filters.step))
    if filters.started_from:
        q = q.where(pi.started_at >= filters.started_from)
    if filters.started_to:
        q = q.where(pi.started_at < filters.started_to)
    if filters.subject:
        q = q.where(pi.subject.ilike(_like(filters.subject), escape="\\"))
    if filters.officer:
        officer = session.scalar(select(User.id).where(User.username == filters.officer))
        if officer is None:
            return []
        worked = exists().where(ht.instance_id == pi.id, or_(ht.assignee_id == officer, ht.completed_by_id == officer))
        q = q.where(or_(pi.started_by_id == officer, worked))
    if after is None and after_id is not None:
        after = (after_id,)
    if sort == "due":
        if after is not None:
            q = q.where(or_(due_key > after[0], and_(due_key == after[0], pi.id > after[1])))
        q = q.order_by(due_key, pi.id)
    elif sort == "old":
        if after is not None:
            q = q.where(pi.id > after[0])
        q = q.order_by(pi.id)
    else:
        if after is not None:
            q = q.where(pi.id < after[0])
        q = q.order_by(pi.id.desc())
    rows = session.execute(q.limit(limit)).all()
    return [InstanceRow(id=r[0], process_key=r[1], process_name=r[2], version=r[3], subject=r[4], status=r[5],
                        started_at=as_utc(r[6]), completed_at=as_utc(r[7]), started_by=r[8], late=bool(r[9]),
                        next_due_at=as_utc(r[10]))
            for r in rows]


def open_steps(session: Session, instance_ids: list[int], now: datetime) -> dict[int, list[OpenStep]]:
    """The open steps of the listed instances (one query), soonest due first."""
    if not instance_ids:
        return {}
    ht = HumanTask
    rows = session.execute(select(ht.id, ht.instance_id, ht.bpmn_id, ht.name, User.full_name, ht.due_at,
                                  ht.paused_at, ht.state)
                           .outerjoin(User, User.id == ht.assignee_id)
                           .where(ht.instance_id.in_(instance_ids), ht.state == "ready")
                           .order_by(ht.instance_id, ht.due_at, ht.id)).all()
    out: dict[int, list[OpenStep]] = {}
    for r in rows:
        due, paused = as_utc(r[5]), as_utc(r[6])
        out.setdefault(r[1], []).append(OpenStep(r[0], r[1], r[2], r[3], r[4], due, paused is not None,
                                                 is_overdue(r[7], due, paused, now)))
    return out


def _scope_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Forbidden("unknown or inactive user")
    return user


@dataclass(frozen=True)
class VersionRow:
    id: int
    version: int
    deployed_at: datetime
    deployed_by: str | None
    latest: bool
    steps: int


def process_versions(session: Session, user_id: int, key: str) -> tuple[ProcessDefinition, list[VersionRow]]:
    """An SOP of the user's office and its deployed versions, newest first."""
    user = _scope_user(session, user_id)
    definition = session.scalar(select(ProcessDefinition).where(ProcessDefinition.key == key,
                                                                ProcessDefinition.office_id == user.office_id))
    if definition is None:
        raise NotFound(f"process {key!r} does not exist in your office")
    rows = session.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.deployed_at,
                                  User.full_name, ProcessVersion.steps)
                           .outerjoin(User, User.id == ProcessVersion.deployed_by_id)
                           .where(ProcessVersion.definition_id == definition.id)
                           .order_by(ProcessVersion.version.desc())).all()
    return definition, [VersionRow(id=r[0], version=r[1], deployed_at=as_utc(r[2]), deployed_by=r[3],
                                   latest=r[0] == definition.latest_version_id, steps=len(r[4] or {}))
                        for r in rows]


def instances_table(rows: list[InstanceRow], steps: dict[int, list[OpenStep]], tz: str = "Asia/Jakarta"):
    """The listed instances as a dashboard `Table` (the one shape the CSV and XLSX exports write):
    one line per instance, its open steps joined, times in the office's zone."""
    from .dashboard.tables import Table, local_time
    out = []
    for r in rows:
        open_ = steps.get(r.id, [])
        out.append((r.id, r.process_name, r.subject, r.status, "; ".join(s.name for s in open_) or None,
                    "; ".join(s.holder or "–" for s in open_) or None, local_time(r.next_due_at, tz), r.late,
                    local_time(r.started_at, tz), r.started_by, local_time(r.completed_at, tz)))
    return Table("instances", ("instance", "process", "subject", "state", "step", "person", "due_at", "late",
                               "started_at", "started_by", "completed_at"), out)
