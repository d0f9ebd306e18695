"""The instance store: what a state change reads, and the workflows it runs.

Reads are Core statements over engine/models.py's tables, compiled once per dialect
(engine/sqltx.py). The locking read of a step command (`LOCK_TASK`) brings the step, its
instance's `lock_version`, the office's calendar revision and the acting user with their
lane membership in one statement, so a completion needs one batch of reads.

`InstanceStore` keeps only caches of immutable or version-checked things: the parsed spec
and step metadata of each deployed version, lane groups, and recently used workflows keyed
by the instance's `lock_version` (a stale entry is never used: the version differs). Its
`save` serialises the workflow into the unit of work's guarded instance write.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import Sequence, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session, aliased
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .models import (Delivery, Group, HumanTask, Office, ProcessDefinition, ProcessInstance, PauseRequest, ProcessVersion,
                     TaskPause, User, user_group)
from .serialization import WorkflowStore
from .sqltx import SqlTx, Stmt
from .uow import UnitOfWork

_T = HumanTask.__table__
_I = ProcessInstance.__table__
_O = Office.__table__
_U = User.__table__
_G = Group.__table__
_D = ProcessDefinition.__table__
_V = ProcessVersion.__table__


class LockedTask(NamedTuple):
    """The locking read of a step command: the step, its instance, and the acting user."""

    id: int
    instance_id: int
    office_id: int
    version_id: int
    bpmn_id: str
    name: str
    lane: str | None
    group_id: int | None
    state: str
    assignee_id: int | None
    task_guid: str
    ready_at: datetime
    due_at: datetime | None
    paused_at: datetime | None
    mutu_baku_minutes: float | None
    lock_version: int
    status: str
    next_timer_at: datetime | None
    completed_at: datetime | None
    calendar_revision: int
    was_paused: bool
    has_deliveries: bool
    holder: str | None
    user_id: int | None
    user_active: bool | None
    user_office_id: int | None
    user_roles: str | None
    username: str | None
    user_full_name: str | None
    member: bool
    audit_hash: str | None
    pending_pause: int | None  # the step's pending pause request, withdrawn when the step completes


def _lock_task():
    """The step and its instance locked together (a racing command waits here, then sees the
    step changed); whether its clock was ever paused and deliveries wait (else those tables
    are not touched); the holder's name for a conflict message; the acting user and whether
    they are in the step's lane. SQLite took its write lock at BEGIN already."""
    holder = aliased(_U)
    pause, delivery, request = TaskPause.__table__, Delivery.__table__, PauseRequest.__table__
    return Stmt(
        select(_T.c.id, _T.c.instance_id, _T.c.office_id, _T.c.version_id, _T.c.bpmn_id, _T.c.name, _T.c.lane,
               _T.c.group_id, _T.c.state, _T.c.assignee_id, _T.c.task_guid, _T.c.ready_at, _T.c.due_at,
               _T.c.paused_at, _T.c.mutu_baku_minutes, _I.c.lock_version, _I.c.status, _I.c.next_timer_at,
               _I.c.completed_at, _O.c.calendar_revision,
               exists().where(pause.c.human_task_id == _T.c.id),
               exists().where(delivery.c.human_task_id == _T.c.id, or_(delivery.c.status == "pending", delivery.c.status == "sending")),
               select(holder.c.full_name).where(holder.c.id == _T.c.assignee_id).scalar_subquery(),
               _U.c.id, _U.c.active, _U.c.office_id, _U.c.roles, _U.c.username, _U.c.full_name,
               exists().where(user_group.c.user_id == _U.c.id, user_group.c.group_id == _T.c.group_id),
               _I.c.audit_hash,
               select(func.max(request.c.id)).where(request.c.human_task_id == _T.c.id,
                                                    request.c.status == "pending").scalar_subquery())
        .select_from(_T.join(_I, _I.c.id == _T.c.instance_id).join(_O, _O.c.id == _T.c.office_id)
                     .outerjoin(_U, _U.c.id == bindparam("user")))
        .where(_T.c.id == bindparam("task"))
        .with_for_update(of=[_T, _I]))


LOCK_TASK = _lock_task()
_OPEN = (_T.c.id, _T.c.task_guid, _T.c.bpmn_id)
OPEN_TASKS = Stmt(select(*_OPEN).where(_T.c.instance_id == bindparam("instance"), _T.c.state == "ready"))
OPEN_TASKS_OF_TASK = Stmt(select(*_OPEN).where(
    _T.c.instance_id == select(_T.c.instance_id).where(_T.c.id == bindparam("task")).scalar_subquery(),
    _T.c.state == "ready"))
