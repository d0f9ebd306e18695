"""The tamper-evident audit trail: each audit row's hash is chained to the previous row of
its chain, and the chain's head is kept on the row that owns it.

A chain is the audit rows of one instance (head: `process_instance.audit_hash`), or, for
rows outside any instance (deployments, calendar changes), of one office (head:
`office.audit_hash`), in id order. A row's hash is SHA-256 over the previous row's hash and
the row's content in canonical JSON. The unit of work (engine/uow.py) computes it when it
writes the row, in the same batch, under the lock of the chain's owner row, so chains never
fork. `verify` recomputes every chain and reports the first broken link: an edited row (its
hash no longer matches), a deleted or reordered row (the next row's link breaks), or cut-off
rows at the end (the owner's head no longer matches). What it cannot see is an attacker who
rewrites a whole chain and its head consistently; export the heads elsewhere for that.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import as_utc
from .models import AuditEvent, Office, ProcessInstance

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def chain_key(instance_id: int | None, office_id: int | None) -> tuple[str, int | None]:
    return ("instance", instance_id) if instance_id is not None else ("office", office_id)


def row_hash(previous: str | None, row: dict) -> str:
    """The hash of an audit row (the columns the unit of work writes) after `previous`."""
    at = as_utc(row["at"])
    content = [row["office_id"], row["instance_id"], row["human_task_id"], row["user_id"],
               at.isoformat(timespec="microseconds") if isinstance(at, datetime) else at,
               row["kind"], row["step"], row["data"]]
    return hashlib.sha256((previous or "").encode() + b"\n" + orjson.dumps(content, option=_CANONICAL)).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    instance_id: int | None
    office_id: int | None
    audit_id: int | None  # None: the chain's head on its owner row does not match
    reason: str

    def __str__(self) -> str:
        owner = f"instance {self.instance_id}" if self.instance_id is not None else f"office {self.office_id}"
        where = f"audit row {self.audit_id}" if self.audit_id is not None else "the chain's head"
        return f"{owner}: {where}: {self.reason}"


@dataclass(frozen=True)
class Verified:
    rows: int
    chains: int
    broken: BrokenLink | None


_COLUMNS = (AuditEvent.id, AuditEvent.office_id, AuditEvent.instance_id, AuditEvent.human_task_id,
            AuditEvent.user_id, AuditEvent.at, AuditEvent.kind, AuditEvent.step, AuditEvent.data, AuditEvent.hash)


def verify(session: Session, instance_id: int | None = None) -> Verified:
    """Recompute one instance's chain (or every chain) and report the first broken link."""
    query = select(*_COLUMNS)
    if instance_id is not None:
        query = query.where(AuditEvent.instance_id == instance_id)
    heads: dict[tuple, str | None] = {}
    rows = 0
    for r in session.execute(query.order_by(AuditEvent.instance_id, AuditEvent.office_id, AuditEvent.id)
                             .execution_options(yield_per=2000)):
        rows += 1
        key = chain_key(r.instance_id, r.office_id)
        expected = row_hash(heads.get(key) if key[1] is not None else None, r._asdict())
        if r.hash != expected:
            return Verified(rows, len(heads), BrokenLink(r.instance_id, r.office_id, r.id, "its hash does not match "
                            "its content and the row before it (edited, or a row before it deleted or changed)"))
        heads[key] = expected
    owners = select(ProcessInstance.id, ProcessInstance.audit_hash)
    if instance_id is not None:
        owners = owners.where(ProcessInstance.id == instance_id)
    stored = [(("instance", i), h) for i, h in session.execute(owners)]
    if instance_id is None:
        stored += [(("office", i), h) for i, h in session.execute(select(Office.id, Office.audit_hash))]
    for key, head in stored:
        if head != heads.get(key):
            return Verified(rows, len(heads), BrokenLink(key[1] if key[0] == "instance" else None,
                                                          key[1] if key[0] == "office" else None, None,
                                                          "the last rows of the chain are missing or were changed"))
    return Verified(rows, len(heads), None)
