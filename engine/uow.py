"""The unit of work: the one write path for instance state.

Every state change of a running SOP (start, claim, unclaim, reassign, draft, complete,
pause, resume, re-time, BPMN timer fire, reminder fire and repeat, cancel) records its
writes here, and this module alone writes the rows of those tables:

| rows | the one writer |
|---|---|
| `audit_event` | `UnitOfWork.audit` (and `record_audit` for changes outside an instance) |
| `human_task` | `UnitOfWork.open_task` (a step became ready), `UnitOfWork.task` (any change of an open step) |
| `deadline` | `UnitOfWork.add_deadlines`, `UnitOfWork.deadlines` (all of a step's), `UnitOfWork.deadline` (one) |
| `task_pause` | `UnitOfWork.pause_opened`, `UnitOfWork.pause_closed` |
| `pause_request` | `UnitOfWork.pause_requested`, `UnitOfWork.pause_decided` |
| `delivery` (cancel only) | `UnitOfWork.cancel_deliveries` |
| `process_instance` | `UnitOfWork.new_instance`, `UnitOfWork.instance` (guarded by `lock_version`; with `version_id` it also moves the instance to another version of its SOP, engine/migration.py) |
| `incident` | `UnitOfWork.open_incident`, `UnitOfWork.incident` (retried, resolved; guarded: still open) |
| `notification` (of an incident, of a pause request) | `UnitOfWork.notify` (reminders' rows are the deadline tick's, engine/tick.py) |
| `process_draft` | `write_draft`, `delete_draft` (the studio's drafts, guarded by their own `lock_version`) |
| `delivery` (an event webhook's) | `UnitOfWork.flush`, with the event's audit row (engine/webhooks/events.py) |

Usage, inside the caller's transaction (a Session from `sessionmaker.begin()`)::

    uow = UnitOfWork(SqlTx(session))
    uow.task(task_id, {"assignee_id": user_id, "claimed_at": now}, expect={"state": "ready", "assignee_id": None})
    uow.audit("task_claimed", office_id=..., instance_id=..., human_task_id=task_id, user_id=user_id, at=now)
    uow.instance(instance_id, seen=lock_version, state=..., status=..., completed_at=..., next_timer_at=...)
    uow.flush()   # one batch: one round trip on PostgreSQL; raises Conflict if a guarded write missed

Writes are sent in the order they were recorded, audit rows after the rest (they refer to
the steps inserted before them), the guarded instance write last. Each audit row gets its
hash chained to the previous row of its instance (or office) here, and the chain's head
moves on its owner row in the same batch (engine/audit.py). A caller that read the head
under the owner's lock says so (`known_head`, saves a round trip); otherwise `flush` reads
it with `FOR UPDATE` first. A write given `expect`
(or the instance write) is guarded: if it does not change exactly one row, `flush` raises
`Conflict` and the caller's transaction rolls back. That is the one optimistic lock: the
instance's `lock_version` (the ORM has no version counter of its own).

Statements are SQLAlchemy Core statements over the tables of engine/models.py, built once
per shape and compiled once per dialect (engine/sqltx.py). A later feature (migrating an
instance, incidents, registers) adds a writer method here, next to the ones above.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import Table, bindparam, delete, insert, null, or_, select, update
from sqlalchemy.orm import Session

from .audit import chain_key, row_hash
from .errors import Conflict
from .models import (AuditEvent, Deadline, Delivery, HumanTask, Incident, Notification, Office, PauseRequest,
                     ProcessDraft, ProcessInstance, TaskPause)
from .sqltx import SqlTx, Stmt
from .webhooks import events as webhook_events

_AUDIT = AuditEvent.__table__
_TASK = HumanTask.__table__
_DEADLINE = Deadline.__table__
_PAUSE = TaskPause.__table__
_INSTANCE = ProcessInstance.__table__
_DELIVERY = Delivery.__table__
_OFFICE = Office.__table__
_PAUSE_REQUEST = PauseRequest.__table__
_INCIDENT = Incident.__table__
_NOTIFICATION = Notification.__table__


def defaults(table: Table) -> dict:
    """The scalar Python-side defaults of a table's columns (written once, in engine/models.py)."""
    return {c.name: c.default.arg for c in table.columns
            if c.default is not None and c.default.is_scalar}


