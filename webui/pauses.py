"""A supervisor's decision on a pause request (engine/pause_requests.py): approve or refuse,
from the step page's form; the engine checks who may decide (engine/access.py)."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from engine.models import PauseRequest

from . import current_services, flash
from .auth import login_required
from .errors import render_error
from .i18n import _

bp = Blueprint("pauses", __name__)


@bp.post("/pause-requests/<int:request_id>")
@login_required
def decide(request_id: int):
    decision = request.form.get("decision")
    if decision not in ("approve", "refuse"):
        return render_error(400, title=_("Keputusan tidak dikenal"), message=_("Pilih setujui atau tolak."))
    services = current_services()
    outcome = services.runtime.decide_pause(current_user.id, request_id, decision == "approve",
                                            request.form.get("note", "").strip())
    with services.sessions() as db:
        task_id = db.get(PauseRequest, request_id).human_task_id
    flash(_("Jeda disetujui; jam Mutu Baku berhenti.") if outcome == "approved" else
          _("Permintaan jeda ditolak; jam tetap berjalan."), "info")
    return redirect(url_for("tasks.detail", task_id=task_id))
