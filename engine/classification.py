"""Archive classification codes (Permendagri 83/2022), shipped as data in
engine/data/klasifikasi_arsip.json (source and version in KLASIFIKASI-SOURCE.md beside it).

The clerk picks a code from a searchable list (the step page's datalist and the small
server-side search at /klasifikasi, which works without JavaScript); the engine accepts
only codes of the list (engine/commands.py `validate_form`, for fields with
`"x-lajur-widget": "classification"`)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).resolve().parent / "data" / "klasifikasi_arsip.json"
MAX_QUERY = 100
MAX_RESULTS = 50


class Code(NamedTuple):
    code: str
    name: str


@lru_cache(maxsize=1)
def _table() -> tuple[dict, tuple[Code, ...]]:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    codes = tuple(Code(c["code"], c["name"]) for c in doc["codes"])
    return {"source": doc["source"], "version": doc["version"]}, codes


def all_codes() -> tuple[Code, ...]:
    return _table()[1]


def source() -> dict:
    return _table()[0]


def find(code: str) -> Code | None:
    return next((c for c in all_codes() if c.code == code), None)


def search(query: str, limit: int = MAX_RESULTS) -> list[Code]:
    """Codes whose code starts with the query or whose name contains every word of it."""
    words = (query or "").strip().lower()[:MAX_QUERY].split()
    if not words:
        return list(all_codes())[:limit]
    found = [c for c in all_codes()
             if c.code.startswith(words[0]) and len(words) == 1 or all(w in c.name.lower() for w in words)]
    return found[:limit]
