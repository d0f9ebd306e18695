"""The process page of each SOP, for its owners: the SOP card, versions, a diff, moving instances.

`/processes` lists the SOPs of the signed-in process owner's office; `/processes/<key>` shows
one (the SOP card of its latest version, every version with who deployed it, when, its
instances running/done/in incident and its change note, and the difference between two
versions); `/processes/<key>/migrate` moves running instances between versions: the dry run
first (a POST: it runs the workflows in memory, so never on a GET), then, on confirmation, the
move. Who may: engine/access.py (`check_manage_process`); every read is of the user's own
office, so another office's SOP is simply not found. The work is engine/migration.py's.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from engine import access, migration, versions
from engine.errors import Forbidden, LajurError, NotFound
from engine.models import Office, ProcessDefinition, ProcessVersion

from . import current_services, flash
from .auth import login_required

bp = Blueprint("processes", __name__)


def may_manage_processes(user) -> bool:
    """For the navigation link: the engine's rule, on the user's own office."""
    return user.office_id is not None and access.may_manage_process(access.Actor.of_view(user), user.office_id)


@bp.app_context_processor
def _helpers():
    return {"studio_edit_url": studio_edit_url, "may_manage_processes": may_manage_processes}


def studio_edit_url(key: str) -> str | None:
    """The "Edit in browser" link of an SOP, when the studio (`studio.edit`) is installed."""
    if "studio.edit" not in current_app.view_functions:
        return None
    return url_for("studio.edit", key=key)


KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")  # an SOP key as sop.json allows it


def _office_code(key: str | None = None) -> str:
    """The signed-in user's office, checked: a process owner of it (403 for anyone else);
    a `key` that no SOP can have is not found (before any query sees it)."""
    if key is not None and not KEY.fullmatch(key):
        abort(404)
    if current_user.office_id is None:
        abort(403)
    try:
        access.check_manage_process(access.Actor.of_view(current_user), current_user.office_id)
    except Forbidden:
        abort(403)
    with current_services().sessions() as db:
        return db.scalar(select(Office.code).where(Office.id == current_user.office_id))


def _int_arg(source, name: str) -> int | None:
    value = (source.get(name) or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get("/processes")
@login_required
def index():
    _office_code()
    with current_services().sessions() as db:
        sops = versions.sop_summaries(db, current_user.office_id)
    return render_template("processes/index.html", sops=sops)


def _sop(db, key: str):
    found = db.scalar(select(ProcessDefinition).where(ProcessDefinition.office_id == current_user.office_id,
                                                      ProcessDefinition.key == key))
    if found is None or found.latest_version_id is None:
        abort(404)
    return found


def _card(version: ProcessVersion) -> dict:
    sop = version.sop or {}
    steps = sorted(version.steps.items(), key=lambda kv: kv[1].get("no") or 0)
    rows = [{"id": sid, "no": s.get("no"), "name": s.get("name"), "lane": s.get("lane"),
             "minutes": s.get("mutu_baku_minutes") or 0, **(sop.get("steps") or {}).get(sid, {})} for sid, s in steps]
    return {"sop": sop, "steps": rows, "actors": list(dict.fromkeys(r["lane"] for r in rows if r["lane"])),
            "total_minutes": sum(r["minutes"] for r in rows)}


@bp.get("/processes/<key>")
@login_required
def detail(key: str):
    code = _office_code(key)
    a, b = _int_arg(request.args, "a"), _int_arg(request.args, "b")
    with current_services().sessions() as db:
        definition = _sop(db, key)
        latest = db.get(ProcessVersion, definition.latest_version_id)
        rows = versions.list_versions(db, code, key)
        card = _card(latest)
        if a is None and b is None and len(rows) > 1:
            a, b = rows[-2].version, rows[-1].version
        changes, diff_error = None, None
        if a is not None or b is not None or request.args.get("a") or request.args.get("b"):
            try:
                if a is None or b is None or a == b:
                    raise LajurError("two versions")
                changes = versions.changes(db, code, key, a, b)
            except LajurError:
                diff_error = _("Pilih dua versi yang berbeda dari daftar.")
    page = render_template("processes/detail.html", definition=definition, latest=latest, card=card, rows=rows,
                           a=a, b=b, changes=changes, diff_error=diff_error, kinds=_kinds())
    return page, (400 if diff_error else 200)


def _kinds() -> dict[str, str]:
    return {"step": _("Langkah"), "lane": _("Lajur"), "Mutu Baku": _("Mutu Baku"), "condition": _("Kondisi"),
            "field": _("Isian formulir")}


def refusal_text(refusal) -> str:
    """Why an instance stays, in the user's language (engine/workflow_move.py's codes)."""
    p = refusal.params
    texts = {
        "step_removed": lambda: _("langkah %(s)s sedang terbuka dan tidak ada lagi di versi %(v)s", s=p["step"], v=p["to"]),
        "not_user_task": lambda: _("langkah %(s)s bukan lagi tugas pengguna di versi %(v)s", s=p["step"], v=p["to"]),
        "passed_removed": lambda: _("%(e)s sudah dilalui dan tidak ada lagi di versi %(v)s (catatannya akan hilang)",
                                    e=p["element"], v=p["to"]),
        "open_steps_change": lambda: _("pemindahan akan mengubah langkah yang terbuka (%(s)s)", s=p["steps"]),
        "automatic": lambda: _("pemindahan akan meninggalkan elemen otomatis yang harus dijalankan (%(e)s)",
                               e=p["elements"]),
        "subprocess_removed": lambda: _("sub-proses %(n)s tidak ada lagi di versi %(v)s", n=p["name"], v=p["to"]),
        "holder_not_in_lane": lambda: _("langkah %(s)s dipegang %(h)s, yang tidak termasuk lajur %(l)s di versi %(v)s",
                                        s=p["step"], h=p["holder"], l=p["lane"], v=p["to"]),
        "moved_meanwhile": lambda: _("instans ini sudah tidak berjalan pada versi %(v)s", v=p["frm"]),
        "failed": lambda: _("pemindahan gagal dan dibatalkan: %(e)s", e=p["error"]),
    }
    make = texts.get(refusal.code)
    return make() if make else str(refusal)


def _migrate_page(key: str, code: str, frm: int | None, to: int | None, report=None, error: str | None = None,
                  status: int = 200, applied: bool = False):
    with current_services().sessions() as db:
        definition = _sop(db, key)
        rows = versions.list_versions(db, code, key)
    if frm is None and to is None and rows:
        with_running = [r.version for r in rows[:-1] if r.running or r.incident]
        frm, to = (with_running[0] if with_running else rows[0].version), rows[-1].version
    return render_template("processes/migrate.html", definition=definition, rows=rows, frm=frm, to=to,
                           report=report, error=error, applied=applied, refusal_text=refusal_text), status


@bp.get("/processes/<key>/migrate")
@login_required
def migrate_form(key: str):
    code = _office_code(key)
    return _migrate_page(key, code, _int_arg(request.args, "from"), _int_arg(request.args, "to"))


@bp.post("/processes/<key>/migrate")
@login_required
def migrate(key: str):
    code = _office_code(key)
    frm, to = _int_arg(request.form, "from"), _int_arg(request.form, "to")
    action = request.form.get("action", "check")
    if frm is None or to is None or frm == to:
        return _migrate_page(key, code, frm, to, error=_("Pilih dua versi yang berbeda."), status=400)
    rt = current_services().runtime
    try:
        if action == "apply":
            report = migration.apply(rt, current_user.id, code, key, frm, to)
        else:
            report = migration.plan(rt, current_user.id, code, key, frm, to)
    except NotFound:
        return _migrate_page(key, code, frm, to, error=_("Versi itu tidak ada untuk SOP ini."), status=404)
    except LajurError as exc:
        return _migrate_page(key, code, frm, to, error=str(exc), status=exc.http_status)
    if action == "apply":
        flash(_("Dipindahkan %(m)s, tetap %(s)s, gagal %(f)s.", m=report.count("moved"), s=report.count("stayed"),
                f=report.count("failed")), "error" if report.count("failed") else "info")
    return _migrate_page(key, code, frm, to, report=report, applied=action == "apply")