INSTANCE_STATE = Stmt(select(_I.c.state).where(_I.c.id == bindparam("instance")))
# Starting: the user, the SOP of their office by key with its latest version, the user's lanes.
START_READ = Stmt(
    select(_U.c.id, _U.c.active, _U.c.office_id, _D.c.latest_version_id, _V.c.version, _O.c.calendar_revision,
           _U.c.roles)
    .select_from(_U.outerjoin(_O, _O.c.id == _U.c.office_id)
                 .outerjoin(_D, and_(_D.c.office_id == _U.c.office_id, _D.c.key == bindparam("key")))
                 .outerjoin(_V, _V.c.id == _D.c.latest_version_id))
    .where(_U.c.id == bindparam("user")))
USER_LANES = Stmt(select(_G.c.name).select_from(user_group.join(_G, _G.c.id == user_group.c.group_id))
                  .where(user_group.c.user_id == bindparam("user")))
# The instance of a step command on the ORM-free path of timers and the clock
LOCK_INSTANCE = Stmt(select(_I.c.id, _I.c.office_id, _I.c.version_id, _I.c.status, _I.c.lock_version,
                            _I.c.completed_at, _I.c.next_timer_at, _I.c.audit_hash)
                     .where(_I.c.id == bindparam("instance")).with_for_update())
LOCK_INSTANCE_SKIP = Stmt(select(_I.c.id, _I.c.office_id, _I.c.version_id, _I.c.status, _I.c.lock_version,
                                 _I.c.completed_at, _I.c.next_timer_at, _I.c.audit_hash)
                          .where(_I.c.id == bindparam("instance")).with_for_update(skip_locked=True))


class NewIds:
    """Ids for the rows of one table a change inserts, known before the batch that inserts them
    (other rows of the batch refer to them).

    PostgreSQL: the table's sequence (a change fetches one with its first reads; an id that
    ends up unused is a harmless gap). SQLite: max + 1, safe because the transaction holds the
    database's write lock since BEGIN IMMEDIATE."""

    table = None

    @classmethod
    def probe(cls, postgres: bool) -> Stmt:
        return cls._probes[postgres]

    def __init__(self, tx: SqlTx, first: int | None = None):
        self._tx, self._first, self._last = tx, first, None

    def take(self) -> int:
        if self._first is not None:
            value, self._first = self._first, None
        elif self._tx.postgres or self._last is None:
            value = self._tx.one(self.probe(self._tx.postgres), {})[0]
        else:
            value = self._last + 1
        self._last = value
        return value


def _probes(table) -> dict[bool, Stmt]:
    return {True: Stmt(select(Sequence(f"{table.name}_id_seq").next_value()), only="postgresql"),
            False: Stmt(select(func.coalesce(func.max(table.c.id), 0) + 1), only="sqlite")}


class TaskIds(NewIds):
    _probes = _probes(_T)


class InstanceIds(NewIds):
    _probes = _probes(_I)


@dataclass
class InstanceHead:
    """What a state change needs of its instance besides the workflow: who, which version,
    and the `lock_version` the change was computed from (the write is guarded by it)."""

    id: int
    office_id: int
    version_id: int
    status: str
    lock_version: int
    completed_at: datetime | None = None
    next_timer_at: datetime | None = None
    audit_hash: str | None = None  # the head of its audit chain, as read under its lock


@dataclass(frozen=True)
class FormVersion:
    id: int
    steps: dict
    forms: dict
    facts: dict
    sop_steps: dict = None  # sop.json's per-step texts (the Persyaratan checklist: engine/requirements.py)


