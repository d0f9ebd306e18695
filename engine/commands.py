"""The commands on a running SOP: start, claim, unclaim, reassign, save a draft, complete.

Each is one transaction: a locking read (`store.LOCK_TASK`: the step and its instance
locked together, with the acting user and their lane membership; `FOR UPDATE` on
PostgreSQL, SQLite's write lock taken at `BEGIN IMMEDIATE`), the rules of engine/access.py,
the workflow run when the command moves it, and the writes recorded in one unit of work
(engine/uow.py) sent in one batch. A completion is three round trips on PostgreSQL: the
reads, the writes, COMMIT. Of two racing commands exactly one wins; the other gets a
Conflict (the guarded step or instance write found the row changed).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, exists, select
from SpiffWorkflow.util.task import TaskState

from . import access, classification, incidents, limits, published, registers, rework, timers
from .access import Actor
from .errors import Conflict, FormInvalid, NotFound
from .mirror import cancel_step, mirror
from . import requirements
from .models import User, user_group
from .sla import paused_minutes
from .sqltx import SqlTx, Stmt
from .store import (INSTANCE_STATE, LOCK_INSTANCE, LOCK_TASK, OPEN_TASKS, OPEN_TASKS_OF_TASK, START_READ, USER_LANES, InstanceHead, InstanceIds, LockedTask,
                    TaskIds, head_of, unit_of_work)
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import Runtime

_U = User.__table__
# the target of a reassignment and whether they are in the step's lane
TARGET = Stmt(select(_U.c.id, _U.c.active, _U.c.office_id, _U.c.roles, _U.c.username,
                     exists().where(user_group.c.user_id == _U.c.id, user_group.c.group_id == bindparam("group")))
              .where(_U.c.username == bindparam("username")))


class Opened(list):
    """The ids of the steps a completion opened; `incident` is the id of the incident the
    completion ran into (engine/incidents.py), else None. A plain list to every other caller."""

    incident: int | None = None


def locked_step(tx: SqlTx, task_id: int, user_id: int) -> tuple[LockedTask, Actor]:
    """The locking read of a step command, with the acting user checked active."""
    row = tx.one(LOCK_TASK, {"task": task_id, "user": user_id})
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    task = LockedTask(*row)
    access.check_active(task.user_id is not None, task.user_active)
    return task, Actor.of_locked(task)


class StepChange(NamedTuple):
    session: object
    tx: SqlTx
    task: LockedTask
    actor: Actor
    uow: UnitOfWork


@contextmanager
def step_change(rt: "Runtime", task_id: int, user_id: int) -> Iterator[StepChange]:
    """One transaction on one step: its locking read (the user checked active) and a unit of
    work that knows the instance's audit chain head. If anything fails, the instance's cached
    workflow is dropped (it may be half changed)."""
    instance_id = None
    try:
        with rt.sessions.begin() as session:
            tx = SqlTx(session)
            task, actor = locked_step(tx, task_id, user_id)
            instance_id = task.instance_id
            yield StepChange(session, tx, task, actor, unit_of_work(tx, task))
    except BaseException:
        rt.instances.forget(instance_id)
        raise


def check_open(task: LockedTask) -> None:
    """The step is open and not held by someone else."""
    if task.state != "ready":
        raise Conflict("this step is already completed")
    if task.assignee_id not in (None, task.user_id):
        raise Conflict(f"this step is already held by {task.holder or 'someone else'}")


def _audit(uow: UnitOfWork, task: LockedTask, kind: str, now, data: dict | None = None) -> None:
    uow.audit(kind, office_id=task.office_id, instance_id=task.instance_id, human_task_id=task.id,
              user_id=task.user_id, at=now, step=task.bpmn_id, data=data)


# ---- start ----------------------------------------------------------------------------------

def start_lanes(rt: "Runtime", session, version_id: int) -> set[str]:
    """The lanes that may start a version: a fact stored at deploy (nothing of the process runs)."""
    return set(rt.instances.form_version(session, version_id).facts["start_lanes"])


def start(rt: "Runtime", user_id: int, process_key: str, subject: str) -> int:
    """Start the latest version of an SOP of the user's office; return the instance id."""
    subject = limits.text("subject", subject, limits.SUBJECT, required=True)
    now = rt.now()
    with rt.sessions.begin() as session:
        tx = SqlTx(session)
        (_, found), (_, lanes), (_, instance_id), (_, task_id) = tx.batch([
            (START_READ, {"user": user_id, "key": process_key}), (USER_LANES, {"user": user_id}),
            (InstanceIds.probe(tx.postgres), {}), (TaskIds.probe(tx.postgres), {})])
        access.check_active(bool(found), found[0][1] if found else None)
        _, _, office_id, version_id, version_number, revision, _ = found[0]
        if version_id is None:
            raise NotFound(f"process {process_key!r} is not deployed in your office")
        access.check_start({name for (name,) in lanes}, start_lanes(rt, session, version_id))
        workflow = rt.instances.new_workflow(session, version_id)  # authorised: now it may run
        failure = incidents.guarded(workflow, workflow.do_engine_steps)
        head = InstanceHead(InstanceIds(tx, instance_id[0][0]).take(), office_id, version_id, "running", 1)
        uow = UnitOfWork(tx)
        uow.new_instance({"id": head.id, "office_id": office_id, "version_id": version_id, "subject": subject,
                          "state": {}, "started_by_id": user_id, "started_at": now})
        uow.audit("instance_started", office_id=office_id, instance_id=head.id, user_id=user_id, at=now,
                  data={"subject": subject, "process": process_key, "version": version_number})
        if failure is not None:  # the instance exists, stopped at the failing element (engine/incidents.py)
            incidents.record(tx, uow, head, failure, now, subject=subject, user_id=user_id)
        # the starter holds the first step when it is in their lane (they are the one doing it)
        mirror(rt, session, uow, head, workflow, now, [], TaskIds(tx, task_id[0][0]),
               rt.calendars.get(session, office_id, revision),
               holder_for=rework.starter_rule(user_id, {name for (name,) in lanes}))
        rt.instances.save(uow, head, workflow)
        return head.id


