"""Errors of the API as RFC 9457 problem details (`application/problem+json`).

Every failure of an /api/v1 request ends here: engine errors (NotFound, and OtherOffice
answered as the same 404 so another office's ids reveal nothing; Forbidden 403; Conflict
409; FormInvalid 422 with one entry per field), request validation (422 with the
field's JSON pointer), HTTP errors (401, 404, 405, 412, 413, 429) and anything
unexpected (500, without internals).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Response, current_app, g, json, request
from pydantic import BaseModel, Field
from werkzeug.exceptions import HTTPException

from engine.attachments import FileTooLarge
from engine.errors import Conflict, Forbidden, FormInvalid, LajurError, NotFound, OtherOffice

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://lajur.bantulkab.go.id/problems/"

TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 412: "Precondition failed", 413: "Payload too large", 415: "Unsupported media type",
    422: "Unprocessable content", 428: "Precondition required", 429: "Too many requests",
    500: "Internal server error",
}


class FieldError(BaseModel):
    field: str = Field(description="the field's dotted path ('' for the whole document)")
    pointer: str = Field(description="JSON pointer into the request body or query")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem(status: int, detail: str | None = None, errors: list[dict] | None = None,
            headers: dict[str, str] | None = None, kind: str | None = None) -> Response:
    body: dict[str, Any] = {"type": TYPE_BASE + (kind or str(status)), "title": TITLES.get(status, "Error"),
                            "status": status, "instance": request.path}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def field_errors(errors: dict[str, list[str]], root: str = "") -> list[dict]:
    """FormInvalid's {path: [messages]} as problem entries; `root` is where the form sits in the body."""
    out = []
    for path, messages in errors.items():
        parts = [p for p in (root.split(".") if root else []) + (path.split(".") if path else []) if p]
        for message in messages:
            out.append({"field": ".".join(parts), "pointer": "/" + "/".join(parts), "detail": message})
    return out


def from_engine(exc: LajurError) -> Response:
    if isinstance(exc, (OtherOffice, NotFound)):
        return problem(404, "not found")  # the same words for a missing id and another office's
    if isinstance(exc, Forbidden):
        return problem(403, str(exc))
    if isinstance(exc, Conflict):
        return problem(409, str(exc), kind="conflict")
    if isinstance(exc, FormInvalid):
        # a step's form sits under "data" in the body (views set g.api_form_root); others at the top
        return problem(422, "form data invalid", errors=field_errors(exc.errors, g.get("api_form_root", "")),
                       kind="form-invalid")
    if isinstance(exc, FileTooLarge):
        return problem(413, str(exc))
    status = exc.http_status if exc.http_status in (400, 409, 413, 422) else 400
    return problem(status, str(exc))


def from_http(exc: HTTPException) -> Response:
    code = exc.code or 500
    headers = {}
    if code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lajur"'
    if code == 429 and exc.response is None:
        headers["Retry-After"] = "60"
    return problem(code, exc.description if code not in (500,) else None, headers=headers)


def validation_hook(req, resp, req_validation_error, _instance, model_adapter) -> None:
    """Spectree's `before` hook: turn its request-validation answer into a problem document."""
    if req_validation_error is None or resp is None:
        return
    try:
        raw = model_adapter.validation_errors(req_validation_error)
    except Exception:  # pragma: no cover - an adapter without details
        raw = []
    errors = []
    for e in raw if isinstance(raw, list) else []:
        loc = [str(p) for p in e.get("loc", ())]
        errors.append({"field": ".".join(loc), "pointer": "/" + "/".join(loc), "detail": str(e.get("msg", ""))})
    body = {"type": TYPE_BASE + "request-invalid", "title": TITLES[422], "status": resp.status_code,
            "detail": "the request does not match the API's schema", "instance": req.path, "errors": errors}
    resp.set_data(json.dumps(body))
    resp.mimetype = MEDIA_TYPE


def init_blueprint(bp) -> None:
    @bp.errorhandler(LajurError)
    def engine_error(exc: LajurError):
        return from_engine(exc)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.response is not None and exc.response.mimetype == MEDIA_TYPE:
            return exc.response  # spectree's validation answer, already a problem
        return from_http(exc)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("API request failed: %s %s", request.method, request.path)
        return problem(500, "unexpected error; it was logged")
