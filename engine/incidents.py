"""Incidents: a run-time error of a deployed process becomes a visible, retryable stop.

Camunda's incidents are the model. When SpiffWorkflow fails while it advances an instance
(a gateway condition that cannot be evaluated with this case's data, a script that raises,
a timer whose expression gives no ISO 8601 duration), the command that was running does not
fail: `guarded` catches the error, `describe` names the failing element and says what went
wrong in plain words (Bahasa Indonesia and English), and `record` writes, in the command's
own transaction and unit of work, the `incident` row, the `incident_opened` audit row and an
in-app notification to the office's process owners (and whoever deployed the version) and
supervisors. The instance's status is `'incident'` while any of its incidents is open.

What is kept when a step completion hits the error (engine/commands.py): the user's
completion (their form data, the step closed as completed, `task_completed` in the audit
trail), everything SpiffWorkflow finished before the failing element, and steps that became
ready on other branches. The failing element is left as SpiffWorkflow leaves it: a gateway,
script or user task (a failing post-script) in `TaskState.ERROR` with its data; a timer that
could not be set stays unstarted (its task not yet waiting). Nothing after it exists, so no
step is opened past it. Retrying (engine/incident_retry.py) reruns exactly that element.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import bindparam, select
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .errors import LajurError, _printable
from .expressions import ExpressionError, ScriptsDisabled, TimerValueError, check
from .models import Incident, Office, ProcessDefinition, ProcessInstance, ProcessVersion, User
from .sqltx import SqlTx, Stmt
from .store import InstanceHead, NewIds, _probes
from .uow import UnitOfWork

KINDS = ("expression", "script", "timer", "other")
SNAPSHOT_BYTES = 16_000     # the data kept with an incident, as JSON
VALUE_BYTES = 1_000         # one value longer than this is kept as a note of its size
ERROR_CHARS = 300           # the technical error text, one line


class IncidentIds(NewIds):
    _probes = _probes(Incident.__table__)


@dataclass
class Failure:
    """What stopped an instance: where, what kind, in plain words, and the data there."""

    kind: str
    element_id: str
    element_name: str
    task_guid: str | None
    message: str                       # English, one line
    detail: dict = field(default_factory=dict)   # reason, names, expression, text {id, en}, error
    snapshot: dict | None = None

    def text(self, locale: str) -> str:
        return (self.detail.get("text") or {}).get("en" if locale == "en" else "id", self.message)


def guarded(workflow: BpmnWorkflow, step: Callable[[], object]) -> Failure | None:
    """Run `step` (SpiffWorkflow advancing `workflow`); a run-time error of the process is
    returned as a Failure instead of raised. Lajur's own errors (a refusal, a conflict) pass."""
    try:
        step()
    except LajurError:
        raise
    except Exception as exc:  # anything the deployed process raised while running
        return describe(exc, workflow)
    return None


def text_of(incident, locale: str) -> str:
    """An incident row's message in `locale` ('id' or 'en')."""
    texts = (incident.detail or {}).get("text") or {}
    return texts.get("en" if locale == "en" else "id") or incident.message


# ---- what failed -----------------------------------------------------------------------------

def _cause(exc: BaseException) -> BaseException:
    """The error under SpiffWorkflow's wrapper (it raises its own inside `except`)."""
    seen = exc
    for _ in range(5):
        inner = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        if inner is None:
            break
        seen = inner
    return seen


def _failing_task(exc: BaseException, workflow: BpmnWorkflow):
    task = getattr(exc, "task", None)
    if task is not None:
        return task
    errored = sorted(workflow.get_tasks(state=TaskState.ERROR), key=lambda t: t.last_state_change)
    if errored:
        return errored[-1]
    spec = getattr(exc, "task_spec", None)
    if spec is not None:
        for t in workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
            if t.task_spec is spec:
                return t
    return None


def _one_line(text: str) -> str:
    text = _printable(" ".join(str(text).split()))
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "…"


_EXPRESSION = re.compile(r"Error evaluating expression '(.*)'", re.S)
_MISSING = re.compile(r"'([A-Za-z_][\w]*)' is not defined")
_NAME_ERROR = re.compile(r"name '([A-Za-z_][\w]*)' is not defined")


