"""Reading the Permenpan RB 35/2012 layout from cell rows, whatever the file format was.

The rows of a document (every table row, and every paragraph outside a table as a one-cell
row) come in reading order. The header card is label/value cells before the flowchart
table; the table starts at the row holding "Uraian Prosedur", its actor (Pelaksana) columns
are named in the row below, and the Mutu Baku columns are found by their content (the Waktu
column is the one whose cells read as durations), because exports often shift them against
their headings. What is not certain becomes a `Problem`; nothing is guessed.
"""
from __future__ import annotations

import re
from datetime import date

from .model import (ACTIVITY, DECISION, TERMINATOR, Cell, Decision, Problem, SopDocument, Step, clean_text,
                    parse_minutes)

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["januari", "februari", "maret", "april", "mei", "juni", "juli", "agustus", "september", "oktober",
     "november", "desember"])}
_MONTHS.update({"january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "august": 8,
                "october": 10, "december": 12, "agu": 8, "okt": 10, "des": 12, "peb": 2, "pebruari": 2})

# Header card labels (normalised: lower case, single spaces) -> sop.json field.
_LABELS = [
    (r"nomor sop|no\.? sop", "number"),
    (r"(?:tgl\.?|tanggal) pembuatan", "created"),
    (r"(?:tgl\.?|tanggal) revisi", "revised"),
    (r"(?:tgl\.?|tanggal) (?:pengesahan|efektif)", "approved"),
    (r"disahkan oleh", "approved_by"),
    (r"nama sop", "name"),
    (r"dasar hukum", "legal_basis"),
    (r"keterkaitan", "related_sops"),
    (r"peringatan", "warning"),
    (r"kualifikasi pelaksana", "qualifications"),
    (r"peralatan\s*/\s*perlengkapan|peralatan", "equipment"),
    (r"pencatatan dan pendataan|pencatatan", "records"),
]
_LABEL_RE = re.compile(r"^\s*(" + "|".join(f"(?P<f{i}>{p})" for i, (p, _) in enumerate(_LABELS)) + r")\s*:?\s*",
                       re.IGNORECASE)
_LIST_FIELDS = {"legal_basis", "related_sops", "qualifications", "equipment", "records"}
_DATE_FIELDS = {"created", "revised", "approved"}
_DATE_RE = re.compile(r"^\s*(\d{1,2})\s+([A-Za-z]+)\s+(\d{4})|^\s*(\d{4})-(\d{2})-(\d{2})|^\s*(\d{1,2})[-/](\d{1,2})[-/](\d{4})")

_MUTU_WORDS = ("mutu baku", "persyaratan", "kelengkapan", "waktu", "output", "keterangan")
_MARK_TEXT = {"x": ACTIVITY, "v": ACTIVITY, "√": ACTIVITY, "✓": ACTIVITY, "✔": ACTIVITY, "●": ACTIVITY,
              "■": ACTIVITY, "□": ACTIVITY, "▭": ACTIVITY, "*": ACTIVITY,
              "◇": DECISION, "◆": DECISION, "◊": DECISION, "♦": DECISION, "<>": DECISION,
              "mulai": TERMINATOR, "selesai": TERMINATOR, "start": TERMINATOR, "end": TERMINATOR,
              "⬭": TERMINATOR, "○": TERMINATOR, "o": TERMINATOR}
_YA, _TIDAK = re.compile(r"^\s*ya\s*$", re.I), re.compile(r"^\s*tidak\s*$", re.I)
_TIDAK_TARGET = re.compile(
    r"tidak\b[^0-9\n]{0,60}?(?:langkah|no\.?|nomor|kegiatan|prosedur|step)\s*(?:ke\s*)?-?\s*(\d{1,3})", re.I)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def parse_date(text: str) -> str | None:
    """ISO date of "11 November 2024", "2 Januari 2025", "2025-01-02" or "02-01-2025"."""
    m = _DATE_RE.match(text or "")
    if not m:
        return None
    try:
        if m.group(1):
            month = _MONTHS.get(m.group(2).lower())
            return date(int(m.group(3)), month, int(m.group(1))).isoformat() if month else None
        if m.group(4):
            return date(int(m.group(4)), int(m.group(5)), int(m.group(6))).isoformat()
        return date(int(m.group(9)), int(m.group(8)), int(m.group(7))).isoformat()
    except ValueError:
        return None


def split_list(text: str) -> list[str]:
    """Items of a header list: one per line, else per "1." number, else per semicolon."""
    parts = [p for p in text.split("\n") if p.strip()]
    if len(parts) <= 1:
        numbered = re.split(r"(?:^|\s)\d{1,2}[.)]\s+", text)
        parts = [p for p in numbered if p.strip()]
    if len(parts) <= 1:
        parts = text.split(";")
    items = [re.sub(r"^\d{1,2}[.)]\s+", "", p).strip().rstrip(";,.").strip() for p in parts]
    return [i for i in items if i]