def _insert(table: Table, columns: tuple[str, ...]) -> Stmt:
    return Stmt(insert(table).values({c: bindparam(c) for c in columns}))


_AUDIT_COLUMNS = ("office_id", "instance_id", "human_task_id", "user_id", "at", "kind", "step", "data", "hash")
INSERT_AUDIT = _insert(_AUDIT, _AUDIT_COLUMNS)
_TASK_COLUMNS = ("id", "task_guid", "instance_id", "office_id", "version_id", "bpmn_id", "name", "lane",
                 "group_id", "state", "mutu_baku_minutes", "ready_at", "due_at", "assignee_id", "claimed_at")
INSERT_TASK = _insert(_TASK, _TASK_COLUMNS)
_DEADLINE_COLUMNS = ("human_task_id", "office_id", "level", "seq", "at_fraction", "due_at", "status")
INSERT_DEADLINE = _insert(_DEADLINE, _DEADLINE_COLUMNS)
INSERT_PAUSE = _insert(_PAUSE, ("human_task_id", "paused_at", "reason", "paused_by_id"))
CLOSE_PAUSE = Stmt(update(_PAUSE).where(_PAUSE.c.human_task_id == bindparam("task"), _PAUSE.c.resumed_at.is_(None))
                   .values(resumed_at=bindparam("now"), resume_reason=bindparam("reason"),
                           resumed_by_id=bindparam("user")))
INSERT_PAUSE_REQUEST = _insert(_PAUSE_REQUEST, ("human_task_id", "instance_id", "office_id", "requested_by_id",
                                               "requested_at", "reason", "status", "decided_by_id", "decided_at"))
DECIDE_PAUSE_REQUEST = Stmt(update(_PAUSE_REQUEST).where(_PAUSE_REQUEST.c.id == bindparam("request"),
                                                         _PAUSE_REQUEST.c.status == "pending")
                            .values(status=bindparam("status"), decided_by_id=bindparam("user"),
                                    decided_at=bindparam("now"), decision_note=bindparam("note")))
_INSTANCE_COLUMNS = ("id", "office_id", "version_id", "subject", "status", "state", "lock_version",
                     "started_by_id", "started_at")
INSERT_INSTANCE = _insert(_INSTANCE, _INSTANCE_COLUMNS)
WRITE_INSTANCE = Stmt(update(_INSTANCE).where(_INSTANCE.c.id == bindparam("instance"),
                                              _INSTANCE.c.lock_version == bindparam("seen"))
                      .values(state=bindparam("state"), status=bindparam("status"),
                              completed_at=bindparam("completed_at"), next_timer_at=bindparam("next_timer_at"),
                              audit_hash=bindparam("audit_hash"), lock_version=_INSTANCE.c.lock_version + 1))
# the same, moving the instance to another version of its SOP (engine/migration.py)
MOVE_INSTANCE = Stmt(update(_INSTANCE).where(_INSTANCE.c.id == bindparam("instance"),
                                             _INSTANCE.c.lock_version == bindparam("seen"))
                     .values(state=bindparam("state"), status=bindparam("status"), version_id=bindparam("version_id"),
                             completed_at=bindparam("completed_at"), next_timer_at=bindparam("next_timer_at"),
                             audit_hash=bindparam("audit_hash"), lock_version=_INSTANCE.c.lock_version + 1))
# the head of an audit chain: read under its owner's lock, moved on only from the head read
HEADS = {"instance": Stmt(select(_INSTANCE.c.audit_hash).where(_INSTANCE.c.id == bindparam("owner"))
                          .with_for_update()),
         "office": Stmt(select(_OFFICE.c.audit_hash).where(_OFFICE.c.id == bindparam("owner")).with_for_update())}
