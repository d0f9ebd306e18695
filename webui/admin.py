"""Office administration: groups (lanes) and their members, users' roles, who owns which SOP.

For an office's `office_admin` on their own office, and for a regency admin
on any office (`?office=<code>`). The office is decided on the server from the signed-in
user, never taken from the form for an office administrator; every change goes through
engine/offices.py with its audit record, in one transaction.
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from engine import offices, papers, registers
from engine.notifications import failed_deliveries
from engine.pause_requests import MODES
from engine.errors import FormInvalid, LajurError
from engine.models import Office, User

from . import current_services, flash
from .auth import login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _office_code(db) -> str:
    """The office this request administers; 403 for anyone who administers none."""
    if current_user.has_role("admin"):
        code = request.values.get("office") or ""
        if not code:
            first = db.scalar(select(Office.code).order_by(Office.code))
            if first is None:
                abort(404)
            return first
        return code
    if current_user.office_id is None or not current_user.has_role("office_admin"):
        abort(403)
    return db.scalar(select(Office.code).where(Office.id == current_user.office_id))


def _page(code: str, error: str | None = None, status: int = 200):
    """The page for `code`: read in one session, rendered after it closed (on SQLite a session
    holds the write lock, and the page's own reads, such as the unread badge, need the database)."""
    with current_services().sessions() as db:
        office = db.scalar(select(Office).where(Office.code == code))
        if office is None:
            abort(404)
        if not offices.may_administer(db.get(User, current_user.id), office):
            abort(403)
        data = dict(office=office, groups=offices.groups_with_members(db, code),
                    users=offices.office_users(db, office.id), sops=offices.sop_owners(db, office.id),
                    all_offices=offices.list_offices(db) if current_user.has_role("admin") else [office],
                    failed=failed_deliveries(db, office.id, limit=20),
                    registers=registers.office_registers(db, office.id), kop=papers.kop_of(db, office))
        users_by_id = {u.id: u for u in data["users"]}
        data["failed"] = [(d, users_by_id.get(d.recipient_id)) for d in data["failed"]]
    return render_template("admin/index.html", roles=offices.OFFICE_ROLES, error=error, **data), status


@bp.get("/")
@login_required
def index():
    with current_services().sessions() as db:
        code = _office_code(db)
    return _page(code)


def _change(action, success: str):
    """Run one change in a transaction; on refusal show the page again with the reason (4xx)."""
    services = current_services()
    with services.sessions() as db:
        code = _office_code(db)
    try:
        with services.sessions.begin() as db:
            action(db, code, db.get(User, current_user.id))
    except FormInvalid as exc:
        return _page(code, "; ".join(m for msgs in exc.errors.values() for m in msgs), exc.http_status)
    except LajurError as exc:
        return _page(code, str(exc), exc.http_status)
    flash(success, "info")
    return redirect(url_for("admin.index", office=code if current_user.has_role("admin") else None))


@bp.post("/groups")
@login_required
def create_group():
    name = request.form.get("name", "")
    return _change(lambda db, code, actor: offices.create_group(db, code, name, actor),
                   _("Grup %(g)s dibuat.", g=name.strip()))


@bp.post("/members")
@login_required
def members():
    group, username = request.form.get("group", ""), request.form.get("username", "").strip()
    add = request.form.get("action") != "remove"
    return _change(lambda db, code, actor: offices.set_membership(db, code, group, username, add, actor),
                   _("Anggota grup diperbarui."))


@bp.post("/roles")
@login_required
def roles():
    username, chosen = request.form.get("username", ""), set(request.form.getlist("roles"))
    return _change(lambda db, code, actor: offices.set_roles(db, code, username, chosen, actor),
                   _("Peran %(u)s diperbarui.", u=username))


@bp.post("/registers")
@login_required
def set_register():
    """Create a register or change its name, number template, unit or security code."""
    f = request.form
    code = f.get("code", "")
    return _change(lambda db, office, actor: registers.define_for(
        db, actor, office, code, name=f.get("name"), template=f.get("template"), unit=f.get("unit"),
        security=f.get("security"), kind=f.get("kind")), _("Register %(r)s disimpan.", r=code.strip()))


@bp.post("/letterhead")
@login_required
def set_letterhead():
    """The office's kop surat on the papers Lajur prints."""
    f = request.form
    return _change(lambda db, office, actor: papers.set_letterhead_for(db, actor, office, f.get("kop", ""),
                                                                        f.get("address", "")),
                   _("Kop surat disimpan."))


@bp.post("/pause-mode")
@login_required
def set_pause_mode():
    """Whether a staff member's pause of a step's clock waits for a supervisor ("approval") or
    stops the clock at once with the supervisors told ("immediate"): engine/pause_requests.py."""
    mode = request.form.get("pause_mode", "")
    services = current_services()
    with services.sessions() as db:
        code = _office_code(db)
    if mode not in MODES:
        return _page(code, _("Pilih cara jeda: dengan persetujuan atau langsung."), 400)
    try:  # its own transaction with the audit row (engine/pause_requests.set_mode)
        services.runtime.set_pause_mode(current_user.id, code, mode)
    except LajurError as exc:
        return _page(code, str(exc), exc.http_status)
    flash(_("Cara jeda jam Mutu Baku disimpan."), "info")
    return redirect(url_for("admin.index", office=code if current_user.has_role("admin") else None))
