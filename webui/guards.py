"""The web edge against hostile input: request size, NUL bytes, oversized ids and parameters.

Every request passes here before its view runs, so a new route is covered without
remembering to add a check:

- A request body is limited per request: an upload post (multipart, only to the views
  in UPLOAD_ENDPOINTS) may carry the evidence files, any other body at most
  LAJUR_MAX_FORM_BYTES. Werkzeug applies MAX_FORM_MEMORY_SIZE to each multipart text
  part only; a urlencoded body is read whole, so without this a 150 MB pause reason was
  parsed, stored and shown to everyone.
- A NUL byte in the path is no page (404); in any query or form value it is refused (PostgreSQL cannot store it and
  answers with an error that would surface as a 500); so is a query value longer than
  any page needs, and a query number past 64 bits (ids, pages and filters are all
  64-bit columns or smaller: `?office=2**70` was a 500 on PostgreSQL).
- `<int:...>` in a route is an id that fits a 64-bit column: a larger number is simply
  no match (404), not a database overflow error.
- `int_arg` reads a bounded integer query parameter (a page number).

The engine checks the texts it stores again (engine.limits): the web refuses early,
the engine is the rule.
"""
from __future__ import annotations

from flask import abort, current_app, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from .errors import render_error

MAX_ID = 2 ** 63 - 1
MAX_QUERY_VALUE = 2048
UPLOAD_ENDPOINTS = frozenset({"tasks.submit", "studio.upload"})


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` limited to a positive 64-bit id (BIGINT), so a huge number is a 404."""

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_converters(app) -> None:
    """Call before any route is added: rules pick their converter when they are added."""
    app.url_map.converters["int"] = BoundedIntConverter


def int_arg(name: str, default: int = 1, low: int = 1, high: int = 100_000) -> int:
    """A query parameter as an int clamped to [low, high]; anything unreadable is the default."""
    raw = request.args.get(name, "")
    if not raw.isdigit():
        return default
    return high if len(raw) > 18 else min(max(int(raw), low), high)


def init_app(app) -> None:
    app.config.setdefault("LAJUR_MAX_FORM_BYTES", 1024 * 1024)

    @app.before_request
    def _guard():
        if "\x00" in request.path:  # no page or key has one (a NUL in a key reached PostgreSQL: 500)
            abort(404)
        if request.mimetype == "multipart/form-data" and request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = current_app.config["MAX_CONTENT_LENGTH"]
        else:
            request.max_content_length = current_app.config["LAJUR_MAX_FORM_BYTES"]
        for name, value in request.args.items(multi=True):
            if "\x00" in name or "\x00" in value or len(value) > MAX_QUERY_VALUE or _past_64_bits(value):
                return _refused(name, 400)
        if request.method in ("POST", "PUT", "PATCH"):
            for name, value in request.form.items(multi=True):
                if "\x00" in name or "\x00" in value:
                    return _refused(name, 422)
            for name, upload in request.files.items(multi=True):
                if "\x00" in (upload.filename or ""):
                    return _refused(name, 422)
        return None


def _past_64_bits(value: str) -> bool:
    """A query number no 64-bit column can hold (every id, page and filter here is one)."""
    digits = value[1:] if value[:1] in "+-" else value
    return digits.isascii() and digits.isdigit() and (len(digits) > 19 or int(digits) > MAX_ID)


def _refused(name: str, status: int):
    if request.path.startswith("/api/"):  # the API answers in problem details (RFC 9457)
        from .api.problems import problem
        return problem(status, f"{name[:64]!r}: a NUL byte, a value that is too long, or a number past 64 bits")
    return render_error(status, title=_("Isian tidak valid"),
                        message=_("Isian %(name)s berisi karakter yang tidak diizinkan atau terlalu panjang.",
                                  name=name.replace("\x00", "")[:64]))
