"""Reader for SOPs written in Word (DOCX), the usual way offices write them (python-docx).

Paragraphs and tables come in body order. Merged cells are read from the table XML
(`gridSpan`, `vMerge`) so a covered cell is empty, as every reader gives it. An actor mark
may be text ("X", "√") or a drawn shape: a DrawingML shape is read by its preset geometry
(`flowChartDecision`, `rect`, `roundRect` ...), a picture by its description (alt text),
a legacy VML shape by its element or shape type; connectors and lines are not marks.
"""
from __future__ import annotations

import io
import zipfile

from docx import Document
from docx.opc.exceptions import OpcError
from docx.table import _Cell
from lxml import etree

from .model import DECISION, MAX_CELLS, TERMINATOR, ACTIVITY, Cell, symbol_of

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W, "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
      "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
      "v": "urn:schemas-microsoft-com:vml",
      "pic": "http://schemas.openxmlformats.org/drawingml/2006/picture"}
_DESCR = etree.XPath(".//wp:docPr/@descr | .//wp:docPr/@title", namespaces=NS)
# a picture's frame is a prstGeom "rect" too: only drawn shapes count, pictures by their description
_PRST = etree.XPath(".//a:prstGeom[not(ancestor::pic:pic)]/@prst", namespaces=NS)
_VML = etree.XPath(".//v:rect | .//v:roundrect | .//v:oval | .//v:shape", namespaces=NS)
# Word's VML shape types for the flowchart shapes (ShapeType numbers).
_VML_TYPES = {"_x0000_t4": DECISION, "_x0000_t110": DECISION, "_x0000_t116": TERMINATOR,
              "_x0000_t109": ACTIVITY, "_x0000_t176": ACTIVITY}
MAX_UNCOMPRESSED = 50 * 1024 * 1024


def _shape(tc) -> str | None:
    for name in [*_DESCR(tc), *_PRST(tc)]:
        kind = symbol_of(name)
        if kind:
            return kind
    for el in _VML(tc):
        local = etree.QName(el).localname
        if local == "shape":
            kind = _VML_TYPES.get((el.get("type") or "").lstrip("#"))
        else:
            kind = symbol_of(local)
        if kind:
            return kind
    return None


def _table_rows(tbl, parent) -> list[list[Cell]]:
    rows = []
    for tr in tbl.tr_lst:
        row = [Cell(merged=True) for _ in range(tr.grid_before)]
        for tc in tr.tc_lst:
            if tc.vMerge == "continue":
                row.append(Cell(merged=True))
            else:
                row.append(Cell(_Cell(tc, parent).text, shape=_shape(tc)))
            row.extend(Cell(merged=True) for _ in range(tc.grid_span - 1))
        rows.append(row)
    return rows


def read_docx(data: bytes) -> list[list[Cell]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNCOMPRESSED:
                raise ValueError("DOCX terlalu besar setelah dibuka")
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError, OpcError) as exc:
        raise ValueError(f"DOCX tidak terbaca: {exc}") from None
    rows: list[list[Cell]] = []
    for child in document.element.body.iterchildren():
        tag = etree.QName(child).localname
        if tag == "p":
            text = "".join(t.text or "" for t in child.iterfind(f".//{{{W}}}t"))
            if text.strip():
                rows.append([Cell(text)])
        elif tag == "tbl":
            rows.extend(_table_rows(child, document._body))
        if sum(len(r) for r in rows) > MAX_CELLS:
            raise ValueError(f"dokumen terlalu besar (lebih dari {MAX_CELLS} sel)")
    return rows
