"""The SOP document as DOCX (python-docx), the form offices edit and sign.

Same content and geometry as the PDF. Each flowchart cell is a picture drawn from the same
layout (`flowchart.png`) whose description (alt text) names its symbol ("Simbol kegiatan",
"Simbol keputusan", "Simbol terminator") or "Konektor", so the DOCX reader reads the actor
marks back and the document imports to the same process. Only public python-docx API and
the document's own XML (through `Document.element`) are used.
"""
from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

from .flowchart import png
from .model import ACTIVITY, DECISION, TERMINATOR, SopDocument
from .sheet import (FONT_PT, MARGIN, NO_W, NOTE_W, OUT_W, PAGE_H, PAGE_W, REQ_W, TEXT_W, TIME_W, Sheet,
                    header_fields, header_lists, note_for)

ALT = {ACTIVITY: "Simbol kegiatan", DECISION: "Simbol keputusan", TERMINATOR: "Simbol terminator", None: "Konektor"}


def _text(cell, text: str, bold: bool = False, center: bool = False, bold_first: bool = False) -> None:
    cell.text = ""
    lines = (text or "").split("\n")
    paragraph = cell.paragraphs[0]
    for i, line in enumerate(lines):
        if i:
            paragraph = cell.add_paragraph()
        run = paragraph.add_run(line)
        run.bold = bold or (bold_first and i == 0)
        run.font.size = Pt(FONT_PT)
        if center:
            paragraph.alignment = 1
        paragraph.paragraph_format.space_after = Pt(0)


def _widths(table, widths: list[float]) -> None:
    table.autofit = False
    for column, w in zip(table.columns, widths):
        column.width = Mm(w)
    for row in table.rows:
        for cell, w in zip(row.cells, widths):
            cell.width = Mm(w)


def _numbered(label: str, items: list[str]) -> str:
    if len(items) == 1:
        return f"{label}:\n{items[0]}"
    return f"{label}:\n" + "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))


def _cell_margins(document, left_right_mm: float) -> None:
    """Narrow cell margins on the last table (its tblPr, through the document's XML)."""
    tbl = list(document.element.body.iterchildren(qn("w:tbl")))[-1]
    tbl_pr = tbl.find(qn("w:tblPr"))
    margins = OxmlElement("w:tblCellMar")
    for side in ("top", "left", "bottom", "right"):
        el = OxmlElement(f"w:{side}")
        el.set(qn("w:w"), str(round(left_right_mm * 56.7) if side in ("left", "right") else 0))
        el.set(qn("w:type"), "dxa")
        margins.append(el)
    look = tbl_pr.find(qn("w:tblLook"))   # schema order: tblCellMar comes before tblLook
    if look is not None:
        look.addprevious(margins)
    else:
        tbl_pr.append(margins)


def _repeat_header_rows(document, count: int) -> None:
    """Repeat the last table's first `count` rows on every page (w:tblHeader)."""
    tbl = list(document.element.body.iterchildren(qn("w:tbl")))[-1]
    for tr in tbl.findall(qn("w:tr"))[:count]:
        tr_pr = tr.find(qn("w:trPr"))
        if tr_pr is None:
            tr_pr = OxmlElement("w:trPr")
            tr.insert(1 if tr.find(qn("w:tblPrEx")) is not None else 0, tr_pr)
        tr_pr.append(OxmlElement("w:tblHeader"))


