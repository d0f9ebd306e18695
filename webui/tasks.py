"""The step page: SOP text, Persyaratan checklist, the step's form, evidence, draft and complete.

Access: the engine checks office and lane on every read and action (engine/access.py);
this module asks the same rule before it stores any uploaded file (the upload happens
before the engine is called). A failed validation re-renders the form with the entered data and the errors
next to the fields (422) and changes nothing in the process.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import (Blueprint, current_app, redirect, render_template, request, url_for)
from flask_login import current_user

from engine import attachments as evidence
from engine import access, requirements, review, rework
from engine.errors import Conflict, FormInvalid, NotFound
from engine.pause_requests import clock_state
from engine.queries import COUNT_CAP, task_row, user_names

from . import current_services, flash, reads, step_view
from .auth import login_required, safe_next
from .forms import build_fields, coerce, file_fields, file_values, validate
from .i18n import _, format_wib
from .inbox import counts_for, row_urls, tab_labels

bp = Blueprint("tasks", __name__)

CHECKLIST = requirements.KEY


def step_schemas(version_id: int) -> tuple[dict, dict]:
    """(steps, forms) of a version (cached by the engine: deployed versions never change)."""
    return current_services().runtime.version_forms(version_id)


def schema_of(version_id: int, bpmn_id: str) -> dict:
    steps, forms = step_schemas(version_id)
    return forms.get(steps.get(bpmn_id, {}).get("form"), {})


def is_paraf(name: str, value) -> bool:
    """The engine's paraf record `paraf_<step>` = {user, name, at} (not a form field like paraf_kabid_ada)."""
    return name.startswith("paraf_") and isinstance(value, dict) and "user" in value


def describe(schema: dict, data: dict | None) -> list[dict]:
    """Submitted data as labelled rows for reading (files as lists of sha256)."""
    rows = []
    props = schema.get("properties", {})
    for name, value in (data or {}).items():
        if is_paraf(name, value) or name.startswith("_"):
            continue
        prop = props.get(name, {})
        kind = "files" if prop.get("x-lajur-widget") == "files" else "list" if isinstance(value, list) else \
            "bool" if isinstance(value, bool) else "text"
        rows.append({"label": prop.get("title", name), "value": value, "kind": kind})
    return rows


def paraf_trail(history, steps: dict) -> list[dict]:
    trail = []
    for done in history:
        for key, value in (done.data or {}).items():
            if is_paraf(key, value):
                bpmn_id = key[len("paraf_"):]
                decision = next((v for k, v in (done.data or {}).items()
                                 if k.startswith("persetujuan") and isinstance(v, str)), None)
                # the reason is on the trail itself, next to its TIDAK (engine.rework.reason_of)
                trail.append({"step": steps.get(bpmn_id, {}).get("name", bpmn_id),
                              "no": steps.get(bpmn_id, {}).get("no"), "name": value.get("name"),
                              "user": value.get("user"), "at": _parse(value.get("at")), "decision": decision,
                              "reason": rework.reason_of({}, done.data) if decision == "TIDAK" else None})
    return trail


