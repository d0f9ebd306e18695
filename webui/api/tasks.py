"""Tasks: the inbox views, a step with its form and SOP text, and the step's actions.

Every action is the Runtime's (claim, unclaim, reassign, save_draft, complete): the
engine checks office, lane and state and decides races (the loser gets a Conflict, 409).
A task's detail carries an ETag; a write that sends `If-Match` is refused with 412 when
the step changed since (`*` matches any current state).
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from flask import abort, current_app, g, json, request
from werkzeug.utils import secure_filename

from engine import attachments as evidence
from engine.db import as_utc
from engine.errors import Conflict, Forbidden, FormInvalid
from engine.models import User
from engine.runtime import TaskRow

from .base import auth, bp, decode_cursor, encode_cursor, now, responses, services, spec, user
from .problems import problem
from .schemas import (Completed, CompleteBody, Done, DraftBody, Evidence, EvidenceForm, ReassignBody, TaskDetail,
                      TaskItem, TaskPage, TaskQuery)

ID = "<int(min=1, max=2147483647):task_id>"
VIEWS = {"mine": "mine", "group": "group", "late": "overdue", "done": "completed"}
WRITE_ERRORS = (409, 412)


def _item(row: TaskRow, at: datetime) -> TaskItem:
    left = (row.due_at - at).total_seconds() / 60 if row.due_at is not None and row.state == "ready" else None
    return TaskItem(**row.__dict__, late=row.overdue(at), minutes_left=round(left, 1) if left is not None else None)


@bp.get("/tasks")
@spec.validate(resp=responses({"HTTP_200": TaskPage}), tags=["tasks"], operation_id="listTasks")
def list_tasks(query: TaskQuery):
    """An inbox view, sorted by time left (done: most recent first); cursor pagination."""
    offset = decode_cursor(query.cursor, "o") or 0
    rows = services().runtime.list_tasks(user().id, VIEWS[query.view], limit=query.limit + 1, offset=offset)
    at = now()
    more = len(rows) > query.limit
    return TaskPage(items=[_item(r, at) for r in rows[:query.limit]],
                    next_cursor=encode_cursor({"o": offset + query.limit}) if more else None)


def etag_of(task) -> str:
    """The step's version as a client sees it: state, holder, clock, draft and data."""
    parts = [task.id, task.state, task.assignee_id, as_utc(task.due_at), as_utc(task.paused_at),
             as_utc(task.completed_at), json.dumps(task.draft, sort_keys=True), json.dumps(task.data, sort_keys=True)]
    return '"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def _detail(task_id: int) -> dict:
    return services().runtime.task_detail(user().id, task_id)


def _check_if_match(task_id: int) -> None:
    """412 when the client's If-Match names another version of the step (checked after the engine's
    office check, so another office's id is a 404 either way)."""
    wanted = request.headers.get("If-Match")
    if not wanted:
        return
    current = etag_of(_detail(task_id)["task"])
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if "*" not in tags and current not in tags:
        abort(problem(412, "the step changed since you read it; read it again", headers={"ETag": current}))