def to_docx(doc: SopDocument) -> bytes:
    sheet = Sheet.of(doc)
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(PAGE_W), Mm(PAGE_H)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(MARGIN))
    style = document.styles["Normal"]
    style.font.name, style.font.size = "DejaVu Sans", Pt(FONT_PT)

    title = document.add_paragraph()
    title.alignment = 1
    run = title.add_run("STANDAR OPERASIONAL PROSEDUR")
    run.bold, run.font.size = True, Pt(10)

    fields = header_fields(doc)
    card = document.add_table(rows=len(fields), cols=3)
    card.style = "Table Grid"
    office = card.cell(0, 0).merge(card.cell(len(fields) - 1, 0))
    _text(office, "PEMERINTAH KABUPATEN BANTUL\n" + ((doc.header.get("office") or {}).get("name") or "").upper(),
          bold=True, center=True)
    for i, (label, value) in enumerate(fields):
        _text(card.cell(i, 1), label, bold=True)
        _text(card.cell(i, 2), value)
        if label == "Disahkan Oleh":
            card.rows[i].height, card.rows[i].height_rule = Mm(24), WD_ROW_HEIGHT_RULE.AT_LEAST
    _widths(card, [120, 32, PAGE_W - 2 * MARGIN - 152])

    lists = document.add_table(rows=0, cols=2)
    lists.style = "Table Grid"
    for (a, ai), (b, bi) in header_lists(doc):
        cells = lists.add_row().cells
        _text(cells[0], _numbered(a, ai), bold_first=True)
        _text(cells[1], _numbered(b, bi), bold_first=True)
    _widths(lists, [(PAGE_W - 2 * MARGIN) / 2] * 2)

    document.add_page_break()
    n = len(doc.actors)
    widths = [NO_W, TEXT_W, *[sheet.actor_w] * n, REQ_W, TIME_W, OUT_W, NOTE_W]
    flow = document.add_table(rows=2 + len(doc.steps), cols=len(widths))
    flow.style = "Table Grid"
    flow.alignment = WD_TABLE_ALIGNMENT.CENTER
    first_actor, req = 2, 2 + n
    for col, label in ((0, "No"), (1, "Uraian Prosedur"), (req + 3, "Keterangan")):
        _text(flow.cell(0, col).merge(flow.cell(1, col)), label, bold=True, center=True)
    _text(flow.cell(0, first_actor).merge(flow.cell(0, first_actor + n - 1)), "Pelaksana", bold=True, center=True)
    _text(flow.cell(0, req).merge(flow.cell(0, req + 2)), "Mutu Baku", bold=True, center=True)
    for i, actor in enumerate(doc.actors):
        _text(flow.cell(1, first_actor + i), actor, bold=True, center=True)
    for i, label in enumerate(("Persyaratan/ Kelengkapan", "Waktu", "Output")):
        _text(flow.cell(1, req + i), label, bold=True, center=True)
    _repeat_header_rows(document, 2)
    cells = sheet.cells()
    alts = []
    for r, s in enumerate(doc.steps):
        row = flow.rows[2 + r]
        row.height, row.height_rule = Mm(sheet.row_h[r]), WD_ROW_HEIGHT_RULE.AT_LEAST
        values = [f"{s.no}.", s.text, *[None] * n, s.requirements, s.time_text, s.output, note_for(doc, r)]
        for c, value in enumerate(values):
            if value is not None:
                _text(row.cells[c], value, center=c in (0, req + 1))
                continue
            drawing = cells[(r, c - first_actor)]
            paragraph = row.cells[c].paragraphs[0]
            paragraph.paragraph_format.space_after = Pt(0)
            paragraph.paragraph_format.line_spacing = 1.0
            run = paragraph.add_run()
            run.font.size = Pt(1)  # the picture sits on the baseline: a tiny font leaves no gap under it
            run.add_picture(io.BytesIO(png(drawing)), width=Mm(sheet.actor_w - 0.4), height=Mm(sheet.row_h[r] - 0.3))
            alts.append(ALT[drawing.symbol])
    _widths(flow, widths)
    _cell_margins(document, 0.2)
    for doc_pr, alt in zip(document.element.body.iter(qn("wp:docPr")), alts):
        doc_pr.set("descr", alt)
        for side in ("distT", "distB", "distL", "distR"):  # no wrap distance: LibreOffice adds 3 mm else
            doc_pr.getparent().set(side, "0")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
