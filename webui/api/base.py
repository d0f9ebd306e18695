"""The /api/v1 blueprint, its OpenAPI generator and what every API request shares.

Only bearer tokens authenticate here (engine/tokens.py): the session cookie is never
read, so the blueprint is exempt from CSRF (a browser never attaches a bearer token on
its own). Every view calls the same engine services as the web pages, with the token's
user id, so the engine applies the same office and lane rules.

Spectree validates each request against the pydantic models the views declare and
generates the OpenAPI 3.1 document from the same models (`openapi.py`).
"""
from __future__ import annotations

import base64
import binascii
import os
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, g, json, request
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from spectree import Response, SecurityScheme, SpecTree
from spectree.model_adapter.pydantic_adapter import PydanticModelAdapter
from spectree.models import SecureType, SecuritySchemeData

from engine import queries, tokens
from engine.queries import UserView

from .. import current_services, reads
from .problems import Problem, init_blueprint, problem, validation_hook

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class _Models(PydanticModelAdapter):
    """pydantic, with validation errors that never echo the input (an uploaded file or bytes
    cannot be written as JSON, and echoing it back is pointless)."""

    def validation_errors(self, err):
        return err.errors(include_context=False, include_input=False, include_url=False)


spec = SpecTree(
    "flask", model_adapter=_Models(), mode="strict", annotations=True, before=validation_hook, validation_error_model=Problem,
    naming_strategy=lambda model: model.__name__, nested_naming_strategy=lambda _parent, child: child,
    title="Lajur API", version="1.0.0",
    description="SOP processes, instances, the task inbox, notifications, dashboard figures and the office "
                "calendar of Lajur. Authenticate with `Authorization: Bearer <token>` (a personal access token "
                "made on the profile page, or a service account's). Errors are RFC 9457 problem details.",
    path="api/v1/_spectree",  # spectree's own pages are not registered; openapi.py serves the document
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(
        type=SecureType.HTTP, scheme="bearer", description="a personal access token or a service account's token"))],
    security={"bearer": []},
)

PUBLIC = frozenset({"api.openapi_json", "api.docs"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COMMON_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429)
MAX_JSON_BYTES = 1024 * 1024


def responses(ok: dict, *extra: int) -> Response:
    """The documented responses of an operation: its successes plus the problems every call can meet."""
    codes = {f"HTTP_{code}": Problem for code in sorted(set(COMMON_ERRORS) | set(extra))}
    return Response(**ok, **codes)


def now() -> datetime:
    return datetime.now(timezone.utc)


def services():
    return current_services()


def auth() -> tokens.TokenAuth:
    return g.api_auth


def user() -> UserView:
    """The token's user (loaded on first use: a completion needs only the id)."""
    view = g.get("api_user")
    if view is None:
        with reads.connection() as conn:
            view = queries.user_view(conn, g.api_auth.user_id)
        if view is None:
            abort(401)
        g.api_user = view
    return view


@bp.record_once
def _setup(state) -> None:
    app = state.app
    app.extensions["csrf"].exempt(bp)
    app.config.setdefault("LAJUR_API_LIMIT", os.environ.get("LAJUR_API_LIMIT", "1200/minute"))


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(401, "send a token: Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": 'Bearer realm="lajur"'})
    with reads.connection() as conn:
        found = tokens.resolve(conn, token.strip(), now())
    if found is None:
        return problem(401, "the token is unknown, revoked or expired",
                       headers={"WWW-Authenticate": 'Bearer realm="lajur", error="invalid_token"'})
    g.api_auth = found
    limited = _rate_limit(found.token_id)
    if limited is not None:
        return limited
    if request.method not in SAFE_METHODS and not found.may_write:
        return problem(403, "this token's scope is read; changes need a write token", kind="insufficient-scope")
    if request.mimetype == "application/json" and (request.content_length or 0) > MAX_JSON_BYTES:
        return problem(413, f"a JSON body may have at most {MAX_JSON_BYTES // 1024} KB")
    if request.method not in SAFE_METHODS and request.get_data(cache=True):
        if request.mimetype == "application/json":
            body = request.get_json(silent=True)
            if body is None:
                return problem(400, "the body is not valid JSON")
            if not isinstance(body, dict):
                return problem(422, "the body must be a JSON object", kind="request-invalid",
                               errors=[{"field": "", "pointer": "", "detail": "expected an object"}])
        elif request.mimetype != "multipart/form-data":
            return problem(415, "send application/json (or multipart/form-data for evidence)")
    if _has_nul():
        return problem(422, "text may not contain NUL characters", kind="request-invalid",
                       errors=[{"field": "", "pointer": "", "detail": "NUL (U+0000) is not allowed"}])
    return None


def _has_nul() -> bool:
    """NUL cannot be stored in PostgreSQL text: refuse it in the path, the query or a JSON body."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return True
    return request.mimetype == "application/json" and b"\\u0000" in request.get_data(cache=True)


def _rate_limit(token_id: int):
    """Count the request against the token's limit in the app's limiter storage (Redis when configured)."""
    limiter = current_app.extensions.get("lajur_api_limiter")
    if limiter is None:  # one per app, made on first use (the storage connects lazily too)
        limiter = current_app.extensions["lajur_api_limiter"] = MovingWindowRateLimiter(
            storage_from_string(current_app.config["RATELIMIT_STORAGE_URI"]))
    item = parse_limit(current_app.config["LAJUR_API_LIMIT"])
    if limiter.hit(item, "api-token", str(token_id)):
        return None
    reset, _remaining = limiter.get_window_stats(item, "api-token", str(token_id))
    retry = max(1, int(reset - now().timestamp()))
    return problem(429, f"rate limit of {current_app.config['LAJUR_API_LIMIT']} per token reached",
                   headers={"Retry-After": str(retry)})


# ---- cursors: opaque to clients ----------------------------------------------------------
def encode_cursor(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, key: str) -> int | None:
    """The integer `key` of a cursor this API made; a malformed cursor is a 422 problem."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        number = value[key]
        if isinstance(number, int) and not isinstance(number, bool) and 0 <= number < 2 ** 53:
            return number
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        pass
    abort(problem(422, "cursor is not one this API returned",
                  errors=[{"field": "cursor", "pointer": "/cursor", "detail": "invalid cursor"}]))


init_blueprint(bp)