MOVE_HEAD = {name: Stmt(update(table).where(table.c.id == bindparam("owner"),
                                            table.c.audit_hash.is_not_distinct_from(bindparam("previous")))
                        .values(audit_hash=bindparam("head")))
             for name, table in (("instance", _INSTANCE), ("office", _OFFICE))}
_INCIDENT_COLUMNS = ("id", "office_id", "instance_id", "version_id", "element_id", "element_name", "task_guid",
                     "kind", "message", "detail", "snapshot", "attempts", "opened_at", "last_attempt_at")
INSERT_INCIDENT = _insert(_INCIDENT, _INCIDENT_COLUMNS)
_NOTIFICATION_COLUMNS = ("user_id", "office_id", "human_task_id", "instance_id", "level", "seq", "inapp", "subject",
                         "body", "link", "payload", "created_at")
INSERT_NOTIFICATION = _insert(_NOTIFICATION, _NOTIFICATION_COLUMNS)
CANCEL_DELIVERIES = Stmt(update(_DELIVERY).where(_DELIVERY.c.human_task_id == bindparam("task"),
                                                 or_(_DELIVERY.c.status == "pending", _DELIVERY.c.status == "sending"))
                         .values(status="cancelled", lease_until=null()))


@lru_cache(maxsize=64)
def task_update(columns: tuple[str, ...], expect: tuple[str, ...]) -> Stmt:
    """UPDATE human_task SET <columns> WHERE id = :task [AND each expected column IS NOT DISTINCT FROM its value]."""
    where = [_TASK.c.id == bindparam("task")]
    where += [_TASK.c[c].is_not_distinct_from(bindparam(f"expect_{c}")) for c in expect]
    return Stmt(update(_TASK).where(*where).values({c: bindparam(c) for c in columns}))


@lru_cache(maxsize=64)
def deadlines_update(statuses: tuple[str, ...], columns: tuple[str, ...]) -> Stmt:
    """UPDATE deadline SET <columns> WHERE human_task_id = :task AND status IN <statuses>."""
    return Stmt(update(_DEADLINE).where(_DEADLINE.c.human_task_id == bindparam("task"),
                                        or_(*[_DEADLINE.c.status == s for s in statuses]))
                .values({c: bindparam(c) for c in columns}))


@lru_cache(maxsize=64)
def deadline_update(columns: tuple[str, ...]) -> Stmt:
    """UPDATE deadline SET <columns> WHERE id = :deadline."""
    return Stmt(update(_DEADLINE).where(_DEADLINE.c.id == bindparam("deadline"))
                .values({c: bindparam(c) for c in columns}))


@lru_cache(maxsize=16)
def incident_update(columns: tuple[str, ...]) -> Stmt:
    """UPDATE incident SET <columns> WHERE id = :incident AND resolved_at IS NULL (open ones only)."""
    return Stmt(update(_INCIDENT).where(_INCIDENT.c.id == bindparam("incident"), _INCIDENT.c.resolved_at.is_(None))
                .values({c: bindparam(c) for c in columns}))


_TASK_DEFAULTS = {k: v for k, v in defaults(_TASK).items() if k in _TASK_COLUMNS}
_DEADLINE_DEFAULTS = {k: v for k, v in defaults(_DEADLINE).items() if k in _DEADLINE_COLUMNS}
_INSTANCE_DEFAULTS = {k: v for k, v in defaults(_INSTANCE).items() if k in _INSTANCE_COLUMNS}


