"""Sign-in throttling shared by every web process: each failure is a row in the database.

Counting in the database (not in one process's memory) means two gunicorn workers, or
two servers, see the same count; the rows are keyed by account and by client address, so
both guessing one account's password and spraying one password over many accounts from
one address are slowed down. An account with many failures in a longer window is locked
until `locked_until`; an administrator lifts that (`lajur user unlock NAME`, `unlock()`).

An attempt is recorded *before* the password is checked and counted in the same
transaction, so racing attempts from several processes cannot all slip under the limit;
a successful sign-in deletes the account's failures.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from . import limits
from .accounts import authenticate
from .db import as_utc
from .errors import LajurError
from .models import LoginFailure, User


@dataclass(frozen=True)
class Policy:
    account_limit: int = 10          # failures of one account per window, then 429
    address_limit: int = 20          # failures from one address per window (any accounts), then 429
    window: timedelta = timedelta(minutes=1)
    lockout_failures: int = 30       # failures of one account within lockout_window lock it
    lockout_window: timedelta = timedelta(minutes=15)
    lockout_for: timedelta = timedelta(minutes=30)
    keep: timedelta = timedelta(days=1)  # failure rows older than this are deleted


class Throttled(LajurError):
    """Too many failed sign-ins for this account or from this address; try later."""

    http_status = 429


class Locked(Throttled):
    """The account is locked after many failed sign-ins until an admin unlocks it (or the lock ends)."""


def _key(value: str | None) -> str:
    """A bounded, storable key: NUL and overlong names are refused by the login anyway."""
    return (value or "").replace("\x00", "?").strip()[:limits.USERNAME]


def sign_in(sessions: sessionmaker[Session], username: str, password: str, address: str | None, now: datetime,
            policy: Policy = Policy()) -> User | None:
    """The user for these credentials, None for wrong ones; Throttled/Locked when over a limit.

    Runs its own transactions (the failure must be stored even though the answer is "no").
    """
    name, addr = _key(username), (address or "-")[:64]
    with sessions.begin() as session:
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - policy.keep))
        session.add(LoginFailure(username=name, address=addr, at=now))
        session.flush()
        since = now - policy.window
        by_account = session.scalar(select(func.count()).where(LoginFailure.username == name,
                                                               LoginFailure.at > since))
        by_address = session.scalar(select(func.count()).where(LoginFailure.address == addr,
                                                               LoginFailure.at > since))
        locked_until = session.scalar(select(User.locked_until).where(User.username == name))
    if locked_until is not None and as_utc(locked_until) > now:
        raise Locked("account locked after too many failed sign-ins")
    if by_account > policy.account_limit or by_address > policy.address_limit:
        raise Throttled("too many failed sign-ins; wait a minute")
    valid = _valid(username, password)
    with sessions.begin() as session:
        user = authenticate(session, username, password) if valid else None
        if user is not None:
            session.execute(delete(LoginFailure).where(LoginFailure.username == name))
            session.expunge(user)
            return user
        recent = session.scalar(select(func.count()).where(LoginFailure.username == name,
                                                           LoginFailure.at > now - policy.lockout_window))
        if recent >= policy.lockout_failures:
            session.execute(User.__table__.update().where(User.username == name)
                            .values(locked_until=now + policy.lockout_for))
        return None


def _valid(username: str, password: str) -> bool:
    """Whether the credentials can be looked up at all (no NUL, within the column, not empty)."""
    try:
        limits.text("username", username, limits.USERNAME, required=True)
        limits.text("password", password, limits.PASSWORD, required=True)
    except LajurError:
        return False
    return True


def unlock(session: Session, user: User) -> None:
    """Lift a lockout and forget the account's failures (an administrator's action)."""
    user.locked_until = None
    session.execute(delete(LoginFailure).where(LoginFailure.username == _key(user.username)))