class InstanceStore:
    """Specs, step metadata and workflows of instances, cached where that is safe."""

    def __init__(self, workflow_cache_size: int = 512, allow_scripts: bool = False):
        self.serializer = WorkflowStore(allow_scripts=allow_scripts)
        self._specs: dict[int, tuple] = {}
        self._form_versions: dict[int, FormVersion] = {}
        self._lane_groups: dict[tuple[int, str], int] = {}
        self._validators: dict[tuple[int, str], Draft202012Validator] = {}
        self._workflows: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._cache_size = workflow_cache_size

    # ---- versions (immutable) ---------------------------------------------------------------
    def spec(self, session: Session, version_id: int):
        """The parsed spec of a deployed version: read and restored once."""
        spec = self._specs.get(version_id)
        if spec is None:
            stored = session.scalar(select(ProcessVersion.spec).where(ProcessVersion.id == version_id))
            spec = self._specs[version_id] = self.serializer.spec_from_dict(stored)
        return spec

    def form_version(self, session: Session, version_id: int) -> FormVersion:
        """What completing a step needs of its version (steps, forms), read once per version."""
        fv = self._form_versions.get(version_id)
        if fv is None:
            row = session.execute(select(ProcessVersion.steps, ProcessVersion.forms, ProcessVersion.facts,
                                         ProcessVersion.sop).where(ProcessVersion.id == version_id)).one()
            fv = self._form_versions[version_id] = FormVersion(version_id, row.steps, row.forms,
                                                               row.facts or self._derive_facts(session, version_id),
                                                               (row.sop or {}).get("steps", {}))
        return fv

    @staticmethod
    def _derive_facts(session: Session, version_id: int) -> dict:
        """Facts of a version deployed before they were stored (migration 0008): read from its BPMN."""
        from .bpmn import facts_from_xml
        row = session.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.process_id, ProcessVersion.steps)
                              .where(ProcessVersion.id == version_id)).one()
        return facts_from_xml(row.bpmn_xml, row.process_id, row.steps)

    def cached_form_version(self, version_id: int) -> FormVersion | None:
        return self._form_versions.get(version_id)

    def steps(self, session: Session, version_id: int) -> dict:
        return self.form_version(session, version_id).steps

    def validator(self, version, form: str) -> Draft202012Validator:
        key = (version.id, form)
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator(version.forms[form], format_checker=FormatChecker())
            self._validators[key] = validator
        return validator

    def lane_group(self, session: Session, office_id: int, lane: str | None) -> int | None:
        """The group id a lane maps to. Groups are created at deploy and never renamed, so this is cached."""
        if not lane:
            return None
        key = (office_id, lane)
        if key not in self._lane_groups:
            group_id = session.scalar(select(Group.id).where(Group.office_id == office_id, Group.name == lane))
            if group_id is None:
                return None  # not cached: a group created later is found then
            self._lane_groups[key] = group_id
        return self._lane_groups[key]

    # ---- workflows -------------------------------------------------------------------------
    def new_workflow(self, session: Session, version_id: int) -> BpmnWorkflow:
        spec, subprocess_specs = self.spec(session, version_id)
        return self.serializer.new_workflow(spec, subprocess_specs)

    def workflow(self, session: Session, tx: SqlTx, instance_id: int, lock_version: int,
                 version_id: int) -> BpmnWorkflow:
        """The instance's workflow at `lock_version`: from the cache (taken out of it until the
        transaction commits), else restored from the stored state."""
        cached = self._workflows.pop(instance_id, None)
        if cached and cached[0] == lock_version:
            return cached[1]
        spec, subprocess_specs = self.spec(session, version_id)
        state = tx.document(tx.one(INSTANCE_STATE, {"instance": instance_id})[0])
        return self.serializer.workflow_from_dict(state, spec, subprocess_specs)

    def keep(self, instance_id: int, lock_version: int, workflow: BpmnWorkflow) -> None:
        self._workflows[instance_id] = (lock_version, workflow)
        while len(self._workflows) > self._cache_size:
            self._workflows.popitem(last=False)

    def forget(self, instance_id: int | None) -> None:
        """Drop a workflow a failed transaction may have changed in memory."""
        self._workflows.pop(instance_id, None)

    def save(self, uow: UnitOfWork, head: InstanceHead, workflow: BpmnWorkflow) -> None:
        """Record the workflow state (guarded by the head's lock_version), send the unit of work,
        and keep the workflow for the next change at the new lock_version."""
        uow.instance(head.id, head.lock_version, state=self.serializer.workflow_to_dict(workflow),
                     status=head.status, completed_at=head.completed_at, next_timer_at=head.next_timer_at)
        uow.flush()
        head.lock_version += 1
        self.keep(head.id, head.lock_version, workflow)


def head_of(row) -> InstanceHead:
    """An InstanceHead from a LOCK_INSTANCE row or a LockedTask (times as read: aware UTC)."""
    if isinstance(row, LockedTask):
        return InstanceHead(row.instance_id, row.office_id, row.version_id, row.status, row.lock_version,
                            SqlTx.when(row.completed_at), SqlTx.when(row.next_timer_at), row.audit_hash)
    return InstanceHead(row[0], row[1], row[2], row[3], row[4], SqlTx.when(row[5]), SqlTx.when(row[6]), row[7])


def unit_of_work(tx: SqlTx, head: InstanceHead | LockedTask | None = None) -> UnitOfWork:
    """A unit of work on `tx`, told the audit chain head of the instance the caller locked."""
    uow = UnitOfWork(tx)
    if isinstance(head, LockedTask):
        uow.known_head(head.instance_id, head.audit_hash)
    elif head is not None:
        uow.known_head(head.id, head.audit_hash)
    return uow