class UnitOfWork:
    """The writes of one state change, sent together by `flush` (see the module docstring)."""

    def __init__(self, tx: SqlTx):
        self.tx = tx
        self._writes: list[tuple[Stmt, list[dict], str | None]] = []  # (statement, rows, conflict message)
        self._audits: list[dict] = []
        self._instance: dict | None = None
        self._heads: dict[tuple, str | None] = {}  # chain key -> head, read under the owner's lock

    def known_head(self, instance_id: int, audit_hash: str | None) -> None:
        """The instance's audit chain head, as the caller read it with the instance locked."""
        self._heads[chain_key(instance_id, None)] = audit_hash

    @classmethod
    def on(cls, session: Session) -> "UnitOfWork":
        return cls(SqlTx(session))

    def _add(self, stmt: Stmt, row: dict, guard: str | None = None) -> None:
        last = self._writes[-1] if self._writes else None
        if guard is None and last is not None and last[0] is stmt and last[2] is None:
            last[1].append(row)  # consecutive rows of one statement: one executemany
        else:
            self._writes.append((stmt, [row], guard))

    # ---- audit_event -------------------------------------------------------------------------
    def audit(self, kind: str, *, office_id: int | None, at: datetime, instance_id: int | None = None,
              human_task_id: int | None = None, user_id: int | None = None, step: str | None = None,
              data: dict | None = None) -> None:
        """An audit row; written after the change's other rows, in the order recorded."""
        self._audits.append({"office_id": office_id, "instance_id": instance_id, "human_task_id": human_task_id,
                             "user_id": user_id, "at": at, "kind": kind, "step": step, "data": data, "hash": None})

    # ---- human_task --------------------------------------------------------------------------
    def open_task(self, row: dict) -> None:
        """A step that became ready (row: the columns of INSERT_TASK; `state` defaults to the model's;
        `assignee_id`/`claimed_at` given when the step opens already held: the starter's first
        step, a step sent back to its previous holder)."""
        self._add(INSERT_TASK, {**_TASK_DEFAULTS, "assignee_id": None, "claimed_at": None, **row})

    def task(self, task_id: int, values: dict, expect: dict | None = None,
             conflict: str = "this step changed meanwhile; reload it") -> None:
        """Change columns of one step. With `expect` ({column: value}) the write is guarded:
        it must find the step with those values, else the flush raises Conflict(`conflict`)."""
        expect = expect or {}
        stmt = task_update(tuple(values), tuple(expect))
        row = {"task": task_id, **values, **{f"expect_{k}": v for k, v in expect.items()}}
        self._add(stmt, row, conflict if expect else None)

    # ---- deadline ----------------------------------------------------------------------------
    def add_deadlines(self, rows: list[dict]) -> None:
        for row in rows:
            self._add(INSERT_DEADLINE, {**_DEADLINE_DEFAULTS, **row})

    def deadlines(self, task_id: int, statuses: tuple[str, ...], values: dict) -> None:
        """Change every deadline of a step that is in one of `statuses` (cancel, hold)."""
        self._add(deadlines_update(statuses, tuple(values)), {"task": task_id, **values})

    def deadline(self, deadline_id: int, values: dict) -> None:
        """Change one deadline (re-timed, fired, cancelled, held)."""
        self._add(deadline_update(tuple(values)), {"deadline": deadline_id, **values})

    # ---- task_pause --------------------------------------------------------------------------
    def pause_opened(self, task_id: int, at: datetime, reason: str, user_id: int | None) -> None:
        self._add(INSERT_PAUSE, {"human_task_id": task_id, "paused_at": at, "reason": reason, "paused_by_id": user_id})

    def pause_closed(self, task_id: int, at: datetime, reason: str | None, user_id: int | None) -> None:
        self._add(CLOSE_PAUSE, {"task": task_id, "now": at, "reason": reason, "user": user_id})

    # ---- pause_request ----------------------------------------------------------------------
    def pause_requested(self, row: dict) -> None:
        """A request to stop a step's clock (row: the columns of INSERT_PAUSE_REQUEST; status
        "pending", or "immediate" when the office stops the clock at once)."""
        self._add(INSERT_PAUSE_REQUEST, {"decided_by_id": None, "decided_at": None, **row})

    def pause_decided(self, request_id: int, status: str, at: datetime, user_id: int | None,
                      note: str | None = None) -> None:
        """Close a pending request (approved, refused, withdrawn); guarded: a request decided
        meanwhile raises Conflict at the flush."""
        self._add(DECIDE_PAUSE_REQUEST, {"request": request_id, "status": status, "now": at, "user": user_id,
                                         "note": note}, "this pause request was decided meanwhile; reload it")

    # ---- delivery ----------------------------------------------------------------------------
    def cancel_deliveries(self, task_id: int) -> None:
        """The step closed: its reminders waiting to be sent are not sent, and a send in flight
        is stopped at its gate before DATA (engine/outbox.py); past that point the worker
        records "sent" over the cancelled row, since the message went out."""
        self._add(CANCEL_DELIVERIES, {"task": task_id})

    # ---- incident ----------------------------------------------------------------------------
    def open_incident(self, row: dict) -> None:
        """An instance stopped at a failing element (row: the columns of INSERT_INCIDENT); written
        after the instance it refers to, before its audit row."""
        self._add(INSERT_INCIDENT, {"detail": None, "snapshot": None, "task_guid": None, "attempts": 1, **row})

    def incident(self, incident_id: int, values: dict,
                 conflict: str = "this incident was resolved meanwhile; reload it") -> None:
        """Change an open incident (a retry that failed again, or its resolution); guarded: if it
        is no longer open the flush raises Conflict."""
        self._add(incident_update(tuple(values)), {"incident": incident_id, **values}, conflict)

    # ---- notification --------------------------------------------------------------------------
    def notify(self, rows: list[dict]) -> None:
        """In-app notifications of an incident or a pause request (rows: the columns of INSERT_NOTIFICATION)."""
        for row in rows:
            self._add(INSERT_NOTIFICATION, {"human_task_id": None, "seq": 0, "inapp": True, "payload": None, **row})

    # ---- process_instance --------------------------------------------------------------------
    def new_instance(self, row: dict) -> None:
        """A started instance (row: the columns of INSERT_INSTANCE); written first."""
        self._writes.insert(0, (INSERT_INSTANCE, [{**_INSTANCE_DEFAULTS, **row}], None))
        self.known_head(row["id"], None)

    def instance(self, instance_id: int, seen: int, *, state: dict, status: str, completed_at: datetime | None,
                 next_timer_at: datetime | None, version_id: int | None = None) -> None:
        """The instance's state, written last and only if its `lock_version` is still `seen`;
        with `version_id`, the instance now runs on that version of its SOP (a migration)."""
        self._instance = {"instance": instance_id, "seen": seen, "state": state, "status": status,
                          "completed_at": completed_at, "next_timer_at": next_timer_at}
        if version_id is not None:
            self._instance["version_id"] = version_id

    # ---- sending -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Send everything recorded in one batch; raise Conflict if a guarded write missed."""
        head_moves = self._chain_audits()
        batch = [(stmt, rows[0] if len(rows) == 1 else rows) for stmt, rows, _ in self._writes]
        guards = [guard for _, _, guard in self._writes]
        if self._audits:
            batch.append((INSERT_AUDIT, self._audits))
            guards.append(None)
            # the event webhooks of these rows, in their transaction (engine/webhooks/events.py)
            deliveries = webhook_events.delivery_rows(self._audits)
            if deliveries:
                batch.append((webhook_events.INSERT_DELIVERIES, deliveries[0] if len(deliveries) == 1 else deliveries))
                guards.append(None)
        for name, owner, previous, head in head_moves:
            batch.append((MOVE_HEAD[name], {"owner": owner, "previous": previous, "head": head}))
            guards.append("the audit trail of this process changed meanwhile; reload it")
        if self._instance is not None:
            batch.append((MOVE_INSTANCE if "version_id" in self._instance else WRITE_INSTANCE, self._instance))
            guards.append("this process changed meanwhile (someone else completed a step); reload it")
        self._writes, self._audits, self._instance = [], [], None
        for (count, _), guard in zip(self.tx.batch(batch), guards):
            if guard is not None and count != 1:
                raise Conflict(guard)

    def _chain_audits(self) -> list[tuple[str, int, str | None, str]]:
        """Hash the audit rows onto their chains; return the heads to move (owner kind, id,
        previous head, new head). The written instance's head moves with its guarded write."""
        keys = {chain_key(a["instance_id"], a["office_id"]) for a in self._audits}
        if self._instance is not None:
            keys.add(chain_key(self._instance["instance"], None))
        unknown = sorted((k for k in keys if k not in self._heads and k[1] is not None), key=str)
        if unknown:
            results = self.tx.batch([(HEADS[name], {"owner": owner}) for name, owner in unknown])
            for key, (_, rows) in zip(unknown, results):
                self._heads[key] = rows[0][0] if rows else None
        before = {k: self._heads.get(k) for k in keys}
        for row in self._audits:
            key = chain_key(row["instance_id"], row["office_id"])
            # rows of no instance and no office have no owner to keep a head: each stands alone
            row["hash"] = self._heads[key] = row_hash(self._heads.get(key) if key[1] is not None else None, row)
        written = chain_key(self._instance["instance"], None) if self._instance is not None else None
        if written is not None:
            self._instance["audit_hash"] = self._heads.get(written)
        return [(name, owner, before[(name, owner)], self._heads[(name, owner)]) for name, owner in sorted(keys, key=str)
                if owner is not None and (name, owner) != written and self._heads.get((name, owner)) != before[(name, owner)]]