def _label_fields(text: str) -> tuple[list[str], str]:
    """The header labels a cell starts with (one cell may hold two) and the text after them."""
    fields, rest = [], text
    while True:
        m = _LABEL_RE.match(rest)
        if not m:
            return fields, rest.strip()
        fields.append(next(_LABELS[i][1] for i in range(len(_LABELS)) if m.group(f"f{i}")))
        rest = rest[m.end():]


def _set_field(header: dict, name: str, value: str, problems: list[Problem]) -> None:
    value = value.strip()
    if name in _LIST_FIELDS:
        header[name] = split_list(value)
    elif name in _DATE_FIELDS:
        header[name] = parse_date(value) if value else None
        if value and header[name] is None:
            problems.append(Problem("header", None, f"tanggal {value!r} ({name}) tidak terbaca"))
    elif name == "number":
        header[name] = re.sub(r"\s*/\s*", "/", value) or None
    else:
        header[name] = re.sub(r"^\d{1,2}[.)]\s+", "", re.sub(r"\s+", " ", value)) or None


def read_header(rows: list[list[Cell]], problems: list[Problem]) -> dict:
    header: dict = {"number": None, "name": None, "created": None, "revised": None, "approved": None,
                    "approved_by": None, "legal_basis": [], "related_sops": [], "warning": None,
                    "qualifications": [], "equipment": [], "records": []}
    for r, row in enumerate(rows):
        i = 0
        while i < len(row):
            fields, rest = _label_fields(row[i].text)
            i += 1
            if not fields:
                continue
            if not rest and i < len(row):       # the value is the next cell
                rest = row[i].text
                i += 1
            elif not rest:                      # a label paragraph: its value is the paragraphs below it
                below = []
                for nxt in rows[r + 1:]:
                    texts = [c.text for c in nxt if c.text.strip()]
                    if len(texts) != 1 or _label_fields(texts[0])[0]:
                        break
                    below.append(texts[0])
                rest = "\n".join(below)
            if len(fields) == 2 and fields[0] in _DATE_FIELDS:  # "Tgl. Pengesahan Disahkan Oleh": date, then who
                m = _DATE_RE.match(rest)
                _set_field(header, fields[0], m.group(0) if m else "", problems)
                _set_field(header, fields[1], rest[m.end():] if m else rest, problems)
            else:
                _set_field(header, fields[-1], rest, problems)
    return header


def _find_table(rows: list[list[Cell]]) -> int | None:
    for i, row in enumerate(rows):
        if any(_norm(c.text).startswith("uraian prosedur") or _norm(c.text) == "uraian kegiatan" for c in row):
            return i
    return None


def _mark(cell: Cell) -> tuple[str | None, str | None, bool]:
    """(symbol kind, YA/TIDAK label, unreadable) of one actor cell."""
    if cell.shape:
        return cell.shape, None, False
    text = _norm(cell.text)
    if not text:
        return None, None, False
    if _YA.match(text):
        return None, "YA", False
    if _TIDAK.match(text):
        return None, "TIDAK", False
    if text in _MARK_TEXT:
        return _MARK_TEXT[text], None, False
    return None, None, True


def _step_number(row: list[Cell], text_col: int) -> tuple[int | None, str]:
    text = row[text_col].text if text_col < len(row) else ""
    if 0 < text_col <= len(row):
        m = re.fullmatch(r"\s*(\d{1,3})\s*\.?\s*", row[text_col - 1].text)
        if m:
            return int(m.group(1)), text
    m = re.match(r"\s*(\d{1,3})\s*[.)]?\s+(\S.*)", text, re.S)
    if m:
        return int(m.group(1)), m.group(2)
    return None, text