# ---- holding a step -------------------------------------------------------------------------

def claim(rt: "Runtime", user_id: int, task_id: int) -> None:
    """Take a step of one's lane; claiming one's own step again changes nothing."""
    now = rt.now()
    with step_change(rt, task_id, user_id) as (_, _, task, actor, uow):
        access.check_act(actor, task)
        if task.state == "ready" and task.assignee_id == task.user_id:
            return
        check_open(task)
        uow.task(task.id, {"assignee_id": task.user_id, "claimed_at": now},
                 expect={"state": "ready", "assignee_id": None})
        _audit(uow, task, "task_claimed", now)
        uow.flush()


def unclaim(rt: "Runtime", user_id: int, task_id: int) -> None:
    """Give a step back to its lane (the holder, or a supervisor)."""
    now = rt.now()
    with step_change(rt, task_id, user_id) as (_, _, task, actor, uow):
        access.check_see(actor, task.office_id)
        if task.state != "ready":
            raise Conflict("this step is already closed")
        access.check_release(actor, task)
        uow.task(task.id, {"assignee_id": None, "claimed_at": None},
                 expect={"state": "ready", "assignee_id": task.assignee_id})
        _audit(uow, task, "task_unclaimed", now, {"previous": task.assignee_id})
        uow.flush()


def reassign(rt: "Runtime", user_id: int, task_id: int, to_username: str) -> None:
    """(Supervisor) give a step to another member of its lane."""
    now = rt.now()
    with step_change(rt, task_id, user_id) as (_, tx, task, actor, uow):
        access.check_reassign(actor, task)
        found = tx.one(TARGET, {"username": to_username, "group": task.group_id})
        if found is None or not found[1]:
            raise NotFound(f"user {to_username!r} does not exist")
        target = Actor(found[0], found[2], access.roles_of(found[3]),
                       frozenset({task.group_id}) if found[5] and task.group_id is not None else frozenset())
        access.check_act(target, task)
        if task.state != "ready":
            raise Conflict("this step is already closed")
        uow.task(task.id, {"assignee_id": target.id, "claimed_at": now},
                 expect={"state": "ready", "assignee_id": task.assignee_id})
        _audit(uow, task, "task_reassigned", now, {"from": task.assignee_id, "to": target.id, "to_username": found[4]})
        uow.flush()


