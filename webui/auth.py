"""Sign-in, sign-out, the signed-in user, the language choice and the one safe-redirect check.

The session cookie remembers only the user id plus a fragment hashed from the password
hash and the user's session epoch, checked against the database on every request (it is
part of the one read that loads the user). Sign-out and a password change bump the
epoch, so every cookie of that user, on any device or copied, stops working.
Failed sign-ins are counted in the database by engine.throttle, shared by every process.
The user is loaded once per request as a small detached `StaffUser`; pages never touch a
lazily loaded ORM object after its session closed.
"""
from __future__ import annotations

import hashlib
from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_login import login_required as _flask_login_required

from engine import throttle
from engine.accounts import sign_out
from engine.models import User
from engine.queries import UserView

from . import current_services, flash, reads

bp = Blueprint("auth", __name__)

LOCALES = {"id": "Bahasa Indonesia", "en": "English"}


class StaffUser:
    """The signed-in user as Flask-Login sees it: .id, .office_id, .has_role(), names, lanes."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, view: UserView):
        self.view = view
        self.id = view.id
        self.username = view.username
        self.full_name = view.full_name
        self.office_id = view.office_id
        self.office_name = view.office_name
        self.roles = view.roles
        self.locale = view.locale
        self.groups = view.groups

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def get_id(self) -> str:
        return f"{self.id}:{_session_fragment(self.view)}"


def _session_fragment(view: UserView) -> str:
    """Changes with the password and with every sign-out (the session epoch)."""
    return hashlib.sha256(f"{view.password_hash}:{view.session_epoch}".encode()).hexdigest()[:16]


def login_required(view):
    """Views for signed-in staff only; anonymous users go to the sign-in page (htmx: 401 + redirect header)."""
    protected = _flask_login_required(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated and request.headers.get("HX-Request"):
            return "", 401, {"HX-Redirect": url_for("auth.login", next=request.full_path)}
        return protected(*args, **kwargs)
    return wrapper


def init_app(app) -> None:
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = None
    manager.session_protection = "basic"

    @manager.user_loader
    def load_user(token: str):
        user_id, _sep, fragment = token.partition(":")
        if not user_id.isdigit() or len(user_id) > 18:
            return None
        view = reads.user_view(int(user_id))
        if view is None or fragment != _session_fragment(view):
            return None
        return StaffUser(view)

    @manager.unauthorized_handler
    def unauthorized():
        if request.headers.get("HX-Request"):
            return "", 401, {"HX-Redirect": url_for("auth.login")}
        nxt = request.full_path if request.method == "GET" else None
        return redirect(url_for("auth.login", next=nxt.rstrip("?") if nxt else None))


def safe_next(target: str | None) -> str | None:
    """Only a path on this site, else None: an open redirect is a phishing aid.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so
    `/\t/evil.example` is `//evil.example` to them: any control character, whitespace or
    backslash refuses the target, before the `//` (another host) check.
    """
    if not target or len(target) > 2048 or not target.startswith("/"):
        return None
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in target) or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _throttle_policy() -> throttle.Policy:
    return current_app.config.get("LAJUR_LOGIN_POLICY") or throttle.Policy()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("inbox.index"))
    error = None
    username = ""
    status = 200
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        services = current_services()
        try:
            user = throttle.sign_in(services.sessions, username, password, request.remote_addr,
                                    services.runtime.clock(), _throttle_policy())
        except throttle.Locked:
            return _login_refused(username, _("Akun ini dikunci sementara karena terlalu banyak percobaan masuk "
                                              "yang salah. Hubungi admin untuk membukanya."))
        except throttle.Throttled:
            return _login_refused(username, _("Terlalu banyak percobaan masuk. Tunggu satu menit, lalu coba lagi."))
        view = reads.user_view(user.id) if user else None
        if view is not None:
            nxt = safe_next(request.form.get("next"))
            lang = session.get("lang")
            session.clear()  # fresh session (and CSRF token) on sign-in
            if lang:
                session["lang"] = lang
            login_user(StaffUser(view))
            session.permanent = True
            return redirect(nxt or url_for("inbox.index"))
        error = _("Nama pengguna atau kata sandi salah.")
        status = 401
    return render_template("auth/login.html", error=error, username=username,
                           next=safe_next(request.values.get("next")) or ""), status


def _login_refused(username: str, message: str):
    return render_template("auth/login.html", error=message, username=username[:64], next=""), 429


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        sign_out(current_services().sessions, current_user.id)
    logout_user()
    session.clear()
    flash(_("Anda sudah keluar."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    from engine.accounts import CHANNELS, save_locale, save_notification_preferences
    from engine.errors import FormInvalid
    errors: dict = {}
    from engine.notifications import offered_channels
    with current_services().sessions() as db:
        offered = offered_channels(db, current_services().settings, current_user.office_id)
    if request.method == "POST" and request.form.get("section") == "channels":
        chosen = set(request.form.getlist("channels")) & set(offered)  # a channel not configured is not chosen
        try:
            save_notification_preferences(current_services().sessions, current_user.id, chosen,
                                          request.form.get("email"), request.form.get("webhook_handle"))
        except FormInvalid as exc:
            errors = exc.errors
        else:
            flash(_("Pilihan notifikasi disimpan."), "info")
            return redirect(url_for("auth.profile"))
    elif request.method == "POST":
        locale = request.form.get("locale")
        if locale not in LOCALES:
            abort(400)
        save_locale(current_services().sessions, current_user.id, locale, LOCALES)
        g.lajur_locale = locale
        flash(_("Bahasa disimpan."), "info")
        return redirect(url_for("auth.profile"))
    with current_services().sessions() as db:
        me = db.get(User, current_user.id)
        prefs = {"channels": set((me.notify_channels or "").split(",")), "email": me.email or "",
                 "webhook_handle": me.webhook_handle or ""}
    if errors:
        prefs = {"channels": set(request.form.getlist("channels")), "email": request.form.get("email", ""),
                 "webhook_handle": request.form.get("webhook_handle", "")}
    prefs["channels"] &= set(offered)
    return render_template("auth/profile.html", locales=LOCALES, channels=[c for c in CHANNELS if c in offered],
                           missing=[c for c in CHANNELS if c not in offered], prefs=prefs,
                           errors=errors), (422 if errors else 200)
