"""The Persyaratan/Kelengkapan checklist of a step: what must be at hand before it is done.

sop.json lists a step's `requirements` (the SOP's own words) and says with
`requirements_required: true` that every item must be ticked before the step completes. The
ticked items are recorded with the completion (the step's stored data and its
`task_completed` audit row, under `_persyaratan`), not only in a draft. A checklist never
repeats the step's form: an item that names a form field (the form already asks for it) is
refused at deploy (`check_no_repeats`), so the page shows each thing once.
"""
from __future__ import annotations

import re

from .errors import DeployError, FormInvalid

KEY = "_persyaratan"


def items(sop_step: dict) -> list[str]:
    return [str(i) for i in sop_step.get("requirements") or []]


def required(sop_step: dict) -> bool:
    return bool(sop_step.get("requirements_required")) and bool(items(sop_step))


def check(sop_step: dict, ticked: list[str] | None) -> list[str] | None:
    """The ticked items to record (in the SOP's order), or None when the step has no checklist.
    Raises FormInvalid when an item is unknown, or the SOP requires all and some are not ticked."""
    listed = items(sop_step)
    if not listed:
        return None
    given = list(ticked or [])
    unknown = [t for t in given if t not in listed]
    if unknown:
        raise FormInvalid({KEY: [f"not a requirement of this step: {unknown[0][:100]!r}"]})
    missing = [i for i in listed if i not in given]
    if required(sop_step) and missing:
        raise FormInvalid({KEY: ["Centang semua persyaratan sebelum menyelesaikan langkah / tick every "
                                 f"requirement first (belum: {', '.join(missing)})"]})
    return [i for i in listed if i in given]


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", (text or "").lower()))


def repeats(requirement: str, titles: list[str]) -> str | None:
    """The form field title a requirement repeats (same words, or one inside the other), if any."""
    req = _words(requirement)
    if not req:
        return None
    for title in titles:
        t = _words(title)
        if t and (req == t or f" {req} " in f" {t} " or (len(t.split()) >= 2 and f" {t} " in f" {req} ")):
            return title
    return None


def check_no_repeats(sop: dict, steps: dict, forms: dict, file: str) -> None:
    """Deploy rule: a checklist item must not repeat a field of its step's form."""
    for bpmn_id, sop_step in (sop.get("steps") or {}).items():
        form = forms.get((steps.get(bpmn_id) or {}).get("form"), {})
        titles = [p.get("title") or name for name, p in (form.get("properties") or {}).items() if isinstance(p, dict)]
        for item in items(sop_step):
            title = repeats(item, titles)
            if title:
                raise DeployError(f"step {bpmn_id!r}: the requirement {item!r} repeats the form field {title!r}; "
                                  "list only what the form does not ask", file=file)