def read_layout(rows: list[list[Cell]]) -> SopDocument:
    """The SOP document in `rows`, with the problems found on the way."""
    problems: list[Problem] = []
    for row in rows:
        for cell in row:
            cell.text = clean_text(cell.text)
    top = _find_table(rows)
    if top is None:
        raise ValueError("tabel SOP tidak ditemukan: tidak ada kolom 'Uraian Prosedur'")
    head, sub = rows[top], rows[top + 1] if top + 1 < len(rows) else []
    width = max(len(head), len(sub))
    text_col = next(i for i, c in enumerate(head) if _norm(c.text).startswith("uraian"))
    pel_col = next((i for i, c in enumerate(head) if _norm(c.text).startswith("pelaksana")), text_col + 1)
    mutu_col = next((i for i in range(pel_col + 1, width)
                     if any(_norm(r[i].text).startswith(_MUTU_WORDS) for r in (head, sub) if i < len(r))), width)
    actor_cols = [i for i in range(pel_col, mutu_col) if i < len(sub) and sub[i].text.strip()]
    if not actor_cols:
        raise ValueError("kolom Pelaksana tidak berisi nama pelaksana")
    actors = [re.sub(r"\s+", " ", sub[i].text) for i in actor_cols]

    body, end = [], top + 2
    for end in range(top + 2, len(rows)):
        row = rows[end]
        texts = [c.text for c in row if c.text.strip()]
        if texts and all(re.fullmatch(r"\(?\d{1,2}\)?", t.strip()) for t in texts) and len(texts) > 2:
            continue  # a row of column numbers under the heading
        no, text = _step_number(row, text_col)
        if no is None or not text.strip():
            break
        body.append((no, text, row))
    else:
        end = len(rows)
    if not body:
        raise ValueError("tabel SOP tidak berisi langkah bernomor")
    if len({no for no, _, _ in body}) != len(body):
        raise ValueError(f"nomor langkah ganda: {[no for no, _, _ in body]}")

    value_cols = range(actor_cols[-1] + 1, max(len(r) for _, _, r in body))
    hits = {c: sum(1 for _, _, r in body if c < len(r) and parse_minutes(r[c].text) is not None) for c in value_cols}
    time_col = max(hits, key=lambda c: (hits[c], -c)) if hits and max(hits.values()) > 0 else None
    if time_col is None:
        time_col = next((i for i in value_cols if i < len(sub) and _norm(sub[i].text).startswith("waktu")), None)
    col = lambda r, c: r[c].text.strip() if c is not None and c < len(r) else ""  # noqa: E731
    req_col = time_col - 1 if time_col is not None and time_col - 1 > actor_cols[-1] else None
    out_col = time_col + 1 if time_col is not None else None
    note_col = time_col + 2 if time_col is not None else None

    numbers = [no for no, _, _ in body]
    steps = []
    for no, text, row in body:
        marks, labels, unreadable = [], [], []
        for name, c in zip(actors, actor_cols):
            kind, label, bad = _mark(row[c] if c < len(row) else Cell())
            if kind:
                marks.append((name, kind))
            if label:
                labels.append((name, label))
            if bad:
                unreadable.append(name)
        step = Step(no=no, text=re.sub(r"\s+", " ", text).strip(), actor=None, requirements=col(row, req_col),
                    time_text=col(row, time_col), output=col(row, out_col), note=col(row, note_col))
        step.minutes = parse_minutes(step.time_text)
        if step.minutes is None:
            problems.append(Problem("minutes", no, f"waktu {step.time_text!r} tidak terbaca sebagai durasi"))
        if unreadable:
            problems.append(Problem("actor", no, "isi kolom Pelaksana tidak dikenal sebagai simbol: "
                                    + ", ".join(unreadable)))
        if len(marks) == 1:
            step.actor = marks[0][0]
        elif not marks and not unreadable:
            where = "; label " + ", ".join(f"{lab} di kolom {a}" for a, lab in labels) if labels else ""
            problems.append(Problem("actor", no, f"tidak ada tanda simbol di kolom Pelaksana mana pun{where}"))
        elif len(marks) > 1:
            problems.append(Problem("actor", no, "tanda simbol di lebih dari satu kolom Pelaksana: "
                                    + ", ".join(a for a, _ in marks)))
        label_kinds = {lab for _, lab in labels}
        target = _TIDAK_TARGET.search(" \n".join(c.text for c in row))
        if any(k == DECISION for _, k in marks) or label_kinds == {"YA", "TIDAK"} or target:
            step.decision = Decision()
            if target and int(target.group(1)) in numbers and int(target.group(1)) != no:
                step.decision.tidak_to = int(target.group(1))
            else:
                tidak_in = [a for a, lab in labels if lab == "TIDAK"]
                hint = f" (label TIDAK ada di kolom {', '.join(tidak_in)})" if tidak_in else ""
                problems.append(Problem("decision", no, f"keputusan YA/TIDAK: langkah tujuan TIDAK tidak jelas{hint}"))
            if no == numbers[-1]:
                problems.append(Problem("decision", no, "keputusan pada langkah terakhir: tujuan YA tidak ada"))
        steps.append(step)

    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(Problem("table", None, f"nomor langkah tidak berurutan: {numbers}"))
    loose = [c.text.strip().upper() for r in rows[end:] for c in r if _YA.match(c.text) or _TIDAK.match(c.text)]
    if loose:
        problems.append(Problem("decision", None, f"label {'/'.join(dict.fromkeys(loose))} ada di luar baris "
                                "langkah: langkah keputusan dan tujuan TIDAK tidak jelas"))
    header = read_header(rows[:top] + rows[end:], problems)
    return SopDocument(header=header, actors=actors, steps=steps, problems=problems)
