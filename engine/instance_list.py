"""Listing an office's SOP instances with filters, and an SOP's versions (read only).

The API's instance list and version list read here; like the inbox they read mirrored
tables (`process_instance`, `human_task`), never a workflow. The office scope is the same
as Runtime.instance_detail's: staff see their office's instances, the regency admin
every office's. Pages are keyset pages on the instance id (newest first), so a page
costs the same at the start or deep in the list and rows arriving meanwhile do not
shift it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from .db import as_utc
from .errors import Forbidden, NotFound
from .models import HumanTask, ProcessDefinition, ProcessInstance, ProcessVersion, User

STATUSES = ("running", "completed", "error")
MAX_PAGE = 100


@dataclass(frozen=True)
class InstanceFilters:
    process: str | None = None        # the SOP's key
    status: str | None = None         # running|completed|error
    late: bool | None = None          # has an open step past its due time (clock not paused)
    started_from: datetime | None = None
    started_to: datetime | None = None  # exclusive
    subject: str | None = None        # text contained in the subject, any case
    officer: str | None = None        # username: started it, holds or completed a step of it


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


def _scope_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Forbidden("unknown or inactive user")
    return user


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_instances(session: Session, user_id: int, filters: InstanceFilters, now: datetime,
                   after_id: int | None = None, limit: int = 25) -> list[InstanceRow]:
    """One page (newest first) of the instances the user may see that match the filters.
    Pass the last row's id as `after_id` for the next page."""
    user = _scope_user(session, user_id)
    limit = max(1, min(limit, MAX_PAGE))
    pi, ht = ProcessInstance, HumanTask
    late = exists().where(ht.instance_id == pi.id, ht.state == "ready", ht.due_at < now, ht.paused_at.is_(None))
    q = (select(pi.id, ProcessDefinition.key, ProcessDefinition.name, ProcessVersion.version, pi.subject, pi.status,
                pi.started_at, pi.completed_at, User.full_name, late.label("late"))
         .join(ProcessVersion, ProcessVersion.id == pi.version_id)
         .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
         .outerjoin(User, User.id == pi.started_by_id))
    if not user.has_role("admin"):
        q = q.where(pi.office_id == user.office_id)
    if filters.process:
        q = q.where(ProcessDefinition.key == filters.process)
    if filters.status:
        q = q.where(pi.status == filters.status)
    if filters.late is not None:
        q = q.where(late if filters.late else ~late)
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
    if after_id is not None:
        q = q.where(pi.id < after_id)
    rows = session.execute(q.order_by(pi.id.desc()).limit(limit)).all()
    return [InstanceRow(id=r[0], process_key=r[1], process_name=r[2], version=r[3], subject=r[4], status=r[5],
                        started_at=as_utc(r[6]), completed_at=as_utc(r[7]), started_by=r[8], late=bool(r[9]))
            for r in rows]


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