def _parse(value):
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _page(task_id: int, data: dict | None = None, errors: dict | None = None, status: int = 200):
    services = current_services()
    detail = services.runtime.task_detail(current_user.id, task_id)
    task, schema, history = detail["task"], detail["schema"], detail["history"]
    steps, forms = step_schemas(task.version_id)
    draft = dict(task.draft or {})
    prefilled = False
    if data is None:
        data = {k: v for k, v in draft.items() if k != CHECKLIST} if task.state == "ready" else (task.data or {})
        checklist = draft.get(CHECKLIST, []) if task.state == "ready" else (task.data or {}).get(CHECKLIST, [])
        if task.state == "ready" and not draft:
            # a step sent back (TIDAK) starts from what was submitted last time, not from an empty form;
            # an approval (paraf) step is decided afresh, so it never starts from the earlier decision
            previous = [h for h in history if h.bpmn_id == task.bpmn_id]
            if previous and not detail["step"].get("paraf"):
                data = {k: v for k, v in (previous[-1].data or {}).items()
                        if not is_paraf(k, v) and not k.startswith("_")}
                prefilled = True
    else:
        checklist = request.form.getlist(CHECKLIST)
    earlier: dict[str, list[str]] = {}
    shas = set(file_values(schema, data))

    def schema_of_step(bpmn_id):
        return forms.get(steps.get(bpmn_id, {}).get("form"), {})

    for done in history:
        done_schema = schema_of_step(done.bpmn_id)
        for name in file_fields(done_schema):
            if isinstance((done.data or {}).get(name), list):
                earlier[name] = done.data[name]
        shas |= file_values(done_schema, done.data)
    for values in earlier.values():
        shas.update(values)
    rounds = step_view.rounds_view(history, detail["returns"], describe, schema_of_step)
    with services.sessions() as db:
        files = evidence.by_sha(db, None if current_user.has_role("admin") else current_user.office_id, shas)
        names = user_names(db, {task.assignee_id, task.completed_by_id} | {h.completed_by_id for h in history})
    fields = build_fields(schema, data, errors, earlier)
    holder = names.get(task.assignee_id)
    may_act = detail["may_act"] and task.state == "ready" and task.assignee_id in (None, current_user.id)
    may_clock = detail["may_clock"]  # engine.access.may_clock, decided by the engine
    with services.sessions() as db:  # the clock's pending pause request and last resume (engine/pause_requests.py)
        pending_pause, last_resume = clock_state(db, task.id)
    may_decide = task.state == "ready" and access.may_decide_pause(access.Actor.of_view(current_user.view), task.office_id)
    members = (services.runtime.lane_members(current_user.id, task_id)
               if task.state == "ready" and current_user.has_role("supervisor") else [])
    now = datetime.now(timezone.utc)
    returned = detail["returned"] if task.state == "ready" else None
    # a decision step reads the work first: the latest round's steps, before the form
    decision = review.is_decision(detail["step"], schema)
    under_review = [s for s in rounds[-1]["steps"] if s["task"].bpmn_id != task.bpmn_id] if decision and rounds else []
    return render_template(
        "tasks/detail.html", task=task, lane_members=members, step=detail["step"], sop_step=detail["sop_step"],
        sop=detail["sop"], instance=detail["instance"], fields=fields, form_errors=(errors or {}).get("", []),
        checklist_errors=(errors or {}).get(CHECKLIST, []), files=files, rounds=rounds, decision=decision,
        under_review=under_review, round_no=len(detail["returns"]) + 1,
        trail=paraf_trail(history, steps), may_act=may_act, in_lane=detail["may_act"], may_clock=may_clock,
        holder=holder, names=names, prefilled=prefilled, returned=returned, pending_pause=pending_pause,
        last_resume=last_resume, may_decide=may_decide,
        returned_changes=step_view.returned_changes(task, history, schema, task.draft) if returned else None,
        clock=step_view.clock(task, detail["office_calendar"], detail["pauses"], now),
        requirements_required=requirements.required(detail["sop_step"]),
        done_rows=describe(schema, task.data) if task.state == "completed" else [], checklist=checklist,
        schema=schema, has_draft=bool(task.draft),
        max_mb=current_app.config["LAJUR_MAX_UPLOAD_BYTES"] // (1024 * 1024), now=now,
    ), status


@bp.get("/tasks/<int:task_id>")
@login_required
def detail(task_id: int):
    return _page(task_id)


def _checked_head(task_id: int):
    """The task, after the engine's own rule for acting on it (engine.access.check_act), checked
    here as well because the upload happens before the engine is called."""
    head = reads.task_head(task_id)
    if head is None:
        raise NotFound(f"task {task_id} does not exist")
    access.check_act(access.Actor.of_view(current_user.view), head)
    return head


