"""Size and content limits for every text the engine stores, written once.

A text that reaches the database must fit its column and must not carry a NUL byte
(PostgreSQL refuses NUL in text and JSON, and answers with an error the web would turn
into a 500); a JSON document (a step's draft or its submitted data) must stay small
enough that the pages that show it stay small too. Engine services call these checks
before they write, so the web, the CLI and the workers get the same field error
(`FormInvalid`, 422) and nothing is changed.
"""
from __future__ import annotations

import json
from typing import Any

from .errors import FormInvalid

# Characters per stored text (the column's length where there is one).
SUBJECT = 300
REASON = 500
USERNAME = 64
FULL_NAME = 200
EMAIL = 200
WEBHOOK_HANDLE = 200
PASSWORD = 1024       # a password is hashed, not stored; the bound only caps hashing work
FORM_TEXT = 20_000    # one text field of a step's form (the schema may set a lower maxLength)
# Bytes of one JSON document (a step's draft, a step's submitted data), serialized.
DOCUMENT_BYTES = 256 * 1024


def _error(field: str, message: str) -> FormInvalid:
    return FormInvalid({field: [message]})


def text(field: str, value: Any, max_chars: int, required: bool = False) -> str:
    """The stripped text, or a field error: not a string, a NUL byte, too long, or missing."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _error(field, "harus berupa teks / must be text")
    value = value.strip()
    if "\x00" in value:
        raise _error(field, "berisi karakter yang tidak diizinkan / contains a NUL character")
    if len(value) > max_chars:
        raise _error(field, f"terlalu panjang (maks. {max_chars}) / too long (max. {max_chars})")
    if required and not value:
        raise _error(field, "wajib diisi / required")
    return value


def optional_text(field: str, value: Any, max_chars: int) -> str | None:
    """Like text(); an empty value is None."""
    return text(field, value, max_chars) or None


def document(field: str, value: Any, max_bytes: int = DOCUMENT_BYTES) -> Any:
    """A JSON document (draft, step data): bounded in size, no NUL byte in any key or string, no
    NaN or infinity (a 5000-digit number posted to a number field is a float infinity, which
    no JSON column accepts)."""
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise _error(field, "bukan data JSON / not JSON data") from None
    if len(encoded.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _error(field, f"data terlalu besar (maks. {max_bytes // 1024} KB) / too large "
                            f"(max. {max_bytes // 1024} KB)")
    if _has_nul(value):
        raise _error(field, "berisi karakter yang tidak diizinkan / contains a NUL character")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False
