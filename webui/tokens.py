"""The profile's API tokens: make one (shown once), see them, revoke one.

A supervisor also makes and revokes tokens of their office's service accounts here (the
office's administrator for machines: the CMS, a WhatsApp gateway). The rules and the
hashing are engine.tokens'; this page only collects the form.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import tokens
from engine.errors import FormInvalid
from engine.models import User

from . import current_services, flash
from .auth import login_required
from .guards import MAX_ID
from .i18n import _

bp = Blueprint("tokens", __name__)


def _form_int(name: str) -> int | None:
    """A whole number from the form, or None when missing, not a number or past 64 bits."""
    value = request.form.get(name, type=int)
    return value if value is not None and -MAX_ID <= value <= MAX_ID else None


def _owner(user_id: int | None) -> int:
    """Whose tokens the form is about: one's own, or a service account of one's office (supervisor)."""
    if not user_id or user_id == current_user.id:
        return current_user.id
    with current_services().sessions() as db:
        target = db.get(User, user_id)
        me = db.get(User, current_user.id)
        if target is None or target.kind != "service" or not tokens.may_manage_service_accounts(me, target.office_id):
            abort(404)
    return target.id


def _page(new_token: str | None = None, errors: dict | None = None, status: int = 200):
    with current_services().sessions() as db:
        me = db.get(User, current_user.id)
        mine = tokens.list_tokens(db, current_user.id)
        services_of_office = []
        if me.office_id is not None and tokens.may_manage_service_accounts(me, me.office_id):
            for account in db.scalars(select(User).where(User.office_id == me.office_id, User.kind == "service")
                                      .order_by(User.username)):
                services_of_office.append((account, tokens.list_tokens(db, account.id)))
    return render_template("auth/tokens.html", mine=mine, service_accounts=services_of_office, new_token=new_token,
                           errors=errors or {}, scopes=tokens.SCOPES, now=datetime.now(timezone.utc),
                           form=request.form if errors else {}), status


@bp.get("/profile/tokens")
@login_required
def index():
    return _page()


@bp.post("/profile/tokens")
@login_required
def create():
    owner = _owner(_form_int("user_id"))
    try:
        secret = tokens.issue_token(current_services().sessions, owner, request.form.get("name", ""),
                                    request.form.get("scope", ""), _form_int("days") or 0, datetime.now(timezone.utc))
    except FormInvalid as exc:
        return _page(errors=exc.errors, status=422)
    return _page(new_token=secret)  # shown this once; never stored in the clear


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    owner = _owner(_form_int("user_id"))
    tokens.revoke(current_services().sessions, owner, token_id, datetime.now(timezone.utc))
    flash(_("Token dicabut; aplikasi yang memakainya tidak bisa masuk lagi."), "info")
    return redirect(url_for("tokens.index"))
