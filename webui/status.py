"""The administrators' status page: are the worker, beat and deadline tick alive, and is
anything waiting too long?

The figures are `lajur status`'s, read by the same engine function (engine.heartbeat.status):
each heartbeat with its age and whether it is stale, the tick lag (how long the oldest due
reminder has waited), the outbox depth and the failed deliveries. Only admins see it
(engine.access.check_status). It refreshes itself every 30 s without JavaScript.
"""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from engine import access, heartbeat

from . import current_services, reads
from .auth import login_required
from .i18n import _, duration_words

bp = Blueprint("status", __name__)

REFRESH_SECONDS = 30


def age_words(seconds: float) -> str:
    """An age in words: seconds while under two minutes, then duration_words."""
    if seconds < 120:
        return _("%(n)d detik", n=max(0, round(seconds)))
    return duration_words(seconds / 60)


@bp.get("/admin/status")
@login_required
def index():
    access.check_status(access.Actor.of_view(current_user.view))
    services = current_services()
    now = services.runtime.now()
    with reads.connection() as conn:
        found = heartbeat.status(conn, services.settings, now)
    kinds = {"tick": _("Tick tenggat"), "beat": _("Beat"), "worker": _("Worker")}
    return render_template("status/index.html", status=found, now=now, kinds=kinds, age_words=age_words,
                           heartbeat_seconds=services.settings.heartbeat_seconds,
                           stale_after=heartbeat.stale_after(services.settings, "worker"),
                           refresh_seconds=REFRESH_SECONDS)