@bp.get(f"/tasks/{ID}")
@spec.validate(resp=responses({"HTTP_200": TaskDetail}), tags=["tasks"], operation_id="getTask")
def task_detail(task_id: int):
    """A step with its form (JSON Schema), the SOP's text of the step, the draft and, when done, its data."""
    d = _detail(task_id)
    task, instance = d["task"], d["instance"]
    tag = etag_of(task)
    if tag in {t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")}:
        return "", 304, {"ETag": tag}
    with services().sessions() as db:
        holder = db.get(User, task.assignee_id).full_name if task.assignee_id else None
    body = TaskDetail(
        id=task.id, instance_id=task.instance_id, subject=instance.subject,
        process_key=(d["sop"] or {}).get("key") or "", bpmn_id=task.bpmn_id, name=task.name, lane=task.lane,
        state=task.state, assignee=holder, may_act=d["may_act"], ready_at=as_utc(task.ready_at),
        due_at=as_utc(task.due_at), completed_at=as_utc(task.completed_at), mutu_baku_minutes=task.mutu_baku_minutes,
        paused=task.paused_at is not None, form_schema=d["schema"], sop_step=d["sop_step"], draft=task.draft,
        data=task.data if task.state == "completed" else None)
    return body, 200, {"ETag": tag, "Cache-Control": "private, no-cache"}


@bp.post(f"/tasks/{ID}/claim")
@spec.validate(resp=responses({"HTTP_200": Done}, *WRITE_ERRORS), tags=["tasks"], operation_id="claimTask")
def claim(task_id: int):
    """Take a step of one of the caller's lanes (claiming one's own step again changes nothing)."""
    _check_if_match(task_id)
    services().runtime.claim(auth().user_id, task_id)
    return Done()


@bp.post(f"/tasks/{ID}/unclaim")
@spec.validate(resp=responses({"HTTP_200": Done}, *WRITE_ERRORS), tags=["tasks"], operation_id="unclaimTask")
def unclaim(task_id: int):
    """Give a held step back to its lane (the holder, or a supervisor)."""
    _check_if_match(task_id)
    services().runtime.unclaim(auth().user_id, task_id)
    return Done()


@bp.post(f"/tasks/{ID}/reassign")
@spec.validate(resp=responses({"HTTP_200": Done}, *WRITE_ERRORS), tags=["tasks"], operation_id="reassignTask")
def reassign(task_id: int, json: ReassignBody):
    """(Supervisor) give the step to another member of its lane."""
    _check_if_match(task_id)
    services().runtime.reassign(auth().user_id, task_id, json.to)
    return Done()


@bp.put(f"/tasks/{ID}/draft")
@spec.validate(resp=responses({"HTTP_200": Done}, *WRITE_ERRORS, 413), tags=["tasks"], operation_id="saveDraft")
def save_draft(task_id: int, json: DraftBody):
    """Keep unfinished form data on the step (not validated; replaced by the next draft)."""
    _check_if_match(task_id)
    services().runtime.save_draft(auth().user_id, task_id, json.data)
    return Done()


@bp.post(f"/tasks/{ID}/complete")
@spec.validate(resp=responses({"HTTP_200": Completed}, *WRITE_ERRORS, 413), tags=["tasks"],
               operation_id="completeTask")
def complete(task_id: int, json: CompleteBody):
    """Complete the step with its form data (validated against the form's JSON Schema; evidence
    hashes must be files uploaded to the caller's office). Of two racing callers exactly one wins."""
    _check_if_match(task_id)
    g.api_form_root = "data"
    if _refers_to_evidence(json.data):
        _check_evidence(task_id, json.data)
    opened = services().runtime.complete(auth().user_id, task_id, json.data, claim=json.claim,
                                         checklist=json.checklist)
    return Completed(opened=opened, incident=getattr(opened, "incident", None))


def _refers_to_evidence(data: dict) -> bool:
    """Cheap pre-check: only data with a list of 64-character strings can name evidence."""
    return any(isinstance(v, list) and any(isinstance(x, str) and len(x) == 64 for x in v) for v in data.values())


def _check_evidence(task_id: int, data: dict) -> None:
    d = _detail(task_id)
    with services().sessions() as db:
        foreign = evidence.foreign_evidence(db, user().office_id, d["schema"], data)
    if foreign:
        raise FormInvalid({name: ["berkas bukti tidak ditemukan di kantor Anda / evidence file not found in your "
                                  "office"] for name in foreign})


@bp.post(f"/tasks/{ID}/evidence")
@spec.validate(form=EvidenceForm, resp=responses({"HTTP_201": Evidence}, 409, 413), tags=["tasks"],
               operation_id="uploadEvidence")
def upload_evidence(task_id: int, form: EvidenceForm):
    """Upload one evidence file for a files field of the step (multipart/form-data: `field`, `file`).
    The type is read from the content (JPEG, PNG, WebP, MP4, WebM, PDF, narrowed by the field's
    `x-lajur-accept`); then put the returned sha256 into the field's list when completing."""
    d = _detail(task_id)
    if not d["may_act"]:
        raise Forbidden("this step belongs to a lane you are not in")
    task, schema = d["task"], d["schema"]
    if task.state != "ready":
        raise Conflict("this step is already closed")
    if form.field not in evidence.evidence_fields(schema):
        raise FormInvalid({"field": [f"{form.field!r} is not an evidence field of this step"]})
    upload = request.files.get("file")
    if upload is None or not getattr(upload, "filename", None):
        raise FormInvalid({"file": ["send the file as multipart/form-data part 'file' with a file name"]})
    accept = set(schema["properties"][form.field].get("x-lajur-accept") or []) or None
    svc = services()
    stored = evidence.store_upload(svc.sessions, auth().user_id, secure_filename(upload.filename) or "berkas",
                                   upload.stream, svc.settings.data_dir,
                                   max_bytes=current_app.config["LAJUR_MAX_UPLOAD_BYTES"], allowed=accept)
    return Evidence(sha256=stored.sha256, mime=stored.mime, size=stored.size, name=stored.original_name), 201
