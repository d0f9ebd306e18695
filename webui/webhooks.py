"""The office's event webhooks: subscribe a URL to events, pause, new secret, remove; the
delivery log of each with "Kirim ulang / Send again".

For the office's `office_admin` (their own office) and a regency admin (`?office=<code>`),
the same office resolution as the other administration pages (webui/admin.py); the rules
and the writes are engine.webhooks.subscriptions'. A secret is shown once, in the answer to
the POST that made it (never in the session cookie or a redirect).
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine.errors import FormInvalid, LajurError, NotFound
from engine.models import Office, User
from engine.webhooks import subscriptions
from engine.webhooks.events import EVENTS

from . import current_services, flash
from .admin import _office_code
from .auth import login_required
from .i18n import _

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


def _office_arg(code: str) -> str | None:
    return code if current_user.has_role("admin") else None


def _labels() -> dict[str, str]:
    return {"instance.started": _("SOP dimulai"), "step.ready": _("Langkah siap dikerjakan"),
            "step.completed": _("Langkah selesai"), "step.late": _("Langkah lewat Mutu Baku"),
            "instance.finished": _("SOP selesai"), "incident": _("Insiden terjadi")}


def _page(code: str, *, secret: tuple[int, str] | None = None, errors: dict | None = None, status: int = 200):
    with current_services().sessions() as db:
        office = db.scalar(select(Office).where(Office.code == code))
        if office is None:
            abort(404)
        me = db.get(User, current_user.id)
        try:
            subs = subscriptions.list_for(db, office.id, me)
        except LajurError as exc:
            abort(exc.http_status)
        rows = [(s, subscriptions.events_of(s)) for s in subs]
        offices = list(db.scalars(select(Office).order_by(Office.code))) if current_user.has_role("admin") else [office]
    return render_template("admin/webhooks.html", office=office, rows=rows, events=list(EVENTS), labels=_labels(),
                           secret=secret, errors=errors or {}, form=request.form if errors else {},
                           all_offices=offices, office_arg=_office_arg(code)), status


def _code() -> str:
    with current_services().sessions() as db:
        return _office_code(db)


@bp.get("/")
@login_required
def index():
    return _page(_code())


@bp.post("/")
@login_required
def add():
    code = _code()
    services = current_services()
    try:
        with services.sessions.begin() as db:
            office_id = db.scalar(select(Office.id).where(Office.code == code))
            if office_id is None:
                abort(404)
            sub, secret = subscriptions.add(db, services.settings, office_id, request.form.get("url", ""),
                                            request.form.getlist("events"), request.form.get("description", ""),
                                            db.get(User, current_user.id), datetime.now(timezone.utc))
            made = sub.id
    except FormInvalid as exc:
        return _page(code, errors=exc.errors, status=exc.http_status)
    except LajurError as exc:
        return _page(code, errors={"": [str(exc)]}, status=exc.http_status)
    return _page(code, secret=(made, secret))


def _change(subscription_id: int, action, success: str):
    code = _code()
    services = current_services()
    try:
        with services.sessions.begin() as db:
            result = action(db, db.get(User, current_user.id), datetime.now(timezone.utc))
    except NotFound:
        abort(404)
    except LajurError as exc:
        return _page(code, errors={"": [str(exc)]}, status=exc.http_status)
    if isinstance(result, str):  # a new secret: shown in this answer only
        return _page(code, secret=(subscription_id, result))
    flash(success, "info")
    return redirect(url_for("webhooks.index", office=_office_arg(code)))


@bp.post("/<int:subscription_id>/active")
@login_required
def set_active(subscription_id: int):
    active = request.form.get("active") == "1"
    return _change(subscription_id, lambda db, me, now: subscriptions.set_active(db, subscription_id, active, me, now),
                   _("Webhook diaktifkan.") if active else _("Webhook dijeda."))


@bp.post("/<int:subscription_id>/rotate")
@login_required
def rotate(subscription_id: int):
    settings = current_services().settings
    return _change(subscription_id, lambda db, me, now: subscriptions.rotate(db, settings, subscription_id, me, now),
                   "")


@bp.post("/<int:subscription_id>/remove")
@login_required
def remove(subscription_id: int):
    return _change(subscription_id, lambda db, me, now: subscriptions.remove(db, subscription_id, me, now),
                   _("Webhook dihapus."))


@bp.get("/<int:subscription_id>")
@login_required
def log(subscription_id: int):
    code = _code()
    with current_services().sessions() as db:
        me = db.get(User, current_user.id)
        try:
            sub = subscriptions.subscription(db, subscription_id, me)
            lines = subscriptions.log(db, subscription_id, me)
        except NotFound:
            abort(404)
        office = db.get(Office, sub.office_id)
        if office.code != code and not current_user.has_role("admin"):
            abort(404)
    return render_template("admin/webhook_log.html", sub=sub, office=office, lines=lines, labels=_labels(),
                           office_arg=_office_arg(office.code))


@bp.post("/<int:subscription_id>/deliveries/<int:delivery_id>/resend")
@login_required
def resend(subscription_id: int, delivery_id: int):
    services = current_services()
    try:
        with services.sessions.begin() as db:
            subscriptions.send_again(db, subscription_id, delivery_id, db.get(User, current_user.id),
                                     datetime.now(timezone.utc))
    except NotFound:
        abort(404)
    except LajurError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Dikirim ulang: masuk antrean pengiriman."), "info")
    return redirect(url_for("webhooks.log", subscription_id=subscription_id,
                            office=request.args.get("office") if current_user.has_role("admin") else None))