def describe(exc: BaseException, workflow: BpmnWorkflow) -> Failure:
    """Name the failing element and say what failed, in Bahasa Indonesia and English."""
    task = _failing_task(exc, workflow)
    cause = _cause(exc)
    spec = task.task_spec if task is not None else getattr(exc, "task_spec", None)
    element_id = (getattr(spec, "bpmn_id", None) or getattr(spec, "name", "") or "") if spec is not None else ""
    element = (getattr(spec, "bpmn_name", None) or element_id) if spec is not None else ""
    element_id, element = _printable(element_id)[:200], _printable(element)[:300]
    event_definition = getattr(spec, "event_definition", None)
    is_timer = type(event_definition).__name__.endswith("TimerEventDefinition") or isinstance(cause, TimerValueError)
    is_script = isinstance(cause, ScriptsDisabled) or hasattr(spec, "script") or getattr(exc, "line_number", None)
    found = _EXPRESSION.search(str(exc))
    expression = found.group(1).strip() if found else (getattr(event_definition, "expression", None) if is_timer else None)
    error = _one_line(cause if cause is not exc else exc) if not isinstance(cause, TimerValueError) else _one_line(cause)
    if isinstance(cause, (ExpressionError, TimerValueError, ScriptsDisabled)) or cause is exc:
        technical = error
    else:
        technical = _one_line(f"{type(cause).__name__}: {cause}")
    names: list[str] = []
    if expression:
        try:
            names = sorted(check(expression))
        except ExpressionError:
            names = []
    missing = sorted(set(_MISSING.findall(str(cause))) | set(_NAME_ERROR.findall(str(cause))))
    detail: dict = {"error": technical}
    shown = f"`{_one_line(expression)}`" if expression else ""
    if isinstance(cause, ScriptsDisabled):
        kind, reason = "script", "scripts_disabled"
        en = f'"{element}" is a script, and scripts are disabled on this installation (LAJUR_ALLOW_SCRIPTS).'
        id_ = f'"{element}" adalah skrip, dan skrip dimatikan pada instalasi ini (LAJUR_ALLOW_SCRIPTS).'
    elif is_timer:
        kind, reason = "timer", "timer"
        en = f'The timer "{element}" {shown} could not be set: {technical}.'
        id_ = f'Pewaktu "{element}" {shown} tidak dapat dipasang: {technical}.'
    elif is_script and not expression:
        kind, reason = "script", "script"
        line = getattr(exc, "line_number", None)
        at_en = f" at line {line}" if line else ""
        at_id = f" di baris {line}" if line else ""
        names = missing
        en = f'The script of "{element}" failed{at_en}: {technical}.'
        id_ = f'Skrip pada "{element}" gagal{at_id}: {technical}.'
        detail["line"] = line
    elif expression:
        kind = "expression"
        if missing:
            reason = "missing_data"
            listed = ", ".join(f"'{n}'" for n in missing)
            en = f'The condition {shown} at "{element}" needs {listed}, which the data of this case does not have.'
            id_ = f'Kondisi {shown} pada "{element}" memerlukan data {listed}, yang tidak ada pada kasus ini.'
        else:
            reason = "evaluation"
            en = f'The condition {shown} at "{element}" could not be evaluated with the data of this case: {technical}.'
            id_ = f'Kondisi {shown} pada "{element}" tidak dapat dihitung dengan data kasus ini: {technical}.'
    else:
        kind, reason = "other", "other"
        where_en = f'"{element}"' if element else "The process"
        where_id = f'"{element}"' if element else "Proses"
        en = f"{where_en} failed: {technical}."
        id_ = f"{where_id} gagal: {technical}."
    # a timer that could not be set, or a failing pre-script, starts its element over on retry
    detail["restart"] = bool(is_timer or "Pre-Script" in str(exc))
    detail.update(reason=reason, names=names, missing=missing, expression=expression,
                  text={"en": _printable(en)[:2000], "id": _printable(id_)[:2000]})
    return Failure(kind=kind, element_id=element_id, element_name=element,
                   task_guid=str(task.id) if task is not None else None, message=detail["text"]["en"],
                   detail=detail, snapshot=snapshot(task.data) if task is not None else None)


def snapshot(data: dict | None) -> dict:
    """The data at the failing element as JSON, at most SNAPSHOT_BYTES: a value too long is
    replaced by a note of its size, and past the limit the remaining names are only counted."""
    out: dict = {}
    used = 2
    items = sorted((data or {}).items(), key=lambda kv: str(kv[0]))
    for index, (key, value) in enumerate(items):
        key = str(key)[:200]
        text = json.dumps(value, ensure_ascii=False, default=str)
        value = json.loads(text) if len(text) <= VALUE_BYTES else f"… ({len(text.encode())} bytes not kept)"
        size = len(json.dumps({key: value}, ensure_ascii=False).encode())
        if used + size > SNAPSHOT_BYTES - 100:
            out["…"] = f"{len(items) - index} more not kept"
            break
        out[key] = value
        used += size
    return out


