"""Retrying an incident: rerun the failed element from the stored state, after a fix.

A fix is either corrected data or a new version the instance was migrated to (the retry
always loads the instance's current version). Corrected data is restricted to the fields of
the SOP's forms, each value validated by the JSON Schema of its field; the engine's own
variables (`paraf_<step>`: who approved) cannot be edited, a paraf is a signature.

Rerunning "the failed element" (SpiffWorkflow 3):
- a gateway, script or user task in `TaskState.ERROR` (its condition, script or post-script
  raised): the corrected values are set on its data and it is run again
  (`workflow.run_task_from_id`, SpiffWorkflow's public way to run one task);
- a timer that could not be set, or a failing pre-script: the element starts over from its
  parent (`workflow.reset_from_task_id`; the values are set on the parent too, since a
  restarted task copies its data from there);
then `do_engine_steps` carries the instance on as far as it goes.

One transaction, the instance locked: on success the incident is resolved (`incident_resolved`
in the audit trail, with the values changed), the workflow saved and its new steps opened,
the status back to 'running' (unless another incident of the instance is open). If the same
element fails again nothing of the instance changes: the incident's message, data and
`attempts` are updated (`incident_retry_failed`). If the instance gets past it and fails at a
later element, that progress is kept: this incident is resolved and a new one opened there.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import bindparam, func, select
from SpiffWorkflow.util.task import TaskState

from . import access, incidents, limits, timers
from .errors import Conflict, FormInvalid, NotFound
from .mirror import mirror
from .models import Incident
from .sqltx import SqlTx, Stmt
from .store import LOCK_INSTANCE, OPEN_TASKS, TaskIds, head_of, unit_of_work

if TYPE_CHECKING:
    from .runtime import Runtime

_N = Incident.__table__
READ_INCIDENT = Stmt(select(_N.c.id, _N.c.office_id, _N.c.instance_id, _N.c.element_id, _N.c.task_guid,
                            _N.c.attempts, _N.c.resolved_at, _N.c.detail)
                     .where(_N.c.id == bindparam("incident")))
OTHER_OPEN = Stmt(select(func.count()).select_from(_N).where(
    _N.c.instance_id == bindparam("instance"), _N.c.resolved_at.is_(None), _N.c.id != bindparam("incident")))


@dataclass(frozen=True)
class RetryResult:
    resolved: bool              # the incident is resolved
    incident_id: int
    new_incident: int | None    # the instance got past it and stopped at a later element
    message: str                # the error of a retry that failed ("" on success)


def form_fields(forms: dict) -> dict[str, dict]:
    """Every field of the version's forms with its JSON Schema (the first form declaring it)."""
    fields: dict[str, dict] = {}
    for name in sorted(forms):
        for field_name, schema in ((forms[name] or {}).get("properties") or {}).items():
            fields.setdefault(field_name, schema if isinstance(schema, dict) else {})
    return fields


def coerce(schema: dict, text: str):
    """A value typed as text (CLI, web) as its field's type: JSON for numbers, booleans,
    arrays and objects, else the text itself."""
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds & {"integer", "number", "boolean", "array", "object", "null"} and not kinds & {"string"}:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return text  # the schema check says what is wrong
    return text


def check_changes(fields: dict[str, dict], changes: dict) -> dict:
    """The corrected values, each a form field valid by its JSON Schema; FormInvalid otherwise."""
    errors: dict[str, list[str]] = {}
    for name, value in changes.items():
        if name.startswith("paraf_"):
            errors[name] = ["a paraf is a signature and cannot be edited / paraf tidak dapat diubah"]
        elif name not in fields:
            errors[name] = ["not a field of this SOP's forms / bukan isian formulir SOP ini"]
        else:
            messages = [e.message for e in Draft202012Validator(fields[name], format_checker=FormatChecker())
                        .iter_errors(value)]
            if messages:
                errors[name] = messages[:3]
    if errors:
        raise FormInvalid(errors)
    return changes


def _find_task(workflow, element_id: str, task_guid: str | None):
    """The failed element's task: by id, else (after a migration) by element among the stopped ones."""
    if task_guid:
        try:
            task = workflow.get_task_from_id(UUID(task_guid))
        except Exception:  # SpiffWorkflow raises TaskNotFoundException for an unknown id
            task = None
        if task is not None:
            return task
    for task in workflow.get_tasks(state=TaskState.ERROR | TaskState.FUTURE):
        if task.task_spec.bpmn_id == element_id and (task.has_state(TaskState.ERROR) or (
                task.parent is not None and task.parent.has_state(TaskState.COMPLETED))):
            return task
    return None