def save_draft(rt: "Runtime", user_id: int, task_id: int, data: dict) -> None:
    limits.document("", data)
    now = rt.now()
    with step_change(rt, task_id, user_id) as (_, _, task, actor, uow):
        access.check_act(actor, task)
        check_open(task)
        uow.task(task.id, {"draft": data})
        _audit(uow, task, "draft_saved", now)
        uow.flush()


# ---- complete -------------------------------------------------------------------------------

def validate_form(rt: "Runtime", version, bpmn_id: str, data: dict) -> None:
    """Check `data` against the step's JSON Schema; raise FormInvalid with messages per field."""
    step = version.steps[bpmn_id]
    errors: dict[str, list[str]] = {}
    for error in rt.instances.validator(version, step["form"]).iter_errors(data):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = ".".join(filter(None, [path, missing]))
            errors.setdefault(path, []).append("wajib diisi / required")
            continue
        errors.setdefault(path, []).append(error.message)
    schema = version.forms.get(step["form"], {})
    for name, prop in schema.get("properties", {}).items():  # a classification code is one of the list
        if prop.get("x-lajur-widget") == "classification" and isinstance(data.get(name), str) \
                and name not in errors and classification.find(data[name]) is None:
            errors[name] = ["kode klasifikasi tidak dikenal (Permendagri 83/2022) / unknown classification code"]
    if errors:
        raise FormInvalid(errors)