def _store_uploads(schema: dict, errors: dict[str, list[str]], head, stored_ids: list[int]) -> dict[str, list[str]]:
    """Store the files posted for each files field (each checked before it is stored, see
    engine.attachments); problems become that field's errors. Too many files: none is stored."""
    uploaded: dict[str, list[str]] = {}
    services = current_services()
    limit = current_app.config["LAJUR_MAX_UPLOAD_BYTES"]
    posted = {name: [f for f in request.files.getlist(f"{name}__upload") if f and f.filename]
              for name in file_fields(schema)}
    if sum(len(files) for files in posted.values()) > evidence.MAX_FILES_PER_POST:
        for name in (n for n, files in posted.items() if files):
            errors.setdefault(name, []).append(
                _("Paling banyak %(n)d berkas sekali kirim.", n=evidence.MAX_FILES_PER_POST))
        return uploaded
    for name, files in posted.items():
        accept = set(schema["properties"][name].get("x-lajur-accept") or []) or None
        for upload in files:
            try:
                stored = evidence.store_upload(services.sessions, current_user.id, upload.filename, upload.stream,
                                               services.settings.data_dir, max_bytes=limit, allowed=accept,
                                               human_task_id=head.id, instance_id=head.instance_id)
                uploaded.setdefault(name, []).append(stored.sha256)
                stored_ids.append(stored.id)
            except evidence.FileRejected as exc:
                errors.setdefault(name, []).append(str(exc))
    return uploaded


def _discard_uploads(stored_ids: list[int]) -> None:
    """A completion that lost its race leaves none of its new files behind."""
    services = current_services()
    evidence.discard_uploads(services.sessions, services.settings.data_dir, stored_ids)


@bp.post("/tasks/<int:task_id>")
@login_required
def submit(task_id: int):
    head = _checked_head(task_id)
    schema = schema_of(head.version_id, head.bpmn_id)
    runtime = current_services().runtime
    errors: dict[str, list[str]] = {}
    stored_ids: list[int] = []
    uploaded = _store_uploads(schema, errors, head, stored_ids)
    data = coerce(schema, request.form, uploaded)
    if request.form.get("action") == "draft":
        try:
            runtime.save_draft(current_user.id, task_id, {**data, CHECKLIST: request.form.getlist(CHECKLIST)})
        except (Conflict, NotFound):
            _discard_uploads(stored_ids)
            raise
        if errors:
            return _page(task_id, data, errors, 422)
        flash(_("Draf disimpan."), "info")
        return redirect(url_for("tasks.detail", task_id=task_id))
    for name, messages in validate(schema, data).items():
        errors.setdefault(name, []).extend(m for m in messages if m not in errors.get(name, []))
    _check_files_of_office(schema, data, errors)
    opened = None
    if not errors:
        try:
            # completing needs holding the step: "Ambil dan selesaikan" says so explicitly
            opened = runtime.complete(current_user.id, task_id, data,
                                      claim=request.form.get("action") == "claim_complete",
                                      checklist=request.form.getlist(CHECKLIST))
        except (Conflict, NotFound):
            _discard_uploads(stored_ids)
            raise
        except FormInvalid as exc:
            for path, messages in exc.errors.items():
                errors.setdefault(path.split(".")[0], []).extend(messages)
    if errors:
        return _page(task_id, data, errors, 422)
    if getattr(opened, "incident", None) is not None:  # the step is done; the process after it stopped
        flash(_("Langkah selesai dan tersimpan, tetapi SOP berhenti karena masalah pada proses (insiden #%(n)s). "
                "Pemilik proses dan supervisor sudah diberi tahu.", n=opened.incident), "error")
        return redirect(url_for("inbox.index"))
    flash(where_it_went(opened), "info")
    return redirect(url_for("inbox.index"))