# ---- recording it ------------------------------------------------------------------------------

_V = ProcessVersion.__table__
_D = ProcessDefinition.__table__
_O = Office.__table__
_U = User.__table__
_I = ProcessInstance.__table__
ABOUT = Stmt(select(_D.c.name, _O.c.name, _V.c.deployed_by_id)
             .select_from(_V.join(_D, _D.c.id == _V.c.definition_id).join(_O, _O.c.id == _D.c.office_id))
             .where(_V.c.id == bindparam("version")))
SUBJECT = Stmt(select(_I.c.subject).where(_I.c.id == bindparam("instance")))
TOLD = Stmt(select(_U.c.id, _U.c.full_name, _U.c.roles, _U.c.locale).where(
    _U.c.office_id == bindparam("office"), _U.c.active.is_(True)).order_by(_U.c.id))


def recipients(tx: SqlTx, office_id: int, deployed_by: int | None) -> list[tuple[int, str, str]]:
    """(id, name, locale) of the office's process owners (the SOP's deployer first) and supervisors."""
    found = []
    for uid, name, roles, locale in tx.all(TOLD, {"office": office_id}):
        role_set = set((roles or "").split(","))
        if uid == deployed_by or role_set & {"process_owner", "supervisor"}:
            found.append((uid, name, "en" if (locale or "").lower().startswith("en") else "id"))
    found.sort(key=lambda r: r[0] != deployed_by)
    return found


def record(tx: SqlTx, uow: UnitOfWork, head: InstanceHead, failure: Failure, now: datetime,
           subject: str | None = None, user_id: int | None = None) -> int:
    """Open the incident in the caller's unit of work: the row, its audit record, the in-app
    notifications; the head's status becomes 'incident'. Returns the incident id."""
    incident_id = IncidentIds(tx).take()
    head.status = "incident"
    uow.open_incident({"id": incident_id, "office_id": head.office_id, "instance_id": head.id,
                       "version_id": head.version_id, "element_id": failure.element_id,
                       "element_name": failure.element_name, "task_guid": failure.task_guid, "kind": failure.kind,
                       "message": failure.message[:2000], "detail": failure.detail, "snapshot": failure.snapshot,
                       "attempts": 1, "opened_at": now, "last_attempt_at": now})
    uow.audit("incident_opened", office_id=head.office_id, instance_id=head.id, user_id=user_id, at=now,
              step=failure.element_id or None,
              data={"incident": incident_id, "kind": failure.kind, "element": failure.element_name,
                    "message": failure.message})
    sop, office, deployed_by = tx.one(ABOUT, {"version": head.version_id})
    if subject is None:
        subject = tx.one(SUBJECT, {"instance": head.id})[0]
    link = f"/instances/{head.id}"
    rows = []
    for uid, name, locale in recipients(tx, head.office_id, deployed_by):
        subject_line, body = render(locale, name, sop, office, subject, head.id, failure, link)
        rows.append({"user_id": uid, "office_id": head.office_id, "instance_id": head.id, "level": "incident",
                     "seq": incident_id, "subject": subject_line[:300], "body": body, "link": link,
                     "payload": {"incident": incident_id, "kind": failure.kind, "element": failure.element_id},
                     "created_at": now})
    uow.notify(rows)
    return incident_id


def render(locale: str, name: str, sop: str, office: str, subject: str, instance_id: int, failure: Failure,
           link: str) -> tuple[str, str]:
    """Subject and text of the notification of an incident."""
    element = failure.element_name or failure.element_id or "?"
    if locale == "en":
        return (f"[Lajur] Incident: {sop} stopped at {element}",
                f"Dear {name},\n\nThe SOP \"{sop}\" ({office}) stopped at \"{element}\".\n"
                f"Case: {subject} (instance #{instance_id})\n{failure.text('en')}\n"
                f"A process owner can correct the data or deploy a fixed version, then retry.\n"
                f"Open: {link}\n\nAn automatic message from Lajur.\n")
    return (f"[Lajur] Insiden: {sop} berhenti pada {element}",
            f"Yth. {name},\n\nSOP \"{sop}\" ({office}) berhenti pada \"{element}\".\n"
            f"Perihal: {subject} (instance #{instance_id})\n{failure.text('id')}\n"
            f"Pemilik proses dapat memperbaiki data atau memasang versi yang diperbaiki, lalu mencoba lagi.\n"
            f"Buka: {link}\n\nPesan otomatis dari Lajur.\n")
