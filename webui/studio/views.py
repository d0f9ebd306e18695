"""The editor: the studio index, the editor page, saving a draft, previewing a form, publishing."""
from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from engine import versions
from engine.errors import Conflict, LajurError
from engine.models import ProcessDefinition, ProcessDraft, User
from engine.studio import drafts

from .. import current_services, flash
from ..auth import login_required
from ..forms import build_fields
from . import bp
from .common import group_names, limits, office

MAX_SAVE_BYTES = 6 * 1024 * 1024  # the whole folder as JSON: a 2 MB BPMN and its forms, escaped


@bp.before_request
def _bigger_body():
    """A save carries the whole process folder; it may be larger than an ordinary form post."""
    if request.endpoint in ("studio.save", "studio.preview"):
        request.max_content_length = MAX_SAVE_BYTES


@bp.get("/")
@login_required
def index():
    o = office()
    with current_services().sessions() as db:
        sops = db.execute(select(ProcessDefinition.key, ProcessDefinition.name)
                          .where(ProcessDefinition.office_id == o.id).order_by(ProcessDefinition.name)).all()
        rows = db.execute(select(ProcessDraft.key, ProcessDraft.based_on_version, ProcessDraft.updated_at,
                                 User.full_name, ProcessDraft.problems)
                          .outerjoin(User, User.id == ProcessDraft.editor_id)
                          .where(ProcessDraft.office_id == o.id).order_by(ProcessDraft.key)).all()
        groups = group_names(db, o.id)
    return render_template("studio/index.html", office=o, sops=sops, drafts=rows, groups=groups)


@bp.get("/<key>")
@login_required
def edit(key: str):
    o = office()
    services = current_services()
    with services.sessions.begin() as db:
        draft = drafts.open_draft(db, current_user.id, o.code, key, limits())
    with services.sessions() as db:
        version_rows = versions.list_versions(db, o.code, key) if draft.based_on_version else []
    return render_template("studio/edit.html", office=o, key=key, draft=draft, versions=version_rows)


@bp.get("/<key>/draft.json")
@login_required
def draft_json(key: str):
    o = office()
    with current_services().sessions() as db:
        draft = drafts.get(db, current_user.id, o.code, key)
        groups = group_names(db, o.id)
    if draft is None:
        return jsonify(error=_("SOP ini tidak punya draf.")), 404
    return jsonify(_draft_payload(draft, groups))


def _draft_payload(draft, groups=None) -> dict:
    out = {"key": draft.key, "files": draft.files, "problems": draft.problems, "lock_version": draft.lock_version,
           "editor": draft.editor, "updated_at": draft.updated_at.isoformat() if draft.updated_at else None,
           "based_on_version": draft.based_on_version}
    if groups is not None:
        out["groups"] = groups
    return out


@bp.post("/<key>/draft")
@login_required
def save(key: str):
    """Save the whole folder; answer with the validator's problems (200) or why it was refused."""
    o = office()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict) or not isinstance(
            body.get("lock_version"), int):
        return jsonify(error=_("Isi permintaan tidak valid.")), 400
    try:
        with current_services().sessions.begin() as db:
            draft = drafts.save(db, current_user.id, o.code, key, body["files"], body["lock_version"], limits())
    except Conflict as exc:
        return jsonify(error=_("Draf ini sudah diubah orang lain. Muat ulang halaman."), detail=str(exc)), 409
    except LajurError as exc:
        return jsonify(error=str(exc)), exc.http_status if exc.http_status < 500 else 400
    return jsonify(_draft_payload(draft))


@bp.post("/<key>/preview")
@login_required
def preview(key: str):
    """A step's form as staff will see it, rendered by the server's own form renderer."""
    office()
    body = request.get_json(silent=True)
    schema = body.get("schema") if isinstance(body, dict) else None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
        return _("Formulir tidak valid."), 400
    try:
        fields = build_fields(schema)
    except (AttributeError, TypeError, ValueError):
        return _("Formulir tidak valid."), 400
    return render_template("studio/_preview.html", fields=fields, schema=schema)


@bp.post("/<key>/publish")
@login_required
def publish(key: str):
    o = office()
    services = current_services()
    try:
        seen = int(request.form.get("lock_version", ""))
    except ValueError:
        seen = -1
    try:
        with services.sessions.begin() as db:
            number = drafts.publish(db, current_user.id, o.code, key, seen, request.form.get("note", ""),
                                    services.runtime.store, limits())
    except LajurError as exc:
        flash(_("Belum dapat diterbitkan: %(why)s", why=str(exc)), "error")
        if exc.http_status in (403, 404):
            raise
        return redirect(url_for("studio.edit", key=key))
    return redirect(url_for("studio.published", key=key, version=number))


@bp.get("/<key>/published/<int:version>")
@login_required
def published(key: str, version: int):
    o = office()
    with current_services().sessions() as db:
        rows = versions.list_versions(db, o.code, key)
    running = sum(r.counts.get("running", 0) for r in rows if r.version != version)
    return render_template("studio/published.html", office=o, key=key, version=version, rows=rows,
                           running=running)


@bp.post("/<key>/discard")
@login_required
def discard(key: str):
    o = office()
    with current_services().sessions.begin() as db:
        drafts.discard(db, current_user.id, o.code, key)
    flash(_("Draf dibuang."), "info")
    return redirect(url_for("studio.index"))
