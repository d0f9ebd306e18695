"""What a reviewer reads: the work submitted before a step, by round, and what changed.

A "round" is one pass through the SOP up to a decision: the first pass is round 1, and each
step sent back (an audit row `task_returned`, engine/rework.py) starts the next. A decision
step (paraf, or a YA/TIDAK choice) shows the content of the latest round first; from the
second round on, each earlier step also lists the fields that changed against the round that
was rejected. Reads only; pure functions over rows the caller read (engine/inbox.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .db import as_utc


def is_decision(step: dict, schema: dict) -> bool:
    """A step that approves or rejects: it records a paraf, or its form asks YA/TIDAK."""
    if step.get("paraf"):
        return True
    for prop in (schema.get("properties") or {}).values():
        if isinstance(prop, dict) and "TIDAK" in (prop.get("enum") or []):
            return True
    return False


@dataclass
class Round:
    no: int
    steps: list = field(default_factory=list)  # completed HumanTask rows, in order
    returned: dict | None = None               # the task_returned data that ended this round


def rounds(history: list, returns: list[tuple[datetime, dict]]) -> list[Round]:
    """Completed steps grouped by round: a step belongs to the round in which it became ready
    (`returns`: (at, data) of each task_returned row of the instance, oldest first)."""
    marks = sorted((as_utc(at), data) for at, data in returns)
    out = [Round(1)]
    for at, data in marks:
        out[-1].returned = data
        out.append(Round(len(out) + 1))
    for task in history:
        ready = as_utc(task.ready_at)
        index = sum(1 for at, _ in marks if at <= ready)
        out[index].steps.append(task)
    return [r for r in out if r.steps or r.returned]


def _label(schema: dict, name: str) -> str:
    prop = (schema.get("properties") or {}).get(name) or {}
    return prop.get("title", name) if isinstance(prop, dict) else name


def _shown(name: str, value) -> bool:
    return not name.startswith("_") and not (name.startswith("paraf_") and isinstance(value, dict) and "user" in value)


def changes(schema: dict, before: dict | None, after: dict | None) -> list[dict]:
    """The fields of a form that differ between two submissions, labelled: added, removed or changed
    (files: which were added and which removed)."""
    before, after = before or {}, after or {}
    out = []
    names = list(dict.fromkeys([*(schema.get("properties") or {}), *before, *after]))
    for name in names:
        old, new = before.get(name), after.get(name)
        if old == new or not _shown(name, old if old is not None else new):
            continue
        prop = (schema.get("properties") or {}).get(name) or {}
        row = {"name": name, "label": _label(schema, name), "old": old, "new": new,
               "kind": "files" if isinstance(prop, dict) and prop.get("x-lajur-widget") == "files" else "value"}
        if row["kind"] == "files":
            row["added"] = [s for s in (new or []) if s not in (old or [])]
            row["removed"] = [s for s in (old or []) if s not in (new or [])]
        out.append(row)
    return out


def previous_of(history: list, task, before_round: Round | None) -> object | None:
    """The same step's completion in an earlier round (the rejected one), if any."""
    if before_round is None:
        return None
    same = [t for t in before_round.steps if t.bpmn_id == task.bpmn_id]
    return same[-1] if same else None
