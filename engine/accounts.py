"""Offices, users, groups and roles.

Roles: `staff` works tasks, `supervisor` sees and steers the whole office's work,
`process_owner` deploys BPMN (deploying code), `office_admin` manages its office's groups and people, `admin`
manages accounts and sees every office (the regency view).
"""
from __future__ import annotations

import functools
import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import limits, registers
from .errors import FormInvalid, LajurError, NotFound
from .models import Group, Office, User

ROLES = ("staff", "supervisor", "process_owner", "office_admin", "admin")


def get_or_create_office(session: Session, code: str, name: str) -> Office:
    office = session.scalar(select(Office).where(Office.code == code))
    if office is None:
        office = Office(code=code, name=name)
        session.add(office)
        session.flush()
        registers.ensure_defaults(session, office)
    return office


def office_by_code(session: Session, code: str) -> Office:
    office = session.scalar(select(Office).where(Office.code == code))
    if office is None:
        raise NotFound(f"office {code!r} does not exist")
    return office


def ensure_group(session: Session, office: Office, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.office_id == office.id, Group.name == name))
    if group is None:
        group = Group(office_id=office.id, name=name)
        session.add(group)
        session.flush()
    return group


def group_by_name(session: Session, office: Office, name: str) -> Group:
    """An existing group of the office; the refusal lists the office's groups (none is created here)."""
    group = session.scalar(select(Group).where(Group.office_id == office.id, Group.name == name))
    if group is None:
        names = ", ".join(sorted(session.scalars(select(Group.name).where(Group.office_id == office.id)))) or "none"
        raise NotFound(f"office {office.code!r} has no group {name!r} (its groups: {names}); "
                       f"create it first (lajur group create {office.code} \"{name}\")")
    return group


def create_user(session: Session, username: str, password: str, full_name: str, office: Office | None,
                roles: tuple[str, ...] = ("staff",), groups: tuple[str, ...] = (), email: str | None = None,
                locale: str = "id") -> User:
    """Create a user; refuse duplicates, unknown roles and weak passwords."""
    username = limits.text("username", username, limits.USERNAME, required=True)
    full_name = limits.text("full_name", full_name, limits.FULL_NAME, required=True)
    email = limits.optional_text("email", email, limits.EMAIL)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise LajurError(f"user {username!r} already exists")
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise LajurError(f"unknown role(s): {', '.join(sorted(unknown))}")
    if len(password) < 8:
        raise LajurError("password must have at least 8 characters")
    if groups and office is None:
        raise LajurError("a user without an office cannot be in an office group")
    user = User(username=username, full_name=full_name, password_hash=generate_password_hash(password),
                office_id=office.id if office else None, roles=",".join(roles), email=email, locale=locale)
    user.groups = [group_by_name(session, office, g) for g in groups]
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """A new password; every session of the user ends (on every device)."""
    if len(password) < 8:
        raise LajurError("password must have at least 8 characters")
    limits.text("password", password, limits.PASSWORD)
    user.password_hash = generate_password_hash(password)
    user.session_epoch = (user.session_epoch or 0) + 1


def end_sessions(session: Session, user_id: int) -> None:
    """End every session of the user, on every device (sign-out): their cookies carry the old epoch."""
    session.execute(update(User).where(User.id == user_id).values(session_epoch=User.session_epoch + 1))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer for a wrong name or password).

    Callers on the web go through engine.throttle.sign_in, which counts failures."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or user.kind == "service":  # a service account only has API tokens
        check_password_hash(_dummy_hash(), password)  # same cost either way: no user enumeration by timing
        return None
    return user if check_password_hash(user.password_hash, password) else None


def user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user



@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("lajur-dummy-password")


CHANNELS = ("inapp", "email", "webhook")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def set_notification_preferences(user: User, channels: set[str], email: str | None,
                                 webhook_handle: str | None) -> None:
    """Which channels a user's reminders use; refuse a channel that cannot reach them."""
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise LajurError(f"unknown channel(s): {', '.join(sorted(unknown))}")
    email = limits.optional_text("email", email, limits.EMAIL)
    handle = limits.optional_text("webhook_handle", webhook_handle, limits.WEBHOOK_HANDLE)
    if email is not None and not _EMAIL.match(email):
        raise FormInvalid({"email": ["alamat email tidak valid / not a valid email address"]})
    if "email" in channels and email is None:
        raise FormInvalid({"email": ["wajib diisi untuk notifikasi email / required for email reminders"]})
    if "webhook" in channels and handle is None:
        raise FormInvalid({"webhook_handle": ["wajib diisi untuk webhook / required for webhook reminders"]})
    user.notify_channels = ",".join(c for c in CHANNELS if c in channels)
    user.email, user.webhook_handle = email, handle


# ---- services: each change in a transaction of its own on the caller's session factory --------
# (the web hands its request's one connection, engine.db.OneConnection; views change no rows)

def sign_out(sessions, user_id: int) -> None:
    """Sign-out: every session of the user ends (end_sessions), in one transaction."""
    with sessions.begin() as session:
        end_sessions(session, user_id)


def save_locale(sessions, user_id: int, locale: str, allowed) -> None:
    """The user's language for pages and reminders (one of `allowed`)."""
    if locale not in allowed:
        raise LajurError(f"unknown language {locale!r}")
    with sessions.begin() as session:
        session.execute(update(User).where(User.id == user_id).values(locale=locale))


def save_notification_preferences(sessions, user_id: int, channels: set[str], email: str | None,
                                  webhook_handle: str | None) -> None:
    """set_notification_preferences for the user, in one transaction (refused: nothing changes)."""
    with sessions.begin() as session:
        set_notification_preferences(session.get(User, user_id), channels, email, webhook_handle)
