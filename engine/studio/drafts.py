"""An SOP's draft: opened from its latest version, saved (checked on every save), published.

One draft per SOP and office, shared by the office's process owners (engine/access.py's
`check_edit_process` on every call). A save names the `lock_version` it started from; a save
over a newer one is refused with who saved it, so two owners never overwrite each other
silently. Publishing deploys the draft's files through `engine.deploy.deploy_folder`, with the
change note in an audit record of the same transaction, and then deletes the draft.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import access
from ..accounts import office_by_code
from ..config import DeployLimits
from ..deploy import deploy_folder
from ..errors import Conflict, DeployError, LajurError, NotFound
from .. import limits as text_limits
from ..models import Office, ProcessDefinition, ProcessDraft, ProcessVersion, User
from ..uow import delete_draft, record_audit, write_draft
from .check import check_files
from .files import KEY, check_names, version_files, write_folder

MAX_NOTE = 2000


@dataclass(frozen=True)
class Draft:
    office_code: str
    key: str
    based_on_version: int | None
    files: dict[str, str]
    problems: list[dict]
    editor: str | None
    updated_at: datetime
    lock_version: int


class PublishRefused(LajurError):
    http_status = 422


def _actor_office(session: Session, user_id: int, office_code: str) -> tuple[User, Office]:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise access.Forbidden("unknown or inactive user")
    office = office_by_code(session, office_code)
    access.check_edit_process(access.Actor.of_user(user), office.id)
    return user, office


def _row(session: Session, office_id: int, key: str) -> ProcessDraft | None:
    return session.scalar(select(ProcessDraft).where(ProcessDraft.office_id == office_id, ProcessDraft.key == key))


def _view(session: Session, office: Office, row: ProcessDraft) -> Draft:
    editor = session.get(User, row.editor_id) if row.editor_id else None
    return Draft(office.code, row.key, row.based_on_version, dict(row.files), list(row.problems or []),
                 (editor.full_name or editor.username) if editor else None, row.updated_at, row.lock_version)


def latest_version(session: Session, office_id: int, key: str) -> ProcessVersion | None:
    d = session.scalar(select(ProcessDefinition).where(ProcessDefinition.office_id == office_id,
                                                       ProcessDefinition.key == key))
    return session.get(ProcessVersion, d.latest_version_id) if d is not None and d.latest_version_id else None


def get(session: Session, user_id: int, office_code: str, key: str) -> Draft | None:
    _user, office = _actor_office(session, user_id, office_code)
    row = _row(session, office.id, key)
    return _view(session, office, row) if row is not None else None


def open_draft(session: Session, user_id: int, office_code: str, key: str, limits: DeployLimits | None = None,
               now: datetime | None = None) -> Draft:
    """The SOP's draft; if it has none, a new one copied from its latest version."""
    user, office = _actor_office(session, user_id, office_code)
    row = _row(session, office.id, key)
    if row is None:
        version = latest_version(session, office.id, key)
        if version is None:
            raise NotFound(f"office {office.code!r} has no SOP {key!r}")
        create(session, user_id, office_code, key, version_files(version), version.version, limits, now)
        row = _row(session, office.id, key)
    return _view(session, office, row)


def create(session: Session, user_id: int, office_code: str, key: str, files: dict[str, str],
           based_on_version: int | None = None, limits: DeployLimits | None = None,
           now: datetime | None = None) -> list[dict]:
    """A new draft (new SOP, copy, upload); refused if the SOP already has one (discard it first)."""
    user, office = _actor_office(session, user_id, office_code)
    if not KEY.match(key or ""):
        raise DeployError(f"SOP key {key[:80]!r} is not valid: lowercase letters, digits and '-'")
    if _row(session, office.id, key) is not None:
        raise Conflict(f"SOP {key!r} already has a draft; open it, or discard it first")
    files = check_names(files, limits)
    problems, _package = check_files(session, office, key, files, limits)
    write_draft(session, draft_id=None, seen=None, office_id=office.id, key=key, based_on_version=based_on_version,
                files=files, problems=problems, editor_id=user.id, at=now or datetime.now(timezone.utc))
    return problems


def save(session: Session, user_id: int, office_code: str, key: str, files: dict[str, str], seen: int,
         limits: DeployLimits | None = None, now: datetime | None = None) -> Draft:
    """Save the whole folder over the draft last seen at `seen`; the answer carries the problems."""
    user, office = _actor_office(session, user_id, office_code)
    row = _row(session, office.id, key)
    if row is None:
        raise NotFound(f"SOP {key!r} has no draft")
    if row.lock_version != seen:
        other = session.get(User, row.editor_id) if row.editor_id else None
        raise Conflict(f"{(other.full_name or other.username) if other else 'someone'} saved this draft meanwhile; "
                       "reload it to see their changes")
    files = check_names(files, limits)
    problems, _package = check_files(session, office, key, files, limits)
    write_draft(session, draft_id=row.id, seen=seen, office_id=office.id, key=key,
                based_on_version=row.based_on_version, files=files, problems=problems, editor_id=user.id,
                at=now or datetime.now(timezone.utc))
    session.expire(row)
    return _view(session, office, _row(session, office.id, key))


def discard(session: Session, user_id: int, office_code: str, key: str) -> None:
    _user, office = _actor_office(session, user_id, office_code)
    row = _row(session, office.id, key)
    if row is not None:
        delete_draft(session, row.id, row.lock_version)


def publish(session: Session, user_id: int, office_code: str, key: str, seen: int, note: str, store,
            limits: DeployLimits | None = None, now: datetime | None = None) -> int:
    """Deploy the draft as the SOP's next version (deploy's own path); return its number.

    Refused while the validator reports any problem, without a change note, or if the draft
    changed since `seen`. Groups are never created from here: a lane must name a group.
    """
    user, office = _actor_office(session, user_id, office_code)
    note = text_limits.text("note", note, MAX_NOTE)
    if not note:
        raise PublishRefused("write a change note: what changed and why")
    row = _row(session, office.id, key)
    if row is None:
        raise NotFound(f"SOP {key!r} has no draft")
    if row.lock_version != seen:
        raise Conflict("the draft changed since you loaded it; reload it and publish again")
    files = check_names(dict(row.files), limits)
    problems, _package = check_files(session, office, key, files, limits)
    if problems:
        raise PublishRefused(f"the draft has {len(problems)} problem(s) left: {problems[0]['message']}")
    now = now or datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="lajur-publish-") as tmp:
        deployed = deploy_folder(session, write_folder(Path(tmp) / key, files), store, deployed_by=user, now=now,
                                 limits=limits)
    number = deployed.version.version
    record_audit(session, "process_published", office_id=office.id, user_id=user.id, at=now,
                 data={"key": key, "version": number, "based_on": row.based_on_version, "note": note,
                       "unchanged": not deployed.created})
    delete_draft(session, row.id, row.lock_version)
    return number


def change_notes(session: Session, office_id: int, key: str) -> dict[int, str]:
    """version -> its change note, for versions published from the studio."""
    from ..models import AuditEvent
    notes = {}
    for data in session.scalars(select(AuditEvent.data).where(AuditEvent.office_id == office_id,
                                                              AuditEvent.kind == "process_published")):
        if data and data.get("key") == key:
            notes[data["version"]] = data.get("note", "")
    return notes
