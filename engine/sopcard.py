"""sop.json: the SOP's header card and step texts, checked against its shipped JSON Schema.

sop.json holds only what BPMN cannot (engine/schemas/sop.schema.json says every field);
lanes, steps, their order, Mutu Baku and flow are the BPMN's. Its steps must be exactly
the BPMN's user tasks.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

from .errors import DeployError

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "sop.schema.json"


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")), format_checker=FormatChecker())


def _line_of_key(text: str, key: str) -> int | str:
    needle = json.dumps(key, ensure_ascii=False)
    for no, line in enumerate(text.splitlines(), 1):
        if needle + ":" in line.replace('" :', '":'):
            return no
    return ""


def check_card(sop: dict, text: str, file: str) -> None:
    """Refuse a sop.json that does not match the schema, naming the field and its line."""
    errors = sorted(_validator().iter_errors(sop), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        key = str(err.absolute_path[-1]) if err.absolute_path else ""
        message = err.message
        if err.validator == "additionalProperties":
            message = (f"{err.message}; sop.json holds only the SOP card and step texts "
                       "(actors, order and Mutu Baku come from the BPMN)")
        raise DeployError(f"field {path}: {message}", file=file, line=_line_of_key(text, key) if key else "")


def check_steps_match(sop: dict, user_tasks: list[str], text: str, file: str) -> None:
    """sop.json describes exactly the BPMN's user tasks."""
    described = set(sop.get("steps", {}))
    extra = sorted(described - set(user_tasks))
    if extra:
        raise DeployError(f"step {extra[0]!r} is described but the BPMN has no user task with that id "
                          f"(user tasks: {', '.join(user_tasks)})", file=file, line=_line_of_key(text, extra[0]))
    missing = [t for t in user_tasks if t not in described]
    if missing:
        raise DeployError(f"user task {missing[0]!r} of the BPMN has no entry under \"steps\" "
                          "(each step needs at least its \"text\")", file=file, line=_line_of_key(text, "steps"))


def office_code(sop: dict) -> str:
    office = sop["office"]
    return office["code"] if isinstance(office, dict) else office
