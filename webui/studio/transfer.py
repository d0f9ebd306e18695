"""Files in and out of the studio: version zips and BPMN, uploads as new drafts, new SOPs and
copies, and the diff of two versions (drawn on the diagram by the browser, listed by the server)."""
from __future__ import annotations

import json
from pathlib import PurePath

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import versions
from engine.errors import LajurError
from engine.studio import drafts, imports
from engine.studio.files import KEY, version_files

from .. import current_services, flash
from ..auth import login_required
from . import bp
from .common import group_names, limits, office


def _version(db, code: str, key: str, number: int):
    d = versions.definition(db, code, key)
    return versions._version(db, d, number)  # noqa: SLF001  (the module's own lookup, NotFound if absent)


@bp.get("/<key>/versions/<int:number>.zip")
@login_required
def download(key: str, number: int):
    o = office()
    with current_services().sessions() as db:
        files = version_files(_version(db, o.code, key, number))
    return Response(imports.zip_of(files, key), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{key}-v{number}.zip"', "Cache-Control": "no-store"})


@bp.get("/<key>/versions/<int:number>.bpmn")
@login_required
def version_bpmn(key: str, number: int):
    o = office()
    with current_services().sessions() as db:
        xml = _version(db, o.code, key, number).bpmn_xml
    return Response(xml, mimetype="application/xml", headers={"Cache-Control": "no-store"})


@bp.get("/<key>/diff")
@login_required
def diff(key: str):
    o = office()
    with current_services().sessions() as db:
        rows = versions.list_versions(db, o.code, key)
        numbers = [r.version for r in rows]
        if not numbers:
            abort(404)
        b = _int(request.args.get("b"), numbers[-1])
        a = _int(request.args.get("a"), numbers[-2] if len(numbers) > 1 else numbers[-1])
        if a not in numbers or b not in numbers:
            abort(404)
        lines = versions.diff(db, o.code, key, a, b)
        notes = drafts.change_notes(db, o.id, key)
    return render_template("studio/diff.html", office=o, key=key, a=a, b=b, rows=rows, lines=lines, notes=notes)


def _int(raw, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 9 else default


def _new_draft(key: str, files: dict, based_on=None, notes=None):
    o = office()
    with current_services().sessions.begin() as db:
        drafts.create(db, current_user.id, o.code, key, files, based_on, limits())
    if notes:
        for note in notes[:20]:
            flash(_("Impor: %(m)s", m=note["message"]), "error")
    return redirect(url_for("studio.edit", key=key))


def _refused(exc: LajurError):
    flash(_("Tidak dapat dibuat: %(why)s", why=str(exc)), "error")
    if exc.http_status in (403,):
        raise exc
    return redirect(url_for("studio.index"))


@bp.post("/new")
@login_required
def new():
    o = office()
    key = (request.form.get("key") or "").strip()
    name = (request.form.get("name") or "").strip()[:300] or key
    with current_services().sessions() as db:
        groups = group_names(db, o.id)
    lane = request.form.get("lane") or (groups[0] if groups else "")
    if not KEY.match(key):
        flash(_("Kunci SOP hanya huruf kecil, angka dan '-'."), "error")
        return redirect(url_for("studio.index"))
    try:
        return _new_draft(key, imports.new_sop(key, name, o.code, o.name, lane))
    except LajurError as exc:
        return _refused(exc)


@bp.post("/copy")
@login_required
def copy():
    o = office()
    source, key = request.form.get("source") or "", (request.form.get("key") or "").strip()
    name = (request.form.get("name") or "").strip()[:300] or key
    if not KEY.match(key):
        flash(_("Kunci SOP hanya huruf kecil, angka dan '-'."), "error")
        return redirect(url_for("studio.index"))
    try:
        with current_services().sessions() as db:
            version = drafts.latest_version(db, o.id, source)
            if version is None:
                abort(404)
            files = version_files(version)
        return _new_draft(key, imports.copy_files(files, key, name))
    except LajurError as exc:
        return _refused(exc)


@bp.post("/upload")
@login_required
def upload():
    """A folder zip, a single .bpmn, or an SOP document (DOCX/XLSX/HTML/text) as a new draft."""
    o = office()
    upload = request.files.get("file")
    key = (request.form.get("key") or "").strip()
    if upload is None or not upload.filename:
        flash(_("Pilih berkas untuk diunggah."), "error")
        return redirect(url_for("studio.index"))
    data = upload.stream.read(imports.MAX_ZIP_BYTES + 1)
    suffix = PurePath(upload.filename).suffix.lower()
    try:
        if len(data) > imports.MAX_ZIP_BYTES:
            raise imports.DraftFilesInvalid(_("Berkas lebih besar dari 10 MB."))
        if suffix == ".zip":
            files = imports.files_from_zip(data, limits())
            try:
                key = key or json.loads(files.get("sop.json", "{}")).get("key", "")
            except (ValueError, AttributeError):
                pass
            return _new_draft(_key_or_refuse(key), files)
        if suffix == ".bpmn" or suffix == ".xml":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise imports.DraftFilesInvalid(_("Berkas BPMN harus teks UTF-8.")) from None
            key = _key_or_refuse(key or _slug(PurePath(upload.filename).stem))
            return _new_draft(key, imports.files_from_bpmn(text, o.code, o.name, key, limits()))
        found_key, files, notes = imports.files_from_sopdoc(data, upload.filename, o.code, o.name, key or None)
        return _new_draft(found_key, files, notes=notes)
    except LajurError as exc:
        return _refused(exc)


def _slug(text: str) -> str:
    from engine.sopdoc.draft import slug
    return slug(text)[:80].strip("-")


def _key_or_refuse(key: str) -> str:
    if not KEY.match(key or ""):
        raise imports.DraftFilesInvalid(_("Kunci SOP hanya huruf kecil, angka dan '-'."))
    return key
