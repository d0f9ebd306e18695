"""The step page's reading aids: the work under review by round, what changed, and the clock.

What a reviewer sees (engine/review.py decides rounds and changes), why a step is back
(engine/rework.py's `task_returned` data), and how the Mutu Baku clock reached its due time
(engine/sla.py: working minutes left, the stretches it does not count, pauses). Built from
what `Runtime.task_detail` read; no query of its own.
"""
from __future__ import annotations

from datetime import datetime

from engine import review
from engine.db import as_utc
from engine.sla import off_clock, open_left


def rounds_view(history: list, returns: list, describe, schema_of_step) -> list[dict]:
    """Completed steps by round, each with its rows and, from round 2 on, its changes against
    the same step in the round before (the rejected one)."""
    out = []
    grouped = review.rounds(history, returns)
    for index, rnd in enumerate(grouped):
        before = grouped[index - 1] if index else None
        steps = []
        for task in rnd.steps:
            schema = schema_of_step(task.bpmn_id)
            previous = review.previous_of(history, task, before)
            steps.append({"task": task, "rows": describe(schema, task.data),
                          "changes": review.changes(schema, previous.data, task.data) if previous is not None
                          else None})
        out.append({"no": rnd.no, "steps": steps, "returned": rnd.returned})
    return out


def returned_changes(task, history: list, schema: dict, draft: dict | None) -> list[dict] | None:
    """On a step sent back: what the holder changed so far (their draft) against the rejected
    submission; None when there is no draft yet."""
    rejected = [h for h in history if h.bpmn_id == task.bpmn_id]
    if not rejected or not draft:
        return None
    return review.changes(schema, rejected[-1].data, {k: v for k, v in draft.items() if not k.startswith("_")})


def clock(task, calendar, pauses: list, now: datetime) -> dict:
    """The Mutu Baku clock in working time: minutes left, the due moment, the stretches between
    ready and due it does not count (lunch break, evening, days off) and the pauses."""
    due, ready = as_utc(task.due_at), as_utc(task.ready_at)
    left = open_left(calendar, task.state, due, task.paused_at is not None, now)
    wall = (due - ready).total_seconds() / 60 if due and ready else None
    paused = []
    for p in pauses:
        start, end = as_utc(p.paused_at), as_utc(p.resumed_at)
        paused.append({"at": start, "until": end, "reason": p.reason,
                       "minutes": calendar.working_minutes_between(start, end) if end else None})
    return {"left": left, "due": due, "ready": ready, "wall_minutes": wall,
            "off": [(a, b) for a, b in off_clock(calendar, ready, due)] if due and ready else [],
            "off_minutes": (wall - (task.mutu_baku_minutes or 0) - sum(p["minutes"] or 0 for p in paused))
            if wall is not None else None,
            "pauses": paused}