def complete(rt: "Runtime", user_id: int, task_id: int, data: dict, claim: bool = False,
             checklist: list[str] | None = None) -> Opened:
    """Complete a step with its form data; exactly one of two racing callers wins.

    Completing needs holding the step: an unclaimed step is refused unless the caller says
    `claim=True` (the explicit "claim and complete"). `checklist`: the Persyaratan items ticked,
    checked against the SOP (engine/requirements.py) and recorded with the completion.
    A step the flow comes back to opens for its previous holder (engine/rework.py).
    Returns the ids of the steps this completion opened (the next step, or a return after TIDAK).
    One batch of reads, the workflow run, one batch of writes. If the process fails after the
    step (a condition, script or timer), the completion is kept and an incident opened in the
    same transaction (engine/incidents.py says what is kept); `.incident` is its id."""
    if not isinstance(data, dict):
        raise FormInvalid({"": ["form data must be an object"]})
    limits.document("", data)
    now = rt.now()
    instance_id = None
    try:
        with rt.sessions.begin() as session:
            tx = SqlTx(session)
            (_, locked), (_, open_rows), (_, probe) = tx.batch([
                (LOCK_TASK, {"task": task_id, "user": user_id}), (OPEN_TASKS_OF_TASK, {"task": task_id}),
                (TaskIds.probe(tx.postgres), {})])
            if not locked:
                raise NotFound(f"task {task_id} does not exist")
            task = LockedTask(*locked[0])
            instance_id = task.instance_id
            access.check_active(task.user_id is not None, task.user_active)
            access.check_act(Actor.of_locked(task), task)
            check_open(task)
            form_version = rt.instances.form_version(session, task.version_id)
            validate_form(rt, form_version, task.bpmn_id, data)
            ticked = requirements.check((form_version.sop_steps or {}).get(task.bpmn_id, {}), checklist)
            if task.assignee_id is None and not claim:
                raise Conflict("take this step first (Ambil), or claim and complete it in one go")
            workflow = rt.instances.workflow(session, tx, task.instance_id, task.lock_version, task.version_id)
            spiff_task = workflow.get_task_from_id(UUID(task.task_guid))
            if spiff_task is None or not spiff_task.has_state(TaskState.READY):
                raise Conflict("this step is no longer open in its process")
            submitted = copy.deepcopy(data)
            uow = unit_of_work(tx, task)
            calendar = rt.calendars.get(session, task.office_id, task.calendar_revision)
            register = form_version.steps[task.bpmn_id].get("register")
            if register:  # the next number of the step's register, issued in this transaction
                issued = registers.issue(
                    tx, uow, spec=register, office_id=task.office_id, instance_id=task.instance_id, task_id=task.id,
                    step=task.bpmn_id, user_id=task.user_id, user_name=task.user_full_name, subject=None,
                    data={**spiff_task.data, **submitted}, now=now, tz=calendar.tz.key,
                    default_classification=register.get("default_classification"))
                submitted[issued.field] = issued.number
            if form_version.steps[task.bpmn_id].get("paraf"):
                submitted[f"paraf_{task.bpmn_id}"] = {
                    "user": task.username, "name": task.user_full_name, "at": now.isoformat()}
            # set, not deep-merge: a resubmitted field (say, evidence after a TIDAK) replaces the old value
            spiff_task.set_data(**copy.deepcopy(submitted))
            with timers.on_clock(rt, workflow, now):
                failure = incidents.guarded(workflow, lambda: (spiff_task.run(), workflow.do_engine_steps()))

            paused = paused_minutes(session, task.id, calendar) if task.was_paused else 0.0
            paused_at = tx.when(task.paused_at)
            if paused_at is not None:  # completed while paused: the open pause ends now
                paused += calendar.working_minutes_between(paused_at, now)
            # rounded: two decimals of a minute are plenty, and the dashboard's rollup counts distinct values
            worked = round(calendar.working_minutes_between(tx.when(task.ready_at), now) - paused, 2)
            stored = submitted if ticked is None else {**submitted, requirements.KEY: ticked}
            closed = {"state": "completed", "completed_by_id": task.user_id, "completed_at": now, "data": stored,
                      "draft": None, "working_minutes": worked, "paused_at": None, "pause_reason": None}
            if task.assignee_id is None:  # claim and complete (asked for explicitly, above)
                closed.update(assignee_id=task.user_id, claimed_at=now)
                _audit(uow, task, "task_claimed", now, {"with_completion": True})
            uow.task(task.id, closed)
            uow.deadlines(task.id, ("pending", "held"), {"status": "cancelled"})
            if paused_at is not None:
                uow.pause_closed(task.id, now, "completed", task.user_id)
            if task.pending_pause is not None:  # nothing left to pause: the request is withdrawn
                uow.pause_decided(task.pending_pause, "withdrawn", now, task.user_id, "completed")
                _audit(uow, task, "pause_withdrawn", now, {"pause_request": task.pending_pause,
                                                          "because": "completed"})
            if task.has_deliveries:
                uow.cancel_deliveries(task.id)
            if form_version.steps[task.bpmn_id].get("published"):  # links to check after COMMIT
                published.record(uow, form_version.steps[task.bpmn_id]["published"], office_id=task.office_id,
                                 instance_id=task.instance_id, task_id=task.id,
                                 data={**spiff_task.data, **submitted}, now=now)
            _audit(uow, task, "task_completed", now,
                   submitted if ticked is None else {**submitted, requirements.KEY: ticked})
            head = head_of(task)
            incident = None
            if failure is not None:
                incident = incidents.record(tx, uow, head, failure, now, user_id=task.user_id)
            returns = rework.ReturnRule(tx, task.instance_id, workflow, form_version.steps, task.bpmn_id)
            mirrored = mirror(rt, session, uow, head, workflow, now, [r for r in open_rows if r[0] != task.id],
                              TaskIds(tx, probe[0][0]), calendar, holder_for=returns)
            opened = Opened(mirrored)
            opened.incident, opened.steps = incident, mirrored.steps
            reason = None
            if returns.returns:
                reason = rework.reason_of(form_version.forms.get(form_version.steps[task.bpmn_id].get("form"), {}),
                                          submitted)
            names = {back.task_id: back.holder_name for back in returns.returns}
            for info in opened.steps:
                info["holder_name"] = names.get(info["id"])
            for back in returns.returns:
                uow.audit("task_returned", office_id=task.office_id, instance_id=task.instance_id,
                          human_task_id=back.task_id, user_id=task.user_id, at=now, step=back.bpmn_id,
                          data=rework.returned_data(reason, task.user_id, task.user_full_name, task, back.holder_id,
                                                    now))
            rt.instances.save(uow, head, workflow)
            if returns.returns:
                notify_returned(rt, session, task, returns.returns, reason, now)
            return opened
    except BaseException:
        rt.instances.forget(instance_id)
        raise


