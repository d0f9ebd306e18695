"""The task inbox: four tabs with counts, sorted by time left, refreshing itself while open.

The page works without JavaScript (tabs are links, claim/unclaim are form posts); with
htmx the panel polls `/inbox/panel` and claim/unclaim redraw only the row and the tab
counts. Lists come from Runtime.list_tasks; counts from one indexed query.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from engine.queries import COUNT_CAP

from . import current_services, reads
from .auth import login_required
from .guards import int_arg
from .i18n import _

bp = Blueprint("inbox", __name__)

TABS = ("mine", "group", "overdue", "completed")


def tab_labels() -> dict[str, str]:
    return {"mine": _("Tugas saya"), "group": _("Belum diambil (kelompok saya)"), "overdue": _("Terlambat"),
            "completed": _("Selesai oleh saya")}


def row_urls() -> dict[str, str]:
    """URL patterns for inbox rows ("/tasks/{}"), built once per page instead of five url_for calls per row."""
    marker = 987654321

    def pattern(endpoint: str, **kw) -> str:
        return url_for(endpoint, **kw).replace(str(marker), "{}")
    return {"task": pattern("tasks.detail", task_id=marker), "claim": pattern("tasks.claim", task_id=marker),
            "unclaim": pattern("tasks.unclaim", task_id=marker),
            "instance": pattern("instances.detail", instance_id=marker)}


def counts_for(user) -> dict[str, int]:
    if user.office_id is None:
        return {t: 0 for t in TABS}
    return reads.inbox_counts(user.view, datetime.now(timezone.utc))


def _panel_context():
    tab = request.args.get("tab", "mine")
    if tab not in TABS:
        tab = "mine"
    page = int_arg("page")
    size = current_app.config["LAJUR_INBOX_PAGE"]
    rows = []
    runtime = current_services().runtime
    if current_user.office_id is not None:
        rows = runtime.list_tasks(current_user.id, tab, limit=size + 1, offset=(page - 1) * size)
    counts = counts_for(current_user)
    return {"tab": tab, "page": page, "rows": rows[:size], "has_more": len(rows) > size, "counts": counts,
            "urls": row_urls(), "cap": COUNT_CAP,
            "labels": tab_labels(), "now": runtime.now(),  # the clock list_tasks counted with
            "poll": current_app.config["LAJUR_INBOX_POLL_SECONDS"]}


@bp.get("/")
@login_required
def root():
    return redirect(url_for("inbox.index"))


@bp.get("/inbox")
@login_required
def index():
    return render_template("inbox/index.html", **_panel_context())


@bp.get("/inbox/panel")
@login_required
def panel():
    """The panel alone, for htmx polling."""
    return render_template("inbox/_panel.html", **_panel_context())