def _rerun(workflow, task, fixes: dict, restart: bool) -> None:
    if task is not None and task.has_state(TaskState.ERROR) and not restart:
        task.data.update(copy.deepcopy(fixes))
        workflow.run_task_from_id(task.id)
    elif task is not None and not task.has_state(TaskState.FINISHED_MASK & ~TaskState.ERROR):
        for target in (task.parent, task):
            if target is not None:
                target.data.update(copy.deepcopy(fixes))
        workflow.reset_from_task_id(task.id)
    workflow.do_engine_steps()


def retry(rt: "Runtime", user_id: int | None, incident_id: int, changes: dict | None = None) -> RetryResult:
    """Rerun an incident's failed element, with `changes` (field -> value) applied first.
    `user_id` None is the operator at the console."""
    changes = dict(changes or {})
    limits.document("", changes)
    now = rt.now()
    instance_id = None
    try:
        with rt.sessions.begin() as session:
            tx = SqlTx(session)
            row = tx.one(READ_INCIDENT, {"incident": incident_id})
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            _, office_id, instance_id, element_id, task_guid, attempts, resolved_at, detail = row
            actor = None if user_id is None else access.load_actor(session, user_id)
            access.check_retry_incident(actor, office_id)
            if resolved_at is not None:
                raise Conflict(f"incident {incident_id} is already resolved")
            head = head_of(tx.one(LOCK_INSTANCE, {"instance": instance_id}))
            if head.status != "incident":
                raise Conflict(f"instance {instance_id} is {head.status}, not stopped by an incident")
            fields = form_fields(rt.instances.form_version(session, head.version_id).forms)
            fixes = check_changes(fields, changes)
            workflow = rt.instances.workflow(session, tx, head.id, head.lock_version, head.version_id)
            task = _find_task(workflow, element_id, task_guid)
            before = {k: copy.deepcopy(task.data.get(k)) for k in fixes} if task is not None else {}
            changed = {k: {"from": before.get(k), "to": v} for k, v in fixes.items()}
            restart = bool((tx.document(detail) or {}).get("restart"))
            with timers.on_clock(rt, workflow, now):
                failure = incidents.guarded(workflow, lambda: _rerun(workflow, task, fixes, restart))
            uow = unit_of_work(tx, head)
            attempt = attempts + 1
            same = failure is not None and (failure.element_id == element_id or failure.task_guid == task_guid)
            if same:  # nothing of the instance changes; the incident says what failed this time
                rt.instances.forget(head.id)
                uow.incident(incident_id, {"message": failure.message, "detail": failure.detail,
                                           "snapshot": failure.snapshot, "attempts": attempt,
                                           "last_attempt_at": now})
                uow.audit("incident_retry_failed", office_id=office_id, instance_id=head.id, user_id=user_id,
                          at=now, step=element_id or None,
                          data={"incident": incident_id, "attempt": attempt, "message": failure.message,
                                "changed": changed})
                uow.flush()
                return RetryResult(False, incident_id, None, failure.message)
            uow.incident(incident_id, {"resolved_at": now, "resolved_by_id": user_id, "attempts": attempt,
                                       "last_attempt_at": now,
                                       "resolution": "data corrected and retried" if fixes else "retried"})
            uow.audit("incident_resolved", office_id=office_id, instance_id=head.id, user_id=user_id, at=now,
                      step=element_id or None,
                      data={"incident": incident_id, "attempts": attempt, "changed": changed,
                            "version_id": head.version_id})
            others = tx.one(OTHER_OPEN, {"instance": head.id, "incident": incident_id})[0]
            head.status = "incident" if others else "running"
            new_incident = None
            if failure is not None:
                new_incident = incidents.record(tx, uow, head, failure, now, user_id=user_id)
            mirror(rt, session, uow, head, workflow, now, tx.all(OPEN_TASKS, {"instance": head.id}), TaskIds(tx))
            rt.instances.save(uow, head, workflow)
            return RetryResult(True, incident_id, new_incident, failure.message if failure else "")
    except BaseException:
        rt.instances.forget(instance_id)
        raise
