"""What both printers print: the header card's fields and the table's geometry.

A4 landscape. Row heights are computed from the text so the flowchart cells (drawn at a
fixed height) meet the row edges; the estimate is generous (DejaVu Sans 7.5 pt).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from .flowchart import lay_out
from .model import SopDocument

PAGE_W, PAGE_H, MARGIN = 297.0, 210.0, 10.0
FONT_PT = 7.5
_CHAR_MM = FONT_PT * 0.352 * 0.55          # average glyph width of DejaVu Sans
_LINE_MM = FONT_PT * 0.352 * 1.3
MIN_ROW_H = 22.0
MONTHS = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember"]
NO_W, TEXT_W, REQ_W, TIME_W, OUT_W, NOTE_W = 8.0, 52.0, 40.0, 16.0, 36.0, 26.0


def long_date(iso: str | None) -> str:
    if not iso:
        return ""
    d = date.fromisoformat(iso)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def note_for(doc: SopDocument, index: int) -> str:
    """The Keterangan of a row: a decision says where TIDAK goes, from the BPMN."""
    step = doc.steps[index]
    if step.decision and step.decision.tidak_to:
        return f"YA: lanjut ke langkah berikutnya. TIDAK: kembali ke langkah {step.decision.tidak_to}"
    return step.note


def header_fields(doc: SopDocument) -> list[tuple[str, str]]:
    h = doc.header
    return [("Nomor SOP", h.get("number") or ""), ("Tgl. Pembuatan", long_date(h.get("created"))),
            ("Tgl. Revisi", long_date(h.get("revised"))), ("Tgl. Pengesahan", long_date(h.get("approved"))),
            ("Disahkan Oleh", h.get("approved_by") or ""), ("Nama SOP", h.get("name") or "")]


def header_lists(doc: SopDocument) -> list[tuple[tuple[str, list[str]], tuple[str, list[str]]]]:
    h = doc.header
    as_list = lambda v: v if isinstance(v, list) else ([v] if v else [])  # noqa: E731
    return [(("Dasar Hukum", as_list(h.get("legal_basis"))), ("Kualifikasi Pelaksana", as_list(h.get("qualifications")))),
            (("Keterkaitan", as_list(h.get("related_sops"))), ("Peralatan/Perlengkapan", as_list(h.get("equipment")))),
            (("Peringatan", as_list(h.get("warning"))), ("Pencatatan dan Pendataan", as_list(h.get("records"))))]


def _lines(text: str, width: float) -> int:
    per_line = max(4, int((width - 2.0) / _CHAR_MM))
    return sum(max(1, math.ceil(len(part) / per_line)) for part in (text or " ").split("\n"))


@dataclass
class Sheet:
    doc: SopDocument
    actor_w: float
    row_h: list[float]

    @classmethod
    def of(cls, doc: SopDocument) -> "Sheet":
        free = PAGE_W - 2 * MARGIN - (NO_W + TEXT_W + REQ_W + TIME_W + OUT_W + NOTE_W)
        actor_w = max(14.0, min(34.0, free / max(1, len(doc.actors))))
        rows = []
        for i, s in enumerate(doc.steps):
            lines = max(_lines(s.text, TEXT_W), _lines(s.requirements, REQ_W), _lines(s.output, OUT_W),
                        _lines(note_for(doc, i), NOTE_W))
            rows.append(max(MIN_ROW_H, math.ceil(lines * 1.15 * _LINE_MM + 4)))
        return cls(doc, actor_w, rows)

    def cells(self):
        return lay_out(self.doc, self.actor_w, self.row_h)
