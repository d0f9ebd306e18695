"""The instance page: the live BPMN diagram, a step table (the no-JS equivalent), the audit
timeline, and everything submitted with its evidence."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user

from engine import attachments as evidence
from engine.access import Actor
from engine.queries import user_names
from engine.sla import is_finished_late, is_overdue

from . import current_services
from .auth import login_required
from .forms import file_values
from .i18n import aware, duration_words
from .incidents import kind_labels, panel as incident_panel
from .tasks import describe, is_paraf

bp = Blueprint("instances", __name__)


def event_labels() -> dict[str, str]:
    return {
        "instance_started": _("SOP dimulai"), "task_ready": _("Langkah siap dikerjakan"),
        "task_claimed": _("Langkah diambil"), "task_unclaimed": _("Langkah dilepas"),
        "task_reassigned": _("Langkah dialihkan"), "draft_saved": _("Draf disimpan"),
        "task_completed": _("Langkah selesai"), "task_cancelled": _("Langkah dibatalkan"),
        "timer_fired": _("Batas waktu Mutu Baku terlewati"), "instance_completed": _("SOP selesai"),
        "clock_paused": _("Jam Mutu Baku dijeda"), "clock_resumed": _("Jam Mutu Baku berjalan lagi"),
        "due_recomputed": _("Batas waktu dihitung ulang (kalender kantor berubah)"),
        "reminder_failed": _("Pengingat gagal terkirim"),
        "incident_opened": _("SOP berhenti: insiden dibuka"), "incident_resolved": _("Insiden selesai"),
        "incident_retry_failed": _("Percobaan ulang insiden gagal"),
    }


def step_status(version_steps: dict, tasks, now: datetime) -> list[dict]:
    """Per SOP step: its latest task and whether it is current, on time or late (with words)."""
    latest = {}
    for t in tasks:
        if t.state != "cancelled":
            latest[t.bpmn_id] = t
    rows = []
    for bpmn_id, step in sorted(version_steps.items(), key=lambda kv: kv[1].get("no") or 0):
        t = latest.get(bpmn_id)
        status, marker, text = "todo", None, _("Belum dimulai")
        if t is not None:
            due = aware(t.due_at)
            if t.state == "ready":
                late = is_overdue(t.state, due, t.paused_at, now)
                status, marker = ("current-late", "lajur-late") if late else ("current", "lajur-current")
                text = (_("Sedang berjalan, terlambat %(d)s", d=duration_words((now - due).total_seconds() / 60))
                        if late else _("Sedang berjalan, sisa %(d)s", d=duration_words((due - now).total_seconds() / 60))
                        if due else _("Sedang berjalan"))
            else:
                done = aware(t.completed_at)
                if is_finished_late(due, done):
                    status, marker = "late", "lajur-late"
                    text = _("Terlambat %(d)s", d=duration_words((done - due).total_seconds() / 60))
                else:
                    status, marker, text = "ontime", "lajur-ontime", _("Tepat waktu")
        rows.append({"id": bpmn_id, "no": step.get("no"), "name": step.get("name", bpmn_id),
                     "lane": step.get("lane"), "minutes": step.get("mutu_baku_minutes"), "task": t,
                     "status": status, "marker": marker, "text": text,
                     "current": status.startswith("current")})
    return rows


@bp.get("/instances/<int:instance_id>")
@login_required
def detail(instance_id: int):
    services = current_services()
    d = services.runtime.instance_detail(current_user.id, instance_id)
    instance, version, tasks, events = d["instance"], d["version"], d["tasks"], d["events"]
    now = datetime.now(timezone.utc)
    steps = step_status(version.steps, tasks, now)
    submitted, shas = [], set()
    for t in tasks:
        if t.state == "completed":
            schema = version.forms.get(version.steps.get(t.bpmn_id, {}).get("form"), {})
            shas |= file_values(schema, t.data)
            submitted.append({"task": t, "rows": describe(schema, t.data),
                              "paraf": [v for k, v in (t.data or {}).items() if is_paraf(k, v)]})
    with services.sessions() as db:
        files = evidence.by_sha(db, None if current_user.has_role("admin") else current_user.office_id, shas)
        names = user_names(db, {t.assignee_id for t in tasks} | {t.completed_by_id for t in tasks})
        incidents = incident_panel(db, Actor.of_view(current_user), instance, version)
    diagram = {"xml": version.bpmn_xml,
               "marks": [{"id": s["id"], "marker": s["marker"], "text": s["text"], "current": s["current"]}
                         for s in steps if s["marker"]]}
    return render_template("instances/detail.html", instance=instance, version=version, sop=version.sop,
                           definition=version.definition, steps=steps, events=events, labels=event_labels(),
                           submitted=submitted, files=files, names=names, diagram=diagram, now=now,
                           incidents=incidents, incident_kinds=kind_labels())