# ---- cancel ---------------------------------------------------------------------------------

def cancel(rt: "Runtime", user_id: int, instance_id: int, reason: str) -> None:
    """(Supervisor) stop a running instance: its open steps close, its register numbers stay,
    marked cancelled (a number once issued is never given to another item)."""
    reason = limits.text("reason", reason, limits.REASON, required=True)
    now = rt.now()
    try:
        with rt.sessions.begin() as session:
            tx = SqlTx(session)
            actor = access.load_actor(session, user_id)
            row = tx.one(LOCK_INSTANCE, {"instance": instance_id})
            if row is None:
                raise NotFound(f"instance {instance_id} does not exist")
            head = head_of(row)
            access.check_see(actor, head.office_id)
            access.check_cancel_instance(actor, head.office_id)
            if head.status != "running":
                raise Conflict(f"this process is already {head.status}")
            uow = unit_of_work(tx, head)
            for task_id, _, _ in tx.all(OPEN_TASKS, {"instance": instance_id}):
                cancel_step(uow, task_id, now)
            uow.register_entries_cancelled(instance_id, now)
            uow.audit("instance_cancelled", office_id=head.office_id, instance_id=instance_id, user_id=user_id,
                      at=now, data={"reason": reason})
            state = tx.document(tx.one(INSTANCE_STATE, {"instance": instance_id})[0])
            uow.instance(instance_id, head.lock_version, state=state, status="cancelled", completed_at=now,
                         next_timer_at=None)
            uow.flush()
    finally:
        rt.instances.forget(instance_id)
def notify_returned(rt: "Runtime", session, task: LockedTask, returns: list, reason: str | None, now) -> None:
    """Tell whoever holds each step sent back (else its lane's members) why, through the
    reminders' notification path (engine.tick.notify_user); in the same transaction."""
    from .config import Settings
    from .models import HumanTask
    from .notify import ReturnFacts, locale_of, render_returned
    from .sla import CalendarCache
    from .tick import TickCache, notify_user
    settings = rt.settings or Settings.from_env()
    cache = TickCache(session, CalendarCache(), settings)
    _, sop_name = cache.version(task.version_id)
    office = cache.office(task.office_id)
    subject = cache.subject(task.instance_id)
    for back in returns:
        step = session.get(HumanTask, back.task_id)
        users = ([cache.session.get(User, back.holder_id)] if back.holder_id is not None
                 else cache.group_members(back.group_id))
        link = f"{settings.base_url.rstrip('/')}/tasks/{back.task_id}"
        for user in users:
            facts = ReturnFacts(step=step.name, sop=sop_name, subject=subject, instance_id=task.instance_id,
                                by_name=task.user_full_name or task.username or "-", from_step=task.name,
                                reason=reason, due_at=SqlTx.when(step.due_at), link=link,
                                recipient_name=user.full_name, pooled=back.holder_id is None,
                                timezone=office.timezone)
            text_subject, text = render_returned(facts, locale_of(user.locale))
            payload = {"event": "returned", "reason": reason, "by": facts.by_name, "from_step": task.name,
                       "step": step.name, "instance_id": task.instance_id, "subject": subject, "link": link,
                       "recipient": {"username": user.username, "name": user.full_name,
                                     "handle": user.webhook_handle}, "text": text}
            notify_user(cache, user, office_id=task.office_id, human_task_id=back.task_id,
                        instance_id=task.instance_id, level="returned", seq=0, subject=text_subject, text=text,
                        link=link, payload={"webhook": payload, "reason": reason}, now=now, enqueued=False)
    session.flush()
