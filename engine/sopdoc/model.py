"""The common table model every reader produces and every writer consumes.

Readers only turn a file into `Grid`s of `Cell`s (merged cells keep their text in the
top-left cell, the others are empty); `layout` interprets the grids. Keeping the format
details out of the interpretation means one reading of the Permenpan layout for all formats.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..calendar import WORKING_DAY_MINUTES

# Kinds of flowchart symbol a cell can hold (Permenpan RB 35/2012 SOP symbols).
TERMINATOR, ACTIVITY, DECISION = "terminator", "activity", "decision"
SYMBOLS = (TERMINATOR, ACTIVITY, DECISION)

MAX_CELLS = 20_000       # a document with more cells than this is not an SOP table
MAX_CELL_CHARS = 10_000  # longer cell text is cut (and never reaches a form title whole)


@dataclass
class Cell:
    text: str = ""
    shape: str | None = None  # one of SYMBOLS when the cell holds a drawn symbol
    merged: bool = False      # covered by a merged cell whose text sits elsewhere


Grid = list[list[Cell]]


@dataclass
class Decision:
    """A YA/TIDAK row: YA goes on to the next step, TIDAK to `tidak_to` (a step number)."""

    tidak_to: int | None = None


@dataclass
class Step:
    no: int
    text: str
    actor: str | None
    requirements: str = ""
    time_text: str = ""
    minutes: int | None = None
    output: str = ""
    note: str = ""
    decision: Decision | None = None


@dataclass
class Problem:
    """Something the importer could not read for sure; the draft leaves it for a person."""

    kind: str        # actor | decision | minutes | table
    step: int | None
    message: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step, "message": self.message}

    def __str__(self) -> str:
        where = f"langkah {self.step}: " if self.step is not None else ""
        return f"[{self.kind}] {where}{self.message}"


@dataclass
class SopDocument:
    header: dict                     # sop.json header card fields
    actors: list[str]                # actor (Pelaksana) columns, left to right
    steps: list[Step]
    problems: list[Problem] = field(default_factory=list)


_UNITS = [
    (re.compile(r"^(hari\s*kerja|hari|hr|days?|d)$"), WORKING_DAY_MINUTES),
    (re.compile(r"^(jam|j|hours?|hrs?|h)$"), 60),
    (re.compile(r"^(menit|mnt|mins?|minutes?|m|')$"), 1),
    (re.compile(r"^(detik|dtk|seconds?|secs?|s|\")$"), 1 / 60),
]
_AMOUNT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(x\s*(\d+)\s*)?([a-z']+|\")?", re.IGNORECASE)


def parse_minutes(text: str) -> int | None:
    """Working minutes of a Mutu Baku time text, or None when it is not a duration.

    Reads "120 menit", "2 jam", "1 hari" (one working day, 450 minutes), "15'", "1,5 jam",
    "1 jam 30 menit", "2 x 24 jam" (two working days, as the regency reads it). Text with
    anything else in it (a range "10-15 menit", a word like "sesuai kebutuhan") is not read.
    """
    raw = (text or "").strip().lower().replace("’", "'").replace("`", "'")
    if not raw or len(raw) > 60:
        return None
    if re.search(r"\d\s*[-–]\s*\d", raw):
        return None
    total, pos = 0.0, 0
    for match in _AMOUNT.finditer(raw):
        if raw[pos:match.start()].strip(" ,;dan"):
            return None
        amount = float(match.group(1).replace(",", "."))
        times, unit = match.group(3), (match.group(4) or "").strip()
        if times is not None:            # "2 x 24 jam": 24 jam is a working day
            if unit in ("jam", "j", "h") and times == "24":
                amount, unit = amount, "hari"
            else:
                amount *= float(times)
        factor = next((f for pattern, f in _UNITS if pattern.match(unit)), None) if unit else None
        if factor is None:
            return None
        total += amount * factor
        pos = match.end()
    if pos == 0 or raw[pos:].strip(" .") or total <= 0:
        return None
    return max(1, math.ceil(total - 1e-9))


def minutes_text(minutes: int) -> str:
    """The Waktu column text for a Mutu Baku, as SOPs write it."""
    if minutes % WORKING_DAY_MINUTES == 0:
        return f"{minutes // WORKING_DAY_MINUTES} hari"
    return f"{minutes} menit"


_BLOCK_TAGS = re.compile(r"<\s*(/p|br\s*/?|/li|li|/div|/tr|/h\d)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def clean_text(raw: str) -> str:
    """Plain text of a cell that may hold HTML left over from an export.

    Block ends (`</p>`, `<li>`, `<br>`) become line breaks, other tags vanish, entities are
    decoded, markdown bold markers and runs of spaces go; line breaks stay (they separate
    list items in the header card).
    """
    import html
    text = _BLOCK_TAGS.sub("\n", raw or "")
    text = html.unescape(_TAG.sub("", text)).replace("\xa0", " ").replace("**", "")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line)
    text = re.sub(r" ([.,;:])(?=\s|$)", r"\1", text)
    return text[:MAX_CELL_CHARS]


_SYMBOL_NAMES = [
    (DECISION, ("flowchartdecision", "diamond", "keputusan", "decision", "belah ketupat")),
    (TERMINATOR, ("flowchartterminator", "roundrect", "roundrectangle", "ellipse", "oval", "terminator", "mulai",
                  "selesai", "kapsul")),
    (ACTIVITY, ("flowchartprocess", "flowchartalternateprocess", "rect", "rectangle", "kegiatan", "aktivitas",
                "proses", "activity")),
]


def symbol_of(name: str) -> str | None:
    """The SOP symbol a drawn shape stands for, from its geometry name or alt text.

    Connectors, lines and arrows give None: they are not marks of an actor.
    """
    words = re.sub(r"[^a-z ]", " ", (name or "").lower()).split()
    key = "".join(words)
    if not key or any(w in ("line", "connector", "konektor", "garis", "arrow", "panah") for w in words) \
            or "connector" in key:
        return None
    for kind, names in _SYMBOL_NAMES:
        if key in names or any(w in names for w in words):
            return kind
    return None