def record_audit(session: Session, kind: str, **fields) -> None:
    """One audit row in the caller's transaction, for a change outside a running instance
    (a deployment, a calendar change, a failed delivery)."""
    uow = UnitOfWork.on(session)
    uow.audit(kind, **fields)
    uow.flush()


_DRAFT = ProcessDraft.__table__
INSERT_DRAFT = Stmt(insert(_DRAFT).values({c: bindparam(c) for c in (
    "office_id", "key", "based_on_version", "files", "problems", "editor_id", "updated_at", "lock_version")}))
UPDATE_DRAFT = Stmt(update(_DRAFT).where(_DRAFT.c.id == bindparam("draft"), _DRAFT.c.lock_version == bindparam("seen"))
                    .values(based_on_version=bindparam("based_on_version"), files=bindparam("files"),
                            problems=bindparam("problems"), editor_id=bindparam("editor_id"),
                            updated_at=bindparam("updated_at"), lock_version=_DRAFT.c.lock_version + 1))
DELETE_DRAFT = Stmt(delete(_DRAFT).where(_DRAFT.c.id == bindparam("draft"), _DRAFT.c.lock_version == bindparam("seen")))


def write_draft(session: Session, *, draft_id: int | None, seen: int | None, office_id: int, key: str,
                based_on_version: int | None, files: dict, problems: list, editor_id: int | None,
                at: datetime) -> None:
    """Create a studio draft (`draft_id` None) or save over one, only if its `lock_version` is
    still `seen`: two owners saving from the same state, the second is refused (Conflict)."""
    tx = SqlTx(session)
    row = {"based_on_version": based_on_version, "files": files, "problems": problems, "editor_id": editor_id,
           "updated_at": at}
    if draft_id is None:
        tx.batch([(INSERT_DRAFT, {**row, "office_id": office_id, "key": key, "lock_version": 1})])
        return
    [(count, _)] = tx.batch([(UPDATE_DRAFT, {**row, "draft": draft_id, "seen": seen})])
    if count != 1:
        raise Conflict("someone else saved this draft meanwhile; reload it")


def delete_draft(session: Session, draft_id: int, seen: int) -> None:
    """The draft was published (or discarded): gone, if nobody saved it meanwhile."""
    [(count, _)] = SqlTx(session).batch([(DELETE_DRAFT, {"draft": draft_id, "seen": seen})])
    if count != 1:
        raise Conflict("someone else saved this draft meanwhile; reload it")
