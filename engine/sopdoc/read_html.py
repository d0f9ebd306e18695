"""Reader for SOPs saved as HTML (the registry's web view, or "Save as web page").

Tables are expanded over their colspan/rowspan (covered cells are empty and `merged`);
paragraphs and headings outside tables become one-cell rows. A symbol drawn as an image
is read from its alt text (or title), as the DOCX reader reads a picture's description.
"""
from __future__ import annotations

import lxml.html
from lxml import etree

from .model import MAX_CELLS, Cell, symbol_of

_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "div", "li"}


def _inner_html(el) -> str:
    return (el.text or "") + "".join(etree.tostring(c, encoding="unicode", method="html") for c in el)


def _cell_shape(td) -> str | None:
    for node in td.iter("img", "svg", "span", "div"):
        kind = symbol_of(node.get("alt") or node.get("title") or node.get("aria-label") or "")
        if kind:
            return kind
    return None


def _table_rows(table) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    pending: dict[tuple[int, int], Cell] = {}
    for r, tr in enumerate(table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")):
        row: list[Cell] = []
        c = 0
        for td in tr.xpath("./td|./th"):
            while (r, c) in pending:
                row.append(pending.pop((r, c)))
                c += 1
            span = max(1, min(50, int(td.get("colspan", "1") or 1)))
            down = max(1, min(200, int(td.get("rowspan", "1") or 1)))
            row.append(Cell(_inner_html(td), shape=_cell_shape(td)))
            for dc in range(span):
                if dc:
                    row.append(Cell(merged=True))
                for dr in range(1, down):
                    pending[(r + dr, c + dc)] = Cell(merged=True)
            c += span
        while (r, c) in pending:
            row.append(pending.pop((r, c)))
            c += 1
        rows.append(row)
    return rows


def read_html(data: bytes) -> list[list[Cell]]:
    try:
        root = lxml.html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"HTML tidak terbaca: {exc}") from None
    rows: list[list[Cell]] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "table" and not any(a.tag == "table" for a in el.iterancestors()):
            rows.extend(_table_rows(el))
        elif el.tag in _BLOCKS and not any(a.tag in ("table", *_BLOCKS) for a in el.iterancestors()):
            rows.append([Cell(_inner_html(el))])
        if sum(len(r) for r in rows) > MAX_CELLS:
            raise ValueError(f"dokumen terlalu besar (lebih dari {MAX_CELLS} sel)")
    return rows
