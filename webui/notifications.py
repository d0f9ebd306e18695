"""In-app notifications: the list of a user's reminders, with mark-read.

The texts were rendered in the user's language when the deadline fired; this page only
lists them. It also gives base.html the unread count (app.extensions["lajur_unread"]).
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from engine import notifications

from . import current_services, reads
from .auth import login_required, safe_next
from .guards import MAX_ID, int_arg

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PAGE = 50


@bp.record_once
def _register_unread(state) -> None:
    state.app.extensions["lajur_unread"] = reads.unread_count


@bp.get("/")
@login_required
def index():
    page = int_arg("page")
    unread_only = request.args.get("unread") == "1"
    with current_services().sessions() as session:
        rows = notifications.list_for_user(session, current_user.id, unread_only=unread_only, limit=PAGE + 1,
                                           offset=(page - 1) * PAGE)
        unread = notifications.unread_count(session, current_user.id)
        failed = notifications.failed_of(session, [n.id for n in rows[:PAGE]])
        recent_failed = notifications.recent_failures(session, current_user.id)
    return render_template("notifications/index.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                           unread=unread, unread_only=unread_only, failed=failed, recent_failed=recent_failed,
                           message_text=notifications.message_text)


@bp.post("/read")
@login_required
def mark_read():
    """Mark one (id=...) or all of the user's notifications read.

    An id that is not the user's own (another user's, or none at all) is a 404 and changes
    nothing: the answer does not tell whether the notification exists.
    """
    raw = request.form.getlist("id")
    if any(not i.isdigit() or len(i) > 19 or int(i) > MAX_ID for i in raw):
        abort(404)
    ids = sorted({int(i) for i in raw})
    notifications.mark_read_owned(current_services().sessions, current_user.id, ids)
    return redirect(safe_next(request.form.get("next")) or url_for("notifications.index"))
