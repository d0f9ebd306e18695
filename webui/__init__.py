"""The staff web app: an app factory wiring the engine Services into Flask.

Nothing is created at import time: `create_app()` builds the Services from the
environment (or takes the ones a test or the CLI passes), and every request reaches
them through `current_services()`. Pages are rendered on the server; htmx only makes
some of them nicer, so every core action also works as a plain form post.
"""
from __future__ import annotations

import importlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

import flask
from flask import Flask, current_app, has_request_context, session

from engine.config import Settings
from engine.services import Services

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024


def current_services() -> Services:
    """The engine Services of the running app; in a request, bound to the request's one
    connection (webui/db.py), so every session and engine service of the request uses it."""
    if has_request_context():
        from .db import request_services
        return request_services()
    return current_app.extensions["lajur"]


def flash(message: str, category: str = "info") -> None:
    """flask.flash, except that a message already waiting to be shown is not queued a second time.

    A client that posts without following the redirect (a script, a form sent twice) would
    otherwise add one message per post to the signed session cookie, and every later
    request would pay to read and re-sign the longer cookie (and a browser drops one over 4 KB).
    """
    if (category, message) not in (tuple(m) for m in session.get("_flashes", ())):
        flask.flash(message, category)


def create_app(settings: Settings | None = None, services: Services | None = None,
               config: dict | None = None) -> Flask:
    if services is None:
        settings = settings or Settings.from_env()
        services = Services.from_settings(settings)
    settings = services.settings
    app = Flask(__name__)
    https = settings.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=_secret_key(settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_NAME="lajur_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=10),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        BABEL_DEFAULT_LOCALE="id",
        BABEL_DEFAULT_TIMEZONE="Asia/Jakarta",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        LAJUR_MAX_UPLOAD_BYTES=DEFAULT_MAX_UPLOAD,
        MAX_CONTENT_LENGTH=4 * DEFAULT_MAX_UPLOAD + 1024 * 1024,  # an upload post (webui/guards.py)
        MAX_FORM_MEMORY_SIZE=256 * 1024,  # one multipart text field
        MAX_FORM_PARTS=200,
        LAJUR_MAX_FORM_BYTES=1024 * 1024,  # any body that is not an upload post
        # the API's per-token limits, shared between gunicorn workers when Redis is the broker
        RATELIMIT_STORAGE_URI=os.environ.get("LAJUR_RATELIMIT_STORAGE") or (
            settings.broker_url if settings.broker_url.startswith(("redis://", "rediss://")) else "memory://"),
        LAJUR_INBOX_PAGE=25,
        LAJUR_INBOX_POLL_SECONDS=30,
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(hours=1),
    )
    if config:
        app.config.update(config)
    hops = int(os.environ.get("LAJUR_PROXY_HOPS", "0") or 0)
    if hops:  # behind `lajur web`'s nginx (or another front that sets X-Forwarded-For): the client's address
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.extensions["lajur"] = services
    app.jinja_env.globals["current_app"] = current_app  # base.html asks which optional blueprints exist

    from . import auth, db, errors, files, guards, i18n, inbox, instances, metrics, start, tasks
    guards.register_converters(app)
    guards.init_app(app)  # first: its body limits must apply before CSRF reads the form
    db.init_app(app)
    metrics.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    for module in (auth, inbox, tasks, start, instances, files):
        app.register_blueprint(module.bp)
    from .blueprints import BLUEPRINTS
    for spec in BLUEPRINTS:
        module_name, _, attr = spec.partition(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attr or "bp"))

    @app.get("/healthz")
    def healthz():
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _secret_key(data_dir: Path) -> str:
    """LAJUR_SECRET_KEY, else a key made once and kept in the data directory (never the repo)."""
    key = os.environ.get("LAJUR_SECRET_KEY")
    if key:
        return key
    path = Path(data_dir) / "secret_key"
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(48)
    try:  # O_EXCL: two gunicorn workers starting together agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as out:
        out.write(candidate)
    return candidate


def _read_key(path: Path) -> str:
    """Read the stored key, waiting briefly if another worker is still writing it."""
    import time
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it or set LAJUR_SECRET_KEY")
