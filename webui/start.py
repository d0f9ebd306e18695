"""Starting an SOP: the SOPs this user may start, each with its SOP card."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import FormInvalid
from engine.queries import open_task_ids, sop_cards

from . import current_services, flash
from .auth import login_required

bp = Blueprint("start", __name__)


def _cards():
    services = current_services()
    definitions = services.runtime.startable(current_user.id) if current_user.office_id is not None else []
    with services.sessions() as db:
        cards = sop_cards(db, [d.id for d in definitions])
    result = []
    for d in definitions:
        card = cards.get(d.id, {})
        sop = card.get("sop") or {}
        # Actors, order and Mutu Baku are the BPMN's (the version's steps); sop.json adds the texts.
        steps = sorted((card.get("steps") or {}).items(), key=lambda kv: kv[1].get("no") or 0)
        rows = [{**(sop.get("steps") or {}).get(sid, {}), "no": s.get("no"), "actor": s.get("lane"),
                 "mutu_baku_minutes": s.get("mutu_baku_minutes") or 0} for sid, s in steps]
        actors = list(dict.fromkeys(r["actor"] for r in rows if r["actor"]))
        total = sum(r["mutu_baku_minutes"] for r in rows)
        result.append({"key": d.key, "name": d.name, "sop": sop, "steps": [(r["no"], r) for r in rows],
                       "actors": actors, "total_minutes": total, "version": card.get("version")})
    return result


@bp.get("/start")
@login_required
def index():
    return render_template("start/index.html", cards=_cards(), errors={}, subjects={})


@bp.post("/start/<key>")
@login_required
def start(key: str):
    services = current_services()
    subject = request.form.get("subject", "")
    try:
        instance_id = services.runtime.start(current_user.id, key, subject)
    except FormInvalid:
        message = _("Perihal wajib diisi (paling banyak 300 karakter).")
        return render_template("start/index.html", cards=_cards(), errors={key: message},
                               subjects={key: subject}), 422
    with services.sessions() as db:
        open_ids = open_task_ids(db, instance_id, current_user.id)
    flash(_("SOP dimulai: %(s)s", s=subject.strip()), "info")
    if open_ids:
        return redirect(url_for("tasks.detail", task_id=open_ids[0]))
    return redirect(url_for("instances.detail", instance_id=instance_id))
