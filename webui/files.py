"""Serving evidence files: only to staff of the file's office, never as guessed content.

Files live outside the web root (data_dir/files) under their sha256; the stored MIME is
sent with `nosniff`, so a browser never reinterprets a file as HTML or script.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, send_file
from flask_login import current_user

from engine import attachments as evidence
from engine.errors import NotFound

from . import current_services
from .auth import login_required

bp = Blueprint("files", __name__)

SHA = re.compile(r"^[0-9a-f]{64}$")
INLINE = ("image/", "video/", "application/pdf")


def _attachment(sha256: str):
    if not SHA.match(sha256):
        abort(404)
    office = None if current_user.has_role("admin") else current_user.office_id
    if office is None and not current_user.has_role("admin"):
        raise NotFound("no office")
    with current_services().sessions() as db:
        found = evidence.by_sha(db, office, [sha256]).get(sha256)
    if found is None:  # another office's file looks exactly like a missing one
        raise NotFound("no such file in your office")
    return found


def _secure(response, mime: str = "image/jpeg"):
    response.headers["X-Content-Type-Options"] = "nosniff"
    # sandbox stops any active content; Chrome's PDF viewer refuses to run sandboxed, so not for PDF
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; " \
        "style-src 'unsafe-inline'; frame-ancestors 'self'" + ("" if mime == "application/pdf" else "; sandbox")
    # a review page shows a PDF inline in a frame of this site (and only of this site)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/files/<sha256>")
@login_required
def download(sha256: str):
    attachment = _attachment(sha256)
    path = evidence.file_path(current_services().settings.data_dir, attachment.sha256)
    if not path.exists():
        abort(404)
    inline = attachment.mime.startswith(INLINE)
    response = send_file(path, mimetype=attachment.mime, as_attachment=not inline,
                         download_name=attachment.original_name, conditional=True, etag=attachment.sha256)
    return _secure(response, attachment.mime)


@bp.get("/files/<sha256>/thumb")
@login_required
def thumbnail(sha256: str):
    attachment = _attachment(sha256)
    path = evidence.thumb_path(current_services().settings.data_dir, attachment.sha256)
    if not attachment.has_thumbnail or not path.exists():
        abort(404)
    return _secure(send_file(path, mimetype="image/jpeg", conditional=True, etag=f"t-{attachment.sha256}"))
