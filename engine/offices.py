"""Offices and their groups, as an administrator changes them (CLI and web alike).

A group of an office is what a BPMN lane names: deploy refuses a lane that is no group, so
groups are created here, explicitly. Each change writes its audit record in the caller's
transaction. `actor` None is the operator at the console; otherwise the rule is: an admin
may change any office, an office's `office_admin` only their own.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import access, registers
from .accounts import group_by_name, office_by_code, user_by_name
from .errors import Conflict, Forbidden, FormInvalid
from .models import Group, Office, ProcessDefinition, ProcessVersion, User, user_group
from .uow import record_audit

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
MAX_NAME = 200


def may_administer(actor: User | None, office: Office) -> bool:
    """The rule is engine/access.py's; this takes the ORM user the pages and the CLI hold."""
    return access.may_administer(access.Actor.of_user(actor) if actor is not None else None, office.id)


def _check(actor: User | None, office: Office) -> None:
    access.check_administer(access.Actor.of_user(actor) if actor is not None else None, office.id)


def _audit(session: Session, office: Office, actor: User | None, kind: str, data: dict) -> None:
    record_audit(session, kind, office_id=office.id, user_id=actor.id if actor else None,
                 at=datetime.now(timezone.utc), data=data)


def _clean_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise FormInvalid({field: ["wajib diisi / required"]})
    if len(name) > MAX_NAME or not name.isprintable():
        raise FormInvalid({field: [f"paling banyak {MAX_NAME} karakter tanpa baris baru / "
                                   f"at most {MAX_NAME} characters, no line breaks"]})
    return name


def create_office(session: Session, code: str, name: str, timezone_name: str = "Asia/Jakarta",
                  actor: User | None = None) -> Office:
    if actor is not None and not actor.has_role("admin"):
        raise Forbidden("only an admin may create an office")
    code = (code or "").strip().lower()
    if not _CODE.match(code):
        raise FormInvalid({"code": ["2-32 huruf kecil, angka atau - / 2-32 lowercase letters, digits or -"]})
    name = _clean_name(name)
    if session.scalar(select(Office.id).where(Office.code == code)) is not None:
        raise Conflict(f"office {code!r} already exists")
    office = Office(code=code, name=name, timezone=timezone_name)
    session.add(office)
    session.flush()
    registers.ensure_defaults(session, office)  # the Buku Agenda and the Daftar Arsip
    _audit(session, office, actor, "office_created", {"code": code, "name": name})
    return office


def list_offices(session: Session) -> list[Office]:
    return list(session.scalars(select(Office).order_by(Office.code)))


def create_group(session: Session, office_code: str, name: str, actor: User | None = None) -> Group:
    office = office_by_code(session, office_code)
    _check(actor, office)
    name = _clean_name(name)
    if session.scalar(select(Group.id).where(Group.office_id == office.id, Group.name == name)) is not None:
        raise Conflict(f"office {office.code!r} already has group {name!r}")
    group = Group(office_id=office.id, name=name)
    session.add(group)
    session.flush()
    _audit(session, office, actor, "group_created", {"group": name})
    return group


def groups_with_members(session: Session, office_code: str) -> list[tuple[Group, list[User]]]:
    """The office's groups, each with its members (two queries)."""
    office = office_by_code(session, office_code)
    groups = list(session.scalars(select(Group).where(Group.office_id == office.id).order_by(Group.name)))
    rows = session.execute(select(user_group.c.group_id, User).join(User, User.id == user_group.c.user_id)
                           .where(user_group.c.group_id.in_([g.id for g in groups])).order_by(User.username))
    members: dict[int, list[User]] = {}
    for group_id, user in rows:
        members.setdefault(group_id, []).append(user)
    return [(g, members.get(g.id, [])) for g in groups]


def set_membership(session: Session, office_code: str, group_name: str, username: str, member: bool,
                   actor: User | None = None) -> bool:
    """Add (member=True) or remove a user; returns whether anything changed."""
    office = office_by_code(session, office_code)
    _check(actor, office)
    group = group_by_name(session, office, group_name)
    user = user_by_name(session, username)
    if user.office_id != office.id:
        raise Forbidden(f"user {username!r} is not of office {office.code!r}")
    present = session.scalar(select(func.count()).select_from(user_group).where(
        user_group.c.group_id == group.id, user_group.c.user_id == user.id)) > 0
    if present == member:
        return False
    if member:
        session.execute(user_group.insert().values(group_id=group.id, user_id=user.id))
    else:
        session.execute(user_group.delete().where(user_group.c.group_id == group.id,
                                                  user_group.c.user_id == user.id))
    _audit(session, office, actor, "group_member_added" if member else "group_member_removed",
           {"group": group.name, "user": user.username})
    return True


def office_users(session: Session, office_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.office_id == office_id).order_by(User.username)))


def sop_owners(session: Session, office_id: int) -> list[dict]:
    """Each SOP of the office with its latest version, who deployed it and the office's process owners."""
    owners = [u for u in office_users(session, office_id) if u.has_role("process_owner")]
    rows = session.execute(
        select(ProcessDefinition.key, ProcessDefinition.name, ProcessVersion.version, ProcessVersion.deployed_at,
               User.username)
        .join(ProcessVersion, ProcessVersion.id == ProcessDefinition.latest_version_id)
        .outerjoin(User, User.id == ProcessVersion.deployed_by_id)
        .where(ProcessDefinition.office_id == office_id).order_by(ProcessDefinition.name))
    return [{"key": key, "name": name, "version": version, "deployed_at": at, "deployed_by": by,
             "owners": [u.username for u in owners]} for key, name, version, at, by in rows]


# Roles an office administrator may give; `admin` (the regency) only an admin may give.
OFFICE_ROLES = ("staff", "supervisor", "process_owner", "office_admin")


def set_roles(session: Session, office_code: str, username: str, roles: set[str], actor: User | None = None) -> User:
    office = office_by_code(session, office_code)
    _check(actor, office)
    user = user_by_name(session, username)
    if user.office_id != office.id:
        raise Forbidden(f"user {username!r} is not of office {office.code!r}")
    unknown = set(roles) - set(OFFICE_ROLES)
    if unknown:
        raise FormInvalid({"roles": [f"peran tidak dikenal / unknown role: {', '.join(sorted(unknown))}"]})
    if not roles:
        raise FormInvalid({"roles": ["pilih paling sedikit satu peran / choose at least one role"]})
    if actor is not None and actor.id == user.id and "office_admin" not in roles and not actor.has_role("admin"):
        raise FormInvalid({"roles": ["Anda tidak dapat mencabut peran admin kantor Anda sendiri / "
                                     "you cannot remove your own office_admin role"]})
    before = user.roles
    user.roles = ",".join(r for r in OFFICE_ROLES if r in roles)
    _audit(session, office, actor, "roles_changed", {"user": user.username, "before": before, "after": user.roles})
    return user
