"""Reminder policy of a step: when, relative to its Mutu Baku, and to whom.

A step sets its own policy in the BPMN user task's extension property `reminders`,
a `;`-separated list of levels, each `LEVEL@PERCENT%:RECIPIENT,...`:

    warn@80%:holder; breach@100%:holder,supervisors; repeat@100%:holder,supervisors

`warn` and `breach` fire once at that share of the Mutu Baku (working time); `repeat`
fires every PERCENT of the Mutu Baku after the breach until the step is done.
Recipients: `holder` (whoever holds the task, or the lane's group while unclaimed),
`group` (the lane's group), `supervisors` (the office's supervisors), `lane:NAME`
(the members of another lane's group).
"""
from __future__ import annotations

import re
from datetime import datetime

from .calendar import OfficeCalendar
from .sla import due_of

DEFAULT_POLICY_TEXT = "warn@80%:holder; breach@100%:holder,supervisors; repeat@100%:holder,supervisors"
LEVELS = ("warn", "breach", "repeat")
_LEVEL = re.compile(r"^(?P<level>[a-z]+)@(?P<pct>\d+(?:\.\d+)?)%:(?P<to>.+)$")


def parse_policy(text: str | None) -> list[dict]:
    """Parse a policy; None or blank gives the default. Raise ValueError saying what is wrong."""
    text = (text or "").strip() or DEFAULT_POLICY_TEXT
    levels: list[dict] = []
    seen: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(";"))):
        m = _LEVEL.match(part.replace(" ", ""))
        if not m:
            raise ValueError(f"{part!r} is not LEVEL@PERCENT%:RECIPIENTS")
        level, pct = m["level"], float(m["pct"])
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (use {', '.join(LEVELS)})")
        if level in seen:
            raise ValueError(f"level {level!r} given twice")
        seen.add(level)
        if pct <= 0 or pct > 1000:
            raise ValueError(f"{level}: percentage must be above 0 and at most 1000")
        recipients = [r for r in m["to"].split(",") if r]
        for r in recipients:
            if r not in ("holder", "group", "supervisors") and not (r.startswith("lane:") and len(r) > 5):
                raise ValueError(f"{level}: unknown recipient {r!r}")
        levels.append({"level": level, "at": pct / 100.0, "to": recipients})
    if "repeat" in seen and "breach" not in seen:
        raise ValueError("repeat needs a breach level")
    return levels


def policy_of(step: dict) -> list[dict]:
    """The step's validated policy (stored at deploy), or the default one."""
    return step.get("reminders") or parse_policy(None)


def level_of(policy: list[dict], name: str) -> dict | None:
    return next((p for p in policy if p["level"] == name), None)


def first_deadlines(task_id: int, office_id: int, ready_at: datetime, minutes: float | None, step: dict,
                    calendar: OfficeCalendar) -> list[dict]:
    """The warn and breach deadlines of a step that just became ready, as rows to insert
    (the repeats are added one at a time as they fire)."""
    if not minutes:
        return []
    return [{"human_task_id": task_id, "office_id": office_id, "level": p["level"], "seq": 0,
             "at_fraction": p["at"], "due_at": due_of(calendar, ready_at, minutes, p["at"], 0.0), "status": "pending"}
            for p in policy_of(step) if p["level"] in ("warn", "breach")]


def next_repeat(calendar: OfficeCalendar, ready_at: datetime, minutes: float | None, policy: list[dict], seq: int,
                paused: float, now: datetime) -> tuple[int, float, datetime] | None:
    """The first repeat after `seq` that lies in the future (no catch-up storm after downtime)."""
    breach, repeat = level_of(policy, "breach"), level_of(policy, "repeat")
    if not breach or not repeat:
        return None
    seq += 1
    while True:
        fraction = breach["at"] + seq * repeat["at"]
        due = due_of(calendar, ready_at, minutes, fraction, paused)
        if due > now or seq > 10_000:
            return seq, fraction, due
        seq += 1
