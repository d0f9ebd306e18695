"""Reading incidents: the office's list (open or all) and the open incidents of one instance.

Reads only, office-scoped on the server by the rules of engine/access.py: the list is for
the office's process owners and supervisors (admins: any office; the console: all).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from . import access
from .db import as_utc
from .errors import NotFound
from .incidents import text_of
from .models import Incident, Office, ProcessDefinition, ProcessInstance, ProcessVersion, User

if TYPE_CHECKING:
    from .runtime import Runtime

MAX_PAGE = 200


@dataclass(frozen=True)
class IncidentRow:
    id: int
    office_code: str
    instance_id: int
    subject: str
    sop: str
    version: int
    element_id: str
    element_name: str
    kind: str
    message: str
    text_id: str
    text_en: str
    attempts: int
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def text(self, locale: str) -> str:
        return self.text_en if locale == "en" else self.text_id


def list_incidents(rt: "Runtime", user_id: int | None, office_code: str | None = None, open_only: bool = True,
                   limit: int = 100, offset: int = 0) -> list[IncidentRow]:
    """Newest first. A user sees their own office's (an admin any office, or every office with
    no `office_code`); `user_id` None is the console operator (every office)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    with rt.sessions() as session:
        actor = None if user_id is None else access.load_actor(session, user_id)
        office_id = None
        if office_code is not None:
            office_id = session.scalar(select(Office.id).where(Office.code == office_code))
            if office_id is None:
                raise NotFound(f"office {office_code!r} does not exist")
        elif actor is not None and not actor.has_role("admin"):
            office_id = actor.office_id
        access.check_see_incidents(actor, office_id)
        resolver = aliased(User)
        q = (select(Incident, Office.code, ProcessInstance.subject, ProcessDefinition.name, ProcessVersion.version,
                    resolver.username)
             .join(Office, Office.id == Incident.office_id)
             .join(ProcessInstance, ProcessInstance.id == Incident.instance_id)
             .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
             .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
             .outerjoin(resolver, resolver.id == Incident.resolved_by_id))
        if office_id is not None:
            q = q.where(Incident.office_id == office_id)
        if open_only:
            q = q.where(Incident.resolved_at.is_(None))
        rows = session.execute(q.order_by(Incident.id.desc()).limit(limit).offset(max(0, int(offset)))).all()
        return [_row(i, code, subject, sop, version, by) for i, code, subject, sop, version, by in rows]


def _row(i: Incident, code, subject, sop, version, by) -> IncidentRow:
    return IncidentRow(i.id, code, i.instance_id, subject, sop, version, i.element_id, i.element_name, i.kind,
                       i.message, text_of(i, "id"), text_of(i, "en"), i.attempts, as_utc(i.opened_at),
                       as_utc(i.resolved_at), by)


def of_instance(session: Session, instance_id: int, open_only: bool = True) -> list[Incident]:
    """An instance's incidents (the caller checked that the user may see the instance)."""
    q = select(Incident).where(Incident.instance_id == instance_id)
    if open_only:
        q = q.where(Incident.resolved_at.is_(None))
    return list(session.scalars(q.order_by(Incident.id)))