def where_it_went(opened) -> str:
    """The message after completing: which step comes next, in which lane, held by whom
    (from what the engine's completion returned: engine.mirror.Opened, no extra read)."""
    steps = getattr(opened, "steps", [])
    if not steps:
        return _("Langkah selesai. Semua langkah SOP ini sudah selesai.")
    parts = []
    for step in steps:
        if step["holder_id"] == current_user.id:
            parts.append(_("“%(s)s” (lajur %(l)s) sekarang di Kotak Tugas Anda", s=step["name"], l=step["lane"]))
        elif step["holder_id"] is not None:
            parts.append(_("“%(s)s” (lajur %(l)s) kepada %(n)s", s=step["name"], l=step["lane"],
                           n=step["holder_name"] or "–"))
        else:
            parts.append(_("“%(s)s” ke kelompok lajur %(l)s, belum diambil", s=step["name"], l=step["lane"]))
    return _("Langkah selesai. Diteruskan ke %(next)s.", next="; ".join(parts))


def _check_files_of_office(schema: dict, data: dict, errors: dict[str, list[str]]) -> None:
    """Every evidence hash must be a file of the user's own office (engine.attachments.foreign_evidence)."""
    with current_services().sessions() as db:
        foreign = evidence.foreign_evidence(db, current_user.office_id, schema, data)
    for name in foreign:
        errors.setdefault(name, []).append(_("Berkas bukti tidak ditemukan di kantor Anda."))


def _row_or_redirect(task_id: int, message: str):
    """htmx: redraw the inbox row and the tab counts; otherwise go back where the user was."""
    if request.headers.get("HX-Request"):
        runtime = current_services().runtime
        now = runtime.now()
        with current_services().sessions() as db:
            row = task_row(db, task_id, runtime.calendars, now)
        return render_template("inbox/_claimed.html", row=row, tab=request.form.get("tab", "mine"), urls=row_urls(),
                               cap=COUNT_CAP,
                               counts=counts_for(current_user), labels=tab_labels(), message=message,
                               now=now)
    flash(message, "info")
    return redirect(safe_next(request.form.get("next")) or url_for("tasks.detail", task_id=task_id))


@bp.post("/tasks/<int:task_id>/claim")
@login_required
def claim(task_id: int):
    current_services().runtime.claim(current_user.id, task_id)
    return _row_or_redirect(task_id, _("Langkah diambil. Sekarang Anda pemegangnya."))


@bp.post("/tasks/<int:task_id>/unclaim")
@login_required
def unclaim(task_id: int):
    current_services().runtime.unclaim(current_user.id, task_id)
    return _row_or_redirect(task_id, _("Langkah dilepas ke kelompok."))



@bp.post("/tasks/<int:task_id>/pause")
@login_required
def pause(task_id: int):
    """Stop the step's Mutu Baku clock with a reason (e.g. waiting for a revised press release)."""
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash(_("Tuliskan alasan menghentikan jam Mutu Baku."), "error")
        return redirect(url_for("tasks.detail", task_id=task_id))
    if current_services().runtime.pause(current_user.id, task_id, reason) == "requested":
        flash(_("Permintaan jeda dikirim ke atasan. Jam Mutu Baku tetap berjalan sampai disetujui."), "info")
    else:
        flash(_("Jam Mutu Baku dihentikan sementara."), "info")
    return redirect(url_for("tasks.detail", task_id=task_id))


@bp.post("/tasks/<int:task_id>/resume")
@login_required
def resume(task_id: int):
    due = current_services().runtime.resume(current_user.id, task_id, request.form.get("reason", "").strip())
    flash(_("Jam Mutu Baku berjalan lagi. Batas waktu baru: %(t)s (bergeser sesuai lama jeda).",
            t=format_wib(due)) if due else
          _("Jam Mutu Baku berjalan lagi."), "info")
    return redirect(url_for("tasks.detail", task_id=task_id))


@bp.post("/tasks/<int:task_id>/reassign")
@login_required
def reassign(task_id: int):
    """(Supervisor) give the step to another member of its lane."""
    to = request.form.get("to", "").strip()
    if not to:
        flash(_("Pilih pegawai penerima langkah ini."), "error")
        return redirect(url_for("tasks.detail", task_id=task_id))
    current_services().runtime.reassign(current_user.id, task_id, to)
    flash(_("Langkah dialihkan."), "info")
    return redirect(url_for("tasks.detail", task_id=task_id))
