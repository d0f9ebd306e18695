"""Sign-in, sign-out, the signed-in user, the language choice and login rate limiting.

The session remembers only the user id plus a fragment of the password hash, so a
password change (or deactivation) ends every other session of that user. The user is
loaded once per request as a small detached `StaffUser`; pages never touch a lazily
loaded ORM object after its session closed.
"""
from __future__ import annotations

import hashlib
from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_login import login_required as _flask_login_required

from engine.accounts import authenticate
from engine.models import User
from engine.queries import UserView

from . import flash, reads

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
        return f"{self.id}:{_hash_fragment(self.view.password_hash)}"


def _hash_fragment(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


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
        if not user_id.isdigit():
            return None
        view = reads.user_view(int(user_id))
        if view is None or fragment != _hash_fragment(view.password_hash):
            return None
        return StaffUser(view)

    @manager.unauthorized_handler
    def unauthorized():
        if request.headers.get("HX-Request"):
            return "", 401, {"HX-Redirect": url_for("auth.login")}
        nxt = request.full_path if request.method == "GET" else None
        return redirect(url_for("auth.login", next=nxt.rstrip("?") if nxt else None))


def init_limiter(app) -> None:
    """Limit sign-in attempts per client address and username (Flask-Limiter; memory or Redis storage)."""
    limiter = Limiter(get_remote_address, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
                      default_limits=[], headers_enabled=True, key_prefix="lajur")
    app.extensions["lajur_limiter"] = limiter
    app.view_functions["auth.login"] = limiter.limit(
        lambda: current_app.config["LAJUR_LOGIN_LIMIT"], key_func=_login_key, methods=["POST"],
        error_message=_limited_message)(app.view_functions["auth.login"])


def _login_key() -> str:
    name = (request.form.get("username") or "").strip().lower()[:64]
    return f"login:{get_remote_address()}:{name}"


def _limited_message() -> str:
    return _("Terlalu banyak percobaan masuk. Tunggu satu menit, lalu coba lagi.")


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect after sign-in is a phishing aid."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("inbox.index"))
    error = None
    username = ""
    status = 200
    if request.method == "POST":
        from . import current_services
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        with current_services().sessions() as db:
            user = authenticate(db, username, password) if username and password else None
        view = reads.user_view(user.id) if user else None
        if view is not None:
            nxt = _safe_next(request.form.get("next"))
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
                           next=_safe_next(request.values.get("next")) or ""), status


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash(_("Anda sudah keluar."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    from engine.accounts import CHANNELS, set_notification_preferences
    from engine.errors import FormInvalid
    from . import current_services
    errors: dict = {}
    if request.method == "POST" and request.form.get("section") == "channels":
        chosen = set(request.form.getlist("channels"))
        try:
            with current_services().sessions.begin() as db:
                set_notification_preferences(db.get(User, current_user.id), chosen, request.form.get("email"),
                                             request.form.get("webhook_handle"))
        except FormInvalid as exc:
            errors = exc.errors
        else:
            flash(_("Pilihan notifikasi disimpan."), "info")
            return redirect(url_for("auth.profile"))
    elif request.method == "POST":
        locale = request.form.get("locale")
        if locale not in LOCALES:
            abort(400)
        with current_services().sessions.begin() as db:
            db.get(User, current_user.id).locale = locale
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
    return render_template("auth/profile.html", locales=LOCALES, channels=CHANNELS, prefs=prefs,
                           errors=errors), (422 if errors else 200)
