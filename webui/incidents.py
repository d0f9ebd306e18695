"""Incidents on the web: the office's list (`/incidents`, open or all) and retrying one, with
corrected data, from the instance page. Owners and supervisors see them; process owners retry
(engine/access.py). A retry that fails again shows the page with the new message, never a 500."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from engine import access
from engine.errors import FormInvalid
from engine.incident_retry import coerce, form_fields
from engine.models import Incident, ProcessInstance

from . import current_services, flash
from .auth import login_required
from .guards import MAX_ID, int_arg

bp = Blueprint("incidents", __name__)
PAGE = 50
MAX_FIELDS = 20


def locale() -> str:
    return "en" if str(get_locale() or "id").startswith("en") else "id"


def kind_labels() -> dict[str, str]:
    return {"expression": _("Kondisi"), "script": _("Skrip"), "timer": _("Pewaktu"), "other": _("Lainnya")}


@bp.get("/incidents")
@login_required
def index():
    page = int_arg("page")
    show = "all" if request.args.get("state") == "all" else "open"
    rows = current_services().runtime.list_incidents(current_user.id, None, open_only=show == "open",
                                                     limit=PAGE + 1, offset=(page - 1) * PAGE)
    return render_template("incidents/index.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page, show=show,
                           kinds=kind_labels(), locale=locale())


def panel(db, actor: access.Actor, instance: ProcessInstance, version) -> list[dict]:
    """The instance page's open incidents: the error and element for anyone who sees the
    instance; the data and the correction form for owners and supervisors / owners."""
    from engine.incident_list import of_instance
    see_data = access.may_see_incidents(actor, instance.office_id)
    may_retry = access.may_retry_incident(actor, instance.office_id)
    fields = form_fields(version.forms) if may_retry else {}
    out = []
    for inc in of_instance(db, instance.id):
        detail = inc.detail or {}
        named = [n for n in dict.fromkeys([*(detail.get("missing") or []), *(detail.get("names") or [])])
                 if n in fields][:MAX_FIELDS]
        snapshot = inc.snapshot or {}
        out.append({"incident": inc, "text": (detail.get("text") or {}).get(locale()) or inc.message,
                    "see_data": see_data, "may_retry": may_retry, "snapshot": snapshot if see_data else {},
                    "edit": [{"name": n, "value": _shown(snapshot.get(n)), "schema": fields[n]} for n in named],
                    "other_fields": sorted(set(fields) - set(named))[:200]})
    return out


def _shown(value) -> str:
    import json
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@bp.post("/incidents/<int:incident_id>/retry")
@login_required
def retry(incident_id: int):
    if incident_id > MAX_ID:
        abort(404)
    services = current_services()
    with services.sessions() as db:
        inc = db.get(Incident, incident_id)
        if inc is None:
            abort(404)
        instance_id = inc.instance_id
        fields = form_fields(db.get(ProcessInstance, instance_id).version.forms)
    names = request.form.getlist("field")[:MAX_FIELDS]
    values = request.form.getlist("value")[:MAX_FIELDS]
    changes = {}
    for name, text in zip(names, values):
        name = name.strip()
        if name and text != "":
            changes[name] = coerce(fields.get(name, {}), text)
    other, other_value = request.form.get("other_field", "").strip(), request.form.get("other_value", "")
    if other and other_value != "":
        changes[other] = coerce(fields.get(other, {}), other_value)
    try:
        result = services.runtime.retry_incident(current_user.id, incident_id, changes)
    except FormInvalid as exc:
        wrong = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())
        flash(_("Data yang diperbaiki tidak valid: %(e)s", e=wrong), "error")
        return redirect(url_for("instances.detail", instance_id=instance_id))
    if not result.resolved:
        flash(_("Percobaan ulang gagal lagi. Periksa pesan kesalahan di bawah, perbaiki data atau pasang versi "
                "yang diperbaiki, lalu coba lagi."), "error")
    elif result.new_incident:
        flash(_("Insiden ini selesai, tetapi SOP berhenti lagi pada langkah berikutnya. Lihat insiden baru di "
                "bawah."), "error")
    else:
        flash(_("Insiden selesai: SOP berjalan lagi."), "info")
    return redirect(url_for("instances.detail", instance_id=instance_id))
