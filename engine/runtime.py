"""Running SOP instances: start, the task inbox, claim, complete, timers.

Each state change is one transaction: the instance row is locked (FOR UPDATE on
PostgreSQL; SQLite takes its write lock at BEGIN), the workflow is run, and the workflow
state, the mirrored `human_task` rows and the audit events are written together. The
instance's `lock_version` is checked on write as well, so a lost update between processes
is impossible on either database: the loser gets a Conflict.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from uuid import UUID

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, object_session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from . import deadlines, hotpath, outbox
from .calendar import WeeklySchedule
from .db import as_utc
from .hotpath import InstanceHead, InstanceIds, LockedTask, TaskIds
from .rawtx import RawTx
from .errors import Conflict, Forbidden, FormInvalid, LajurError, NotFound
from .models import (AuditEvent, CalendarOverride, Group, HumanTask, Office, ProcessDefinition, ProcessInstance,
                     ProcessVersion, TaskPause, User, user_group)
from .serialization import WorkflowStore
from .sla import CalendarCache, due_time


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# While a step's clock is paused its Mutu Baku timer must not fire: it waits "forever".
PAUSED_TIMER = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TaskRow:
    """One inbox line, read from `human_task` without loading any workflow."""

    id: int
    instance_id: int
    subject: str
    process_key: str
    process_name: str
    bpmn_id: str
    name: str
    lane: str | None
    state: str
    assignee_id: int | None
    assignee: str | None
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    mutu_baku_minutes: float | None
    paused: bool

    def overdue(self, now: datetime) -> bool:
        return self.state == "ready" and self.due_at is not None and not self.paused and as_utc(self.due_at) < now


@dataclass(frozen=True)
class FormVersion:
    id: int
    steps: dict
    forms: dict
    facts: dict


VIEWS = ("mine", "group", "overdue", "completed", "office")


class Runtime:
    """The engine service the CLI, the web app and the workers call.

    It keeps only caches of immutable or version-checked things: parsed specs per
    deployed version, office calendars per revision, and recently used workflows keyed
    by the instance's `lock_version` (a stale entry is never used: the version differs).
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow,
                 workflow_cache_size: int = 512, allow_scripts: bool = False):
        self.sessions = sessions
        self.store = WorkflowStore(allow_scripts=allow_scripts)
        self.clock = clock
        self.calendars = CalendarCache()
        self._specs: dict[int, tuple] = {}
        self._form_versions: dict[int, FormVersion] = {}
        self._lane_groups: dict[tuple[int, str], int] = {}
        self._validators: dict[tuple[int, str], Draft202012Validator] = {}
        self._workflows: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._cache_size = workflow_cache_size

    def _now(self) -> datetime:
        """The clock in UTC: everything is stored in UTC (SQLite keeps no offset)."""
        return self.clock().astimezone(timezone.utc)

    # ---- loading ---------------------------------------------------------------------------
    def _spec(self, session: Session, version_id: int):
        """The parsed spec of a deployed version: read and restored once (versions are immutable)."""
        spec = self._specs.get(version_id)
        if spec is None:
            stored = session.scalar(select(ProcessVersion.spec).where(ProcessVersion.id == version_id))
            spec = self._specs[version_id] = self.store.spec_from_dict(stored)
        return spec

    def _steps(self, session: Session, version_id: int) -> dict:
        """A deployed version's step metadata (read once: versions are immutable)."""
        return self._form_version(session, version_id).steps

    def _lane_group(self, session: Session, office_id: int, lane: str | None) -> int | None:
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

    def _workflow(self, session: Session, instance_id: int, lock_version: int, version_id: int,
                  load_state: Callable[[], dict]) -> BpmnWorkflow:
        """The instance's workflow at `lock_version`: from the cache (taken out of it until the
        transaction commits), else restored from the stored state."""
        cached = self._workflows.pop(instance_id, None)
        if cached and cached[0] == lock_version:
            return cached[1]
        spec, subprocess_specs = self._spec(session, version_id)
        return self.store.workflow_from_dict(load_state(), spec, subprocess_specs)

    def _take_workflow(self, instance: ProcessInstance) -> BpmnWorkflow:
        """The workflow of an instance loaded through the ORM."""
        session = object_session(instance)
        if session is None:
            with self.sessions() as fresh:
                return self._workflow(fresh, instance.id, instance.lock_version, instance.version_id,
                                      lambda: instance.state)
        return self._workflow(session, instance.id, instance.lock_version, instance.version_id,
                              lambda: instance.state)

    def _keep_workflow(self, instance_id: int, lock_version: int, workflow: BpmnWorkflow) -> None:
        self._workflows[instance_id] = (lock_version, workflow)
        while len(self._workflows) > self._cache_size:
            self._workflows.popitem(last=False)

    def _form_version(self, session: Session, version_id: int) -> "FormVersion":
        """What completing a step needs of its version (steps, forms), read once per version."""
        fv = self._form_versions.get(version_id)
        if fv is None:
            row = session.execute(select(ProcessVersion.steps, ProcessVersion.forms, ProcessVersion.facts)
                                  .where(ProcessVersion.id == version_id)).one()
            fv = self._form_versions[version_id] = FormVersion(version_id, row.steps, row.forms,
                                                               row.facts or self._derive_facts(session, version_id))
        return fv

    @staticmethod
    def _derive_facts(session: Session, version_id: int) -> dict:
        """Facts of a version deployed before they were stored (migration 0008): read from its BPMN."""
        from .bpmn import facts_from_xml
        row = session.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.process_id, ProcessVersion.steps)
                              .where(ProcessVersion.id == version_id)).one()
        return facts_from_xml(row.bpmn_xml, row.process_id, row.steps)

    def version_forms(self, version_id: int) -> tuple[dict, dict]:
        """(steps, forms) of a deployed version, from the same per-version cache completion uses."""
        fv = self._form_versions.get(version_id)
        if fv is None:
            with self.sessions() as session:
                fv = self._form_version(session, version_id)
        return fv.steps, fv.forms

    def _validator(self, version: ProcessVersion, form: str) -> Draft202012Validator:
        key = (version.id, form)
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator(version.forms[form], format_checker=FormatChecker())
            self._validators[key] = validator
        return validator

    # ---- access ----------------------------------------------------------------------------
    @staticmethod
    def _user(session: Session, user_id: int) -> User:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise Forbidden("unknown or inactive user")
        return user

    @staticmethod
    def _check_office(user: User, office_id: int) -> None:
        if user.office_id != office_id and not user.has_role("admin"):
            raise Forbidden("this belongs to another office")

    @staticmethod
    def _group_ids(session: Session, user: User) -> list[int]:
        return list(session.scalars(select(user_group.c.group_id).where(user_group.c.user_id == user.id)))

    def _check_lane(self, session: Session, user: User, task: HumanTask) -> None:
        self._check_office(user, task.office_id)
        if task.group_id not in self._group_ids(session, user):
            raise Forbidden(f"step {task.name!r} belongs to lane {task.lane!r}, which you are not in")

    # ---- start -----------------------------------------------------------------------------
    def startable(self, user_id: int) -> list[ProcessDefinition]:
        """The SOPs this user may start: of their office, whose first step is in one of their lanes."""
        with self.sessions() as session:
            user = self._user(session, user_id)
            groups = {g.name for g in user.groups}
            result = []
            for definition in session.scalars(select(ProcessDefinition).where(
                    ProcessDefinition.office_id == user.office_id).order_by(ProcessDefinition.name)):
                if definition.latest_version_id and self._start_lanes(session, definition.latest_version_id) & groups:
                    result.append(definition)
            return result

    def _start_lanes(self, session: Session, version_id: int) -> set[str]:
        """The lanes that may start a version: a fact stored at deploy (nothing of the process runs)."""
        return set(self._form_version(session, version_id).facts["start_lanes"])

    def start(self, user_id: int, process_key: str, subject: str) -> int:
        """Start the latest version of an SOP of the user's office; return the instance id."""
        subject = (subject or "").strip()
        if not subject:
            raise FormInvalid({"subject": ["wajib diisi / required"]})
        if len(subject) > 300:
            raise FormInvalid({"subject": ["terlalu panjang (maks. 300) / too long (max. 300)"]})
        now = self._now()
        with self.sessions.begin() as session:
            tx = RawTx(session)
            (_, found), (_, lanes), (_, instance_id), (_, task_id) = tx.batch([
                (hotpath.START_READ, {"user": user_id, "key": process_key}),
                (hotpath.USER_LANES, {"user": user_id}),
                (InstanceIds.probe(tx.postgres), {}),
                (TaskIds.probe(tx.postgres), {})])
            if not found or not found[0][1]:
                raise Forbidden("unknown or inactive user")
            _, _, office_id, version_id, version_number, revision = found[0]
            if version_id is None:
                raise NotFound(f"process {process_key!r} is not deployed in your office")
            start_lanes = self._start_lanes(session, version_id)
            if not start_lanes & {name for (name,) in lanes}:
                raise Forbidden(f"only members of {', '.join(sorted(start_lanes))} may start this SOP")
            workflow = self.store.new_workflow(*self._spec(session, version_id))  # authorised: now it may run
            workflow.do_engine_steps()
            head = InstanceHead(InstanceIds(tx, instance_id[0][0]).take(), office_id, version_id, "running", 1)
            writes: list = [(hotpath.INSERT_INSTANCE, {
                "id": head.id, "office_id": office_id, "version_id": version_id, "subject": subject, "state": {},
                "user": user_id, "now": now})]
            self._mirror(tx, session, head, workflow, now, [], TaskIds(tx, task_id[0][0]), writes, [{
                "office_id": office_id, "instance_id": head.id, "human_task_id": None, "user_id": user_id,
                "at": now, "kind": "instance_started", "step": None,
                "data": {"subject": subject, "process": process_key, "version": version_number}}],
                self.calendars.get(session, office_id, revision))
            self._save(tx, head, workflow, writes)
            self._keep_workflow(head.id, head.lock_version, workflow)
            return head.id

    # ---- mirror ----------------------------------------------------------------------------
    def _mirror(self, tx: RawTx, session: Session, head: InstanceHead, workflow: BpmnWorkflow, now: datetime,
                open_rows: list, ids: TaskIds, writes: list, audits: list[dict], calendar=None) -> list[int]:
        """Mirror the workflow's ready user tasks into `human_task`, appending the writes to `writes`.

        A newly ready task gets its row, due time (also written into its BPMN timer) and
        deadlines; an open row (`open_rows`: id, guid, bpmn id) whose task is no longer ready is
        cancelled. `audits` (the caller's events, in order) get the mirror's events appended and
        are written last. Sets the head's status and next timer; returns the new task ids."""
        steps = self._steps(session, head.version_id)
        base = {"office_id": head.office_id, "instance_id": head.id, "at": now, "user_id": None,
                "human_task_id": None, "step": None, "data": None}
        open_by_guid = {guid: (row_id, bpmn_id) for row_id, guid, bpmn_id in open_rows}
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready_ids = {str(t.id) for t in ready}
        opened: list[int] = []
        new_tasks: list[dict] = []
        new_deadlines: list[dict] = []
        for task in ready:
            guid = str(task.id)
            if guid in open_by_guid:
                continue
            step = steps.get(task.task_spec.bpmn_id, {})
            lane = task.task_spec.lane
            calendar = calendar or self.calendars.get(session, head.office_id)
            minutes = step.get("mutu_baku_minutes")
            due = due_time(calendar, now, minutes)
            row_id = ids.take()
            new_tasks.append({
                "id": row_id, "task_guid": guid, "instance_id": head.id, "office_id": head.office_id,
                "version_id": head.version_id, "bpmn_id": task.task_spec.bpmn_id,
                "name": step.get("name") or task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                "lane": lane, "group_id": self._lane_group(session, head.office_id, lane),
                "mutu_baku_minutes": minutes, "ready_at": now, "due_at": due})
            opened.append(row_id)
            new_deadlines += deadlines.deadline_rows(row_id, head.office_id, now, minutes, step, calendar)
            audits.append({**base, "human_task_id": row_id, "kind": "task_ready", "step": task.task_spec.bpmn_id,
                           "data": {"lane": lane, "due_at": due.isoformat() if due else None}})
            self._set_step_timer(task, step.get("timer_id"), due)
        cancelled = []
        for guid, (row_id, bpmn_id) in open_by_guid.items():
            if guid not in ready_ids:
                cancelled.append({"task": row_id, "now": now})
                audits.append({**base, "human_task_id": row_id, "kind": "task_cancelled", "step": bpmn_id})
        if workflow.is_completed() and head.status == "running":
            head.status, head.completed_at = "completed", now
            audits.append({**base, "kind": "instance_completed"})
        head.next_timer_at = self._next_timer(workflow)
        if new_tasks:
            writes.append((hotpath.INSERT_TASK, new_tasks))
        if new_deadlines:
            writes.append((hotpath.INSERT_DEADLINE, new_deadlines))
        if cancelled:
            writes += [(hotpath.CANCEL_TASK, cancelled), (hotpath.CANCEL_DEADLINES, cancelled)]
            outbox.cancel_task_deliveries(session, [c["task"] for c in cancelled])
        if audits:
            writes.append((hotpath.INSERT_AUDIT, audits))
        return opened

    def _save(self, tx: RawTx, head: InstanceHead, workflow: BpmnWorkflow, writes: list,
              instance: ProcessInstance | None = None) -> None:
        """Send the writes and the workflow state in one batch; the state's UPDATE is guarded by
        `lock_version` (the optimistic check that makes a lost update impossible). An ORM
        `instance` of the same row is left clean and current."""
        values = {"state": self.store.workflow_to_dict(workflow), "status": head.status,
                  "completed_at": head.completed_at, "next_timer_at": head.next_timer_at}
        results = tx.batch(writes + [(hotpath.WRITE_INSTANCE,
                                      {**values, "instance": head.id, "seen": head.lock_version})])
        if results[-1][0] != 1:
            raise StaleDataError(f"process instance {head.id} changed meanwhile")
        head.lock_version += 1
        if instance is not None:
            for key, value in {**values, "lock_version": head.lock_version}.items():
                set_committed_value(instance, key, value)

    @staticmethod
    def _set_step_timer(task, timer_id: str | None, due: datetime | None) -> None:
        """Make the step's Mutu Baku boundary timer fire at the working-time due time."""
        if not timer_id or due is None or task.parent is None:
            return
        for sibling in task.parent.children:
            if sibling.task_spec.bpmn_id == timer_id and sibling.has_state(TaskState.WAITING):
                sibling._set_internal_data(event_value=due.isoformat())

    @staticmethod
    def _next_timer(workflow: BpmnWorkflow) -> datetime | None:
        times = []
        for event in workflow.waiting_events():
            value = event.value
            if isinstance(value, str):
                try:
                    times.append(as_utc(datetime.fromisoformat(value)))
                except ValueError:
                    continue
        return min(times) if times else None

    # ---- inbox -----------------------------------------------------------------------------
    def list_tasks(self, user_id: int, view: str = "mine", limit: int = 200, offset: int = 0) -> list[TaskRow]:
        if view not in VIEWS:
            raise LajurError(f"unknown view {view!r} (use {', '.join(VIEWS)})")
        with self.sessions() as session:
            user = self._user(session, user_id)
            return self._task_query(session, user, view, limit, offset)

    def _task_select(self, session: Session, user: User, view: str):
        now = self._now()
        ht = HumanTask
        groups = select(user_group.c.group_id).where(user_group.c.user_id == user.id)
        base = select(ht).where(ht.office_id == user.office_id)
        if view == "mine":
            return base.where(ht.state == "ready", ht.assignee_id == user.id).order_by(ht.due_at, ht.id)
        if view == "group":
            return base.where(ht.state == "ready", ht.assignee_id.is_(None),
                              ht.group_id.in_(groups)).order_by(ht.due_at, ht.id)
        if view == "overdue":
            mine = or_(ht.assignee_id == user.id, and_(ht.assignee_id.is_(None), ht.group_id.in_(groups)))
            scope = True if user.has_role("supervisor") else mine
            return base.where(ht.state == "ready", ht.due_at < now, ht.paused_at.is_(None), scope) \
                .order_by(ht.due_at, ht.id)
        if view == "completed":
            return base.where(ht.state == "completed", ht.completed_by_id == user.id) \
                .order_by(ht.completed_at.desc(), ht.id.desc())
        if not user.has_role("supervisor"):
            raise Forbidden("only supervisors see every open task of the office")
        return base.where(ht.state == "ready").order_by(ht.due_at, ht.id)

    def _task_query(self, session: Session, user: User, view: str, limit: int, offset: int) -> list[TaskRow]:
        inner = self._task_select(session, user, view).limit(limit).offset(offset).subquery()
        q = (select(inner, ProcessInstance.subject, ProcessDefinition.key, ProcessDefinition.name.label("pname"),
                    User.full_name)
             .join(ProcessInstance, ProcessInstance.id == inner.c.instance_id)
             .join(ProcessVersion, ProcessVersion.id == inner.c.version_id)
             .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
             .outerjoin(User, User.id == inner.c.assignee_id))
        order = [inner.c.completed_at.desc(), inner.c.id.desc()] if view == "completed" else [inner.c.due_at, inner.c.id]
        rows = session.execute(q.order_by(*order)).all()
        return [TaskRow(id=r.id, instance_id=r.instance_id, subject=r.subject, process_key=r.key,
                        process_name=r.pname, bpmn_id=r.bpmn_id, name=r.name, lane=r.lane, state=r.state,
                        assignee_id=r.assignee_id, assignee=r.full_name, ready_at=as_utc(r.ready_at), due_at=as_utc(r.due_at),
                        completed_at=as_utc(r.completed_at), mutu_baku_minutes=r.mutu_baku_minutes,
                        paused=r.paused_at is not None) for r in rows]

    # ---- claim -----------------------------------------------------------------------------
    def claim(self, user_id: int, task_id: int) -> None:
        """Take a step of one's lane; claiming one's own step again changes nothing."""
        now = self._now()
        with self.sessions.begin() as session:
            tx = RawTx(session)
            locked = tx.one(hotpath.LOCK_TASK[tx.postgres], {"task": task_id, "user": user_id})
            if locked is None:
                raise NotFound(f"task {task_id} does not exist")
            task = LockedTask(*locked)
            self._check_actor(task)
            if task.state == "ready" and task.assignee_id == task.user_id:
                return
            self._check_open(task)
            (claimed, _), _ = tx.batch([
                (hotpath.CLAIM_TASK, {"task": task.id, "user": task.user_id, "now": now}),
                (hotpath.INSERT_AUDIT, [{"office_id": task.office_id, "instance_id": task.instance_id,
                                         "human_task_id": task.id, "user_id": task.user_id, "at": now,
                                         "kind": "task_claimed", "step": task.bpmn_id, "data": None}])])
            if claimed != 1:
                raise Conflict("this step changed meanwhile; reload it")

    def unclaim(self, user_id: int, task_id: int) -> None:
        now = self._now()
        with self.sessions.begin() as session:
            user = self._user(session, user_id)
            task = self._task(session, task_id)
            self._check_office(user, task.office_id)
            if task.state != "ready":
                raise Conflict("this step is already closed")
            if task.assignee_id != user.id and not user.has_role("supervisor"):
                raise Forbidden("only the holder or a supervisor may release this step")
            result = session.execute(update(HumanTask).where(
                HumanTask.id == task.id, HumanTask.state == "ready", HumanTask.assignee_id == task.assignee_id)
                .values(assignee_id=None, claimed_at=None).execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise Conflict("this step changed meanwhile; reload it")
            self._audit(session, task, user, now, "task_unclaimed", {"previous": task.assignee_id})

    def reassign(self, user_id: int, task_id: int, to_username: str) -> None:
        now = self._now()
        with self.sessions.begin() as session:
            user = self._user(session, user_id)
            task = self._task(session, task_id)
            self._check_office(user, task.office_id)
            if not user.has_role("supervisor"):
                raise Forbidden("only a supervisor may reassign a step")
            target = session.scalar(select(User).where(User.username == to_username))
            if target is None or not target.active:
                raise NotFound(f"user {to_username!r} does not exist")
            self._check_lane(session, target, task)
            if task.state != "ready":
                raise Conflict("this step is already closed")
            result = session.execute(update(HumanTask).where(
                HumanTask.id == task.id, HumanTask.state == "ready", HumanTask.assignee_id == task.assignee_id)
                .values(assignee_id=target.id, claimed_at=now).execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise Conflict("this step changed meanwhile; reload it")
            self._audit(session, task, user, now, "task_reassigned",
                        {"from": task.assignee_id, "to": target.id, "to_username": target.username})

    @staticmethod
    def _taken_message(task: HumanTask) -> str:
        if task.state != "ready":
            return "this step is already completed"
        holder = task.assignee.full_name if task.assignee else "someone else"
        return f"this step is already held by {holder}"

    @staticmethod
    def _task(session: Session, task_id: int) -> HumanTask:
        task = session.get(HumanTask, task_id)
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        return task

    @staticmethod
    def _audit(session, task: HumanTask, user: User | None, now: datetime, kind: str, data: dict | None = None):
        session.add(AuditEvent(office_id=task.office_id, instance_id=task.instance_id, human_task_id=task.id,
                               user_id=user.id if user else None, at=now, kind=kind, step=task.bpmn_id, data=data))

    # ---- complete --------------------------------------------------------------------------
    def validate_form(self, version: ProcessVersion, bpmn_id: str, data: dict) -> None:
        step = version.steps[bpmn_id]
        errors: dict[str, list[str]] = {}
        for error in self._validator(version, step["form"]).iter_errors(data):
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "required":
                missing = error.message.split("'")[1] if "'" in error.message else ""
                path = ".".join(filter(None, [path, missing]))
                errors.setdefault(path, []).append("wajib diisi / required")
                continue
            errors.setdefault(path, []).append(error.message)
        if errors:
            raise FormInvalid(errors)

    def complete(self, user_id: int, task_id: int, data: dict) -> list[int]:
        """Complete a step with its form data; exactly one of two racing callers wins.

        Returns the ids of the steps this completion opened (the next step, or a return after TIDAK).
        The hot path: one batch of reads, the workflow run, one batch of writes (see `hotpath`).
        """
        if not isinstance(data, dict):
            raise FormInvalid({"": ["form data must be an object"]})
        now = self._now()
        instance_id = None
        try:
            with self.sessions.begin() as session:
                tx = RawTx(session)
                (_, locked), (_, open_rows), (_, probe) = tx.batch([
                    (hotpath.LOCK_TASK[tx.postgres], {"task": task_id, "user": user_id}),
                    (hotpath.OPEN_TASKS_OF_TASK, {"task": task_id}),
                    (TaskIds.probe(tx.postgres), {})])
                if not locked:
                    raise NotFound(f"task {task_id} does not exist")
                task = LockedTask(*locked[0])
                instance_id = task.instance_id
                self._check_locked(task)
                form_version = self._form_version(session, task.version_id)
                self.validate_form(form_version, task.bpmn_id, data)
                workflow = self._workflow(session, task.instance_id, task.lock_version, task.version_id, lambda: (
                    tx.document(tx.one(hotpath.INSTANCE_STATE, {"instance": task.instance_id})[0])))
                spiff_task = workflow.get_task_from_id(UUID(task.task_guid))
                if spiff_task is None or not spiff_task.has_state(TaskState.READY):
                    raise Conflict("this step is no longer open in its process")
                submitted = copy.deepcopy(data)
                if form_version.steps[task.bpmn_id].get("paraf"):
                    submitted[f"paraf_{task.bpmn_id}"] = {
                        "user": task.username, "name": task.user_full_name, "at": now.isoformat()}
                # set, not deep-merge: a resubmitted field (say, evidence after a TIDAK) replaces the old value
                spiff_task.set_data(**copy.deepcopy(submitted))
                spiff_task.run()
                workflow.do_engine_steps()

                calendar = self.calendars.get(session, task.office_id, task.calendar_revision)
                paused = deadlines.paused_minutes(session, task.id, calendar) if task.was_paused else 0.0
                paused_at = tx.when(task.paused_at)
                if paused_at is not None:  # completed while paused: the open pause ends now
                    paused += calendar.working_minutes_between(paused_at, now)
                # rounded: two decimals of a minute are plenty, and the dashboard's rollup counts distinct values
                worked = round(calendar.working_minutes_between(tx.when(task.ready_at), now) - paused, 2)
                step = {"task": task.id, "user": task.user_id, "now": now}
                writes: list = [(hotpath.CLOSE_TASK[task.assignee_id is not None],
                                 {**step, "data": submitted, "worked": worked}),
                                (hotpath.CANCEL_DEADLINES, step)]
                if paused_at is not None:
                    writes.append((hotpath.CLOSE_PAUSE, step))
                if task.has_deliveries:  # pending, or being sent right now
                    outbox.cancel_task_deliveries(session, [task.id])
                head = InstanceHead(task.instance_id, task.office_id, task.version_id, task.status, task.lock_version)
                opened = self._mirror(
                    tx, session, head, workflow, now, [r for r in open_rows if r[0] != task.id],
                    TaskIds(tx, probe[0][0]), writes, [{
                        "office_id": task.office_id, "instance_id": task.instance_id, "human_task_id": task.id,
                        "user_id": task.user_id, "at": now, "kind": "task_completed", "step": task.bpmn_id,
                        "data": submitted}], calendar)
                self._save(tx, head, workflow, writes)
                self._keep_workflow(task.instance_id, head.lock_version, workflow)
                return opened
        except StaleDataError:
            self._workflows.pop(instance_id, None)
            raise Conflict("this process changed meanwhile (someone else completed a step); reload it") from None
        except Exception:
            self._workflows.pop(instance_id, None)
            raise

    @classmethod
    def _check_locked(cls, task: LockedTask) -> None:
        """The access and state checks of a completion, on its locking read."""
        cls._check_actor(task)
        cls._check_open(task)

    @staticmethod
    def _check_actor(task: LockedTask) -> None:
        """The acting user is active, of the task's office (or an admin), and in its lane."""
        if task.user_id is None or not task.user_active:
            raise Forbidden("unknown or inactive user")
        if task.user_office_id != task.office_id and "admin" not in (task.user_roles or "").split(","):
            raise Forbidden("this belongs to another office")
        if not task.member:
            raise Forbidden(f"step {task.name!r} belongs to lane {task.lane!r}, which you are not in")

    @staticmethod
    def _check_open(task: LockedTask) -> None:
        """The step is open and not held by someone else."""
        if task.state != "ready":
            raise Conflict("this step is already completed")
        if task.assignee_id not in (None, task.user_id):
            raise Conflict(f"this step is already held by {task.holder or 'someone else'}")

    def save_draft(self, user_id: int, task_id: int, data: dict) -> None:
        now = self._now()
        with self.sessions.begin() as session:
            user = self._user(session, user_id)
            task = self._task(session, task_id)
            self._check_lane(session, user, task)
            if task.state != "ready":
                raise Conflict("this step is already completed")
            if task.assignee_id not in (None, user.id):
                raise Conflict(self._taken_message(task))
            task.draft = data
            self._audit(session, task, user, now, "draft_saved")

    # ---- reading ---------------------------------------------------------------------------
    def task_detail(self, user_id: int, task_id: int) -> dict:
        with self.sessions() as session:
            user = self._user(session, user_id)
            task = self._task(session, task_id)
            self._check_office(user, task.office_id)
            version = session.get(ProcessVersion, task.version_id)
            step = version.steps.get(task.bpmn_id, {})
            may_act = task.group_id in self._group_ids(session, user)
            return {
                "task": task, "step": step, "sop_step": version.sop.get("steps", {}).get(task.bpmn_id, {}),
                "schema": version.forms.get(step.get("form"), {}), "sop": version.sop, "may_act": may_act,
                "instance": session.get(ProcessInstance, task.instance_id),
                "history": self._completed_steps(session, task.instance_id),
            }

    def lane_members(self, user_id: int, task_id: int) -> list[tuple[str, str]]:
        """(username, full name) of the active members of the task's lane: whom a supervisor may
        give the step to. Only for supervisors of the task's office."""
        with self.sessions() as session:
            user = self._user(session, user_id)
            task = self._task(session, task_id)
            self._check_office(user, task.office_id)
            if not user.has_role("supervisor"):
                raise Forbidden("only a supervisor may reassign a step")
            rows = session.execute(select(User.username, User.full_name).join(
                user_group, user_group.c.user_id == User.id).where(
                user_group.c.group_id == task.group_id, User.active.is_(True)).order_by(User.full_name)).all()
            return [(r.username, r.full_name) for r in rows]

    @staticmethod
    def _completed_steps(session: Session, instance_id: int) -> list[HumanTask]:
        return list(session.scalars(select(HumanTask).where(
            HumanTask.instance_id == instance_id, HumanTask.state == "completed").order_by(HumanTask.completed_at,
                                                                                           HumanTask.id)))

    def instance_detail(self, user_id: int, instance_id: int) -> dict:
        with self.sessions() as session:
            user = self._user(session, user_id)
            instance = session.get(ProcessInstance, instance_id)
            if instance is None:
                raise NotFound(f"instance {instance_id} does not exist")
            self._check_office(user, instance.office_id)
            tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)
                                         .order_by(HumanTask.ready_at, HumanTask.id)))
            events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id)
                                          .order_by(AuditEvent.id)))
            for e in events:
                _ = e.user
            version = instance.version
            _ = version.definition
            return {"instance": instance, "version": version, "tasks": tasks, "events": events}

    # ---- the SLA clock: pause, resume, calendar changes -------------------------------------
    def pause(self, user_id: int, task_id: int, reason: str) -> None:
        """Stop a step's clock (e.g. waiting for a revised press release); reminders are held."""
        reason = (reason or "").strip()
        if not reason:
            raise FormInvalid({"reason": ["wajib diisi / required"]})
        now = self._now()
        with self._instance_tx(task_id) as (session, instance, task):
            user = self._user(session, user_id)
            self._check_clock_actor(session, user, task)
            if task.paused_at is not None:
                raise Conflict("the clock of this step is already paused")
            task.paused_at, task.pause_reason = now, reason[:500]
            session.add(TaskPause(human_task_id=task.id, paused_at=now, reason=reason[:500], paused_by_id=user.id))
            deadlines.hold_task(session, task.id)
            self._retime_instance(session, instance, [task])
            self._audit(session, task, user, now, "clock_paused", {"reason": reason})

    def resume(self, user_id: int, task_id: int, reason: str = "") -> datetime | None:
        """Restart a paused clock; the due time moves on by the paused working time. Returns it."""
        now = self._now()
        with self._instance_tx(task_id) as (session, instance, task):
            user = self._user(session, user_id)
            self._check_clock_actor(session, user, task)
            if task.paused_at is None:
                raise Conflict("the clock of this step is not paused")
            previous = as_utc(task.due_at)
            self._close_pause(session, task, user, now, reason)
            calendar = self.calendars.get(session, task.office_id)
            due = deadlines.retime_task(session, task, calendar, release=True)
            self._retime_instance(session, instance, [task])
            self._audit(session, task, user, now, "clock_resumed", {
                "reason": reason or None, "paused_minutes": deadlines.paused_minutes(session, task.id, calendar),
                "due_before": previous.isoformat() if previous else None, "due_at": due.isoformat() if due else None})
            return due

    def _check_clock_actor(self, session: Session, user: User, task: HumanTask) -> None:
        self._check_office(user, task.office_id)
        if task.state != "ready":
            raise Conflict("this step is already closed")
        if user.has_role("supervisor") or task.assignee_id == user.id:
            return
        if task.assignee_id is None and task.group_id in self._group_ids(session, user):
            return
        raise Forbidden("only the holder, a member of the lane while unclaimed, or a supervisor may pause or "
                        "resume this step's clock")

    @staticmethod
    def _close_pause(session: Session, task: HumanTask, user: User | None, now: datetime, reason: str) -> None:
        pause = session.scalar(select(TaskPause).where(TaskPause.human_task_id == task.id,
                                                       TaskPause.resumed_at.is_(None)).order_by(TaskPause.id.desc()))
        if pause is not None:
            pause.resumed_at, pause.resume_reason = now, (reason or None)
            pause.resumed_by_id = user.id if user else None
        task.paused_at, task.pause_reason = None, None
        session.flush()

    @contextmanager
    def _instance_tx(self, task_id: int):
        """A transaction holding the task's instance lock, for changes to the step's timer."""
        instance_id = None
        try:
            with self.sessions.begin() as session:
                task = self._task(session, task_id)
                instance_id = task.instance_id
                instance = session.scalar(select(ProcessInstance).where(
                    ProcessInstance.id == task.instance_id).with_for_update().execution_options(populate_existing=True))
                session.refresh(task)
                yield session, instance, task
        except StaleDataError:
            self._workflows.pop(instance_id, None)
            raise Conflict("this process changed meanwhile; reload it") from None
        except Exception:
            self._workflows.pop(instance_id, None)
            raise

    def _retime_instance(self, session: Session, instance: ProcessInstance, tasks: list[HumanTask]) -> None:
        """Write the tasks' due times (or 'paused') into their BPMN timers; keep next_timer_at in step."""
        workflow = self._take_workflow(instance)
        steps = self._steps(session, instance.version_id)
        for task in tasks:
            spiff_task = workflow.get_task_from_id(UUID(task.task_guid))
            if spiff_task is None:
                continue
            due = PAUSED_TIMER if task.paused_at is not None else as_utc(task.due_at)
            self._set_step_timer(spiff_task, steps.get(task.bpmn_id, {}).get("timer_id"), due)
        session.flush()  # the tasks' new due times and events first
        head = InstanceHead.of(instance)
        head.next_timer_at = self._next_timer(workflow)
        self._save(RawTx(session), head, workflow, [], instance)
        self._keep_workflow(instance.id, head.lock_version, workflow)

    def _check_calendar_admin(self, session: Session, user_id: int | None, office: Office) -> User | None:
        """`None` is the operator at the console; otherwise an admin, or a supervisor of the office."""
        if user_id is None:
            return None
        user = self._user(session, user_id)
        if user.has_role("admin") or (user.has_role("supervisor") and user.office_id == office.id):
            return user
        raise Forbidden("only an admin or the office's supervisor may change its calendar")

    @staticmethod
    def _office(session: Session, office_code: str) -> Office:
        office = session.scalar(select(Office).where(Office.code == office_code).with_for_update())
        if office is None:
            raise NotFound(f"office {office_code!r} does not exist")
        return office

    def set_schedule(self, user_id: int | None, office_code: str, schedule: dict | None,
                     include_cuti_bersama: bool | None = None) -> int:
        """Set an office's weekly schedule (None: the Perpres 21/2023 default); re-time open steps.
        Returns how many open steps got a new due time."""
        try:
            normal = WeeklySchedule.from_dict(schedule).to_dict() if schedule is not None else None
        except (ValueError, TypeError, KeyError) as exc:
            raise LajurError(f"invalid schedule: {exc}") from None
        now = self._now()
        with self.sessions.begin() as session:
            office = self._office(session, office_code)
            user = self._check_calendar_admin(session, user_id, office)
            office.schedule = normal
            if include_cuti_bersama is not None:
                office.include_cuti_bersama = include_cuti_bersama
            return self._calendar_changed(session, office, user, now, {
                "schedule": normal, "include_cuti_bersama": office.include_cuti_bersama})

    def set_override(self, user_id: int | None, office_code: str, day, working: bool | None,
                     note: str = "") -> int:
        """Make `day` an extra day off (working=False) or working day (True) for the office;
        `working=None` removes the override. Returns how many open steps were re-timed."""
        now = self._now()
        with self.sessions.begin() as session:
            office = self._office(session, office_code)
            user = self._check_calendar_admin(session, user_id, office)
            row = session.scalar(select(CalendarOverride).where(CalendarOverride.office_id == office.id,
                                                                CalendarOverride.day == day))
            if working is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(CalendarOverride(office_id=office.id, day=day, working=working, note=note or ""))
            else:
                row.working, row.note = working, note or ""
            session.flush()
            return self._calendar_changed(session, office, user, now, {
                "day": day.isoformat(), "working": working, "note": note or None})

    def _calendar_changed(self, session: Session, office: Office, user: User | None, now: datetime,
                          data: dict) -> int:
        """Bump the revision and re-time every open step of the office, in the caller's transaction."""
        office.calendar_revision = (office.calendar_revision or 1) + 1
        session.flush()
        try:
            calendar = self.calendars.get(session, office.id)
        except ValueError as exc:
            raise LajurError(f"calendar refused: {exc}") from None
        session.add(AuditEvent(office_id=office.id, user_id=user.id if user else None, at=now,
                               kind="calendar_changed", data=data))
        open_tasks = list(session.scalars(select(HumanTask).where(HumanTask.office_id == office.id,
                                                                  HumanTask.state == "ready")
                                          .order_by(HumanTask.instance_id, HumanTask.id)))
        by_instance: dict[int, list[HumanTask]] = {}
        for task in open_tasks:
            by_instance.setdefault(task.instance_id, []).append(task)
        changed = 0
        for instance_id, tasks in by_instance.items():
            instance = session.scalar(select(ProcessInstance).where(ProcessInstance.id == instance_id)
                                      .with_for_update().execution_options(populate_existing=True))
            moved = []
            for task in tasks:
                before = as_utc(task.due_at)
                after = deadlines.retime_task(session, task, calendar)
                if after != before:
                    moved.append(task)
                    self._audit(session, task, user, now, "due_recomputed", {
                        "due_before": before.isoformat() if before else None,
                        "due_at": after.isoformat() if after else None})
            if moved:
                try:
                    self._retime_instance(session, instance, moved)
                except Exception:
                    self._workflows.pop(instance_id, None)
                    raise
                changed += len(moved)
        return changed

    def deadline_tick(self, settings, enqueue) -> "deadlines.TickResult":
        """What the beat tick runs: due BPMN timers, then due reminder deadlines and re-enqueues."""
        timers = self.run_due_timers()
        result = deadlines.tick(self.sessions, settings, self.calendars, self.clock, enqueue)
        result.timers = timers
        return result

    # ---- timers ----------------------------------------------------------------------------
    def run_due_timers(self, limit: int = 100) -> int:
        """Fire the BPMN timers (Mutu Baku) that are due; return how many instances moved."""
        now = self._now()
        moved = 0
        with self.sessions() as session:
            due_ids = list(session.scalars(select(ProcessInstance.id).where(
                ProcessInstance.status == "running", ProcessInstance.next_timer_at <= now)
                .order_by(ProcessInstance.next_timer_at).limit(limit)))
        for instance_id in due_ids:
            try:
                moved += self._fire_timers(instance_id, now)
            except Conflict:
                continue  # someone else moved it; the next tick looks again
        return moved

    def _fire_timers(self, instance_id: int, now: datetime) -> int:
        try:
            with self.sessions.begin() as session:
                query = select(ProcessInstance).where(ProcessInstance.id == instance_id).with_for_update(skip_locked=True)
                instance = session.scalar(query.execution_options(populate_existing=True))
                if instance is None or instance.status != "running" or not instance.next_timer_at \
                        or as_utc(instance.next_timer_at) > now:
                    return 0
                workflow = self._take_workflow(instance)
                before = {t.id for t in workflow.get_tasks(state=TaskState.WAITING)}
                workflow.refresh_timers()
                workflow.do_engine_steps()
                fired = [t for t in workflow.get_tasks(state=TaskState.FINISHED_MASK) if t.id in before]
                for t in fired:
                    session.add(AuditEvent(office_id=instance.office_id, instance_id=instance.id, at=now,
                                           kind="timer_fired", step=t.task_spec.bpmn_id,
                                           data={"name": t.task_spec.bpmn_name}))
                session.flush()  # the timer events first, in order
                tx = RawTx(session)
                head = InstanceHead.of(instance)
                writes: list = []
                self._mirror(tx, session, head, workflow, now, tx.all(hotpath.OPEN_TASKS, {"instance": instance.id}),
                             TaskIds(tx), writes, [])
                self._save(tx, head, workflow, writes, instance)
                self._keep_workflow(instance.id, head.lock_version, workflow)
                return 1 if fired else 0
        except StaleDataError:
            self._workflows.pop(instance_id, None)
            raise Conflict("instance changed meanwhile") from None
        except Exception:
            self._workflows.pop(instance_id, None)
            raise
