"""API credentials: personal access tokens and service accounts.

A token is `lajur_<prefix>_<secret>`: the prefix (12 hex characters, not secret) finds its
row by a unique index, the SHA-256 of the whole token is compared in constant time. Only
the hash is stored; the token is shown once, when it is made. Every token has a scope
(read: GET only; write: also changes) and an expiry; revoking is immediate.

A service account is a user of kind "service" of one office, with the lanes (groups) it
works in: the same office and lane rules apply to it as to a person. It has no usable
password (it cannot sign in to the web), only tokens, which its office's administrator
(or the operator at the CLI) makes for it.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .accounts import create_user
from .errors import Forbidden, FormInvalid, NotFound
from .models import ApiToken, Office, User

SCOPES = ("read", "write")
MAX_DAYS = 366
MAX_TOKENS_PER_USER = 50
_PREFIX = "lajur_"


@dataclass(frozen=True)
class TokenAuth:
    """Who a valid token speaks for."""

    token_id: int
    user_id: int
    scope: str

    @property
    def may_write(self) -> bool:
        return self.scope == "write"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str, scope: str, days: int, now: datetime) -> tuple[ApiToken, str]:
    """Make a token for `user`; return its row and the token itself (shown once, never stored)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["wajib diisi, maks. 100 karakter / required, at most 100 characters"]
    if scope not in SCOPES:
        errors["scope"] = ["pilih read atau write / choose read or write"]
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        errors["days"] = [f"antara 1 dan {MAX_DAYS} hari / between 1 and {MAX_DAYS} days"]
    if errors:
        raise FormInvalid(errors)
    if not user.active:
        raise Forbidden("unknown or inactive user")
    live = session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
                                                     ApiToken.expires_at > now)).all()
    if len(live) >= MAX_TOKENS_PER_USER:
        raise FormInvalid({"name": [f"paling banyak {MAX_TOKENS_PER_USER} token aktif / at most "
                                    f"{MAX_TOKENS_PER_USER} live tokens"]})
    prefix = secrets.token_hex(6)
    token = f"{_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken(user_id=user.id, name=name, prefix=prefix, token_hash=_hash(token), scope=scope,
                   created_at=now, expires_at=now + timedelta(days=days))
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token(session: Session, user_id: int, token_id: int, now: datetime) -> None:
    """Revoke one of the user's own tokens (another user's token is 'not found')."""
    row = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = now


_LOOKUP = (select(ApiToken.id, ApiToken.user_id, ApiToken.scope, ApiToken.token_hash)
           .join(User, User.id == ApiToken.user_id)
           .where(ApiToken.prefix == bindparam("prefix"), ApiToken.revoked_at.is_(None),
                  ApiToken.expires_at > bindparam("now"), User.active.is_(True)))


def resolve(conn, token: str, now: datetime) -> TokenAuth | None:
    """The live token this is (not revoked, not expired, its user active), or None.
    `conn` is a Session or a Connection; one indexed read."""
    if not isinstance(token, str) or not token.startswith(_PREFIX) or len(token) > 200:
        return None
    prefix, sep, _secret = token[len(_PREFIX):].partition("_")
    if not sep or len(prefix) != 12:
        return None
    row = conn.execute(_LOOKUP, {"prefix": prefix, "now": now}).first()
    if row is None or not hmac.compare_digest(row[3], _hash(token)):
        return None
    return TokenAuth(token_id=row[0], user_id=row[1], scope=row[2])


def create_service_account(session: Session, office: Office, username: str, full_name: str,
                           groups: tuple[str, ...], roles: tuple[str, ...] = ("staff",)) -> User:
    """A machine user of the office working in `groups`; it has no usable password."""
    if "admin" in roles:
        raise Forbidden("a service account cannot be a regency admin")
    user = create_user(session, username, secrets.token_urlsafe(32), full_name, office, roles=roles, groups=groups)
    user.password_hash = "!service"  # matches no password: a service account never signs in
    user.kind = "service"
    session.flush()
    return user


def may_manage_service_accounts(user: User, office_id: int) -> bool:
    """An office's administrator: the regency admin, or a supervisor of that office."""
    return user.has_role("admin") or (user.has_role("supervisor") and user.office_id == office_id)


# ---- services: each in a transaction of its own on the caller's session factory -------------------

def issue_token(sessions, owner_id: int, name: str, scope: str, days: int, now: datetime) -> str:
    """create_token for `owner_id`, committed; returns the token (shown once)."""
    with sessions.begin() as session:
        return create_token(session, session.get(User, owner_id), name, scope, days, now)[1]


def revoke(sessions, user_id: int, token_id: int, now: datetime) -> None:
    with sessions.begin() as session:
        revoke_token(session, user_id, token_id, now)
