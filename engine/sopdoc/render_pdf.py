"""The SOP document as PDF: HTML with inline SVG flowchart cells, printed by WeasyPrint.

WeasyPrint needs Pango (Debian `libpango-1.0-0`, `libpangoft2-1.0-0`), which
scripts/setup.sh installs when missing. No resource is fetched while printing: the
document has no external URL and the fetcher refuses any.
"""
from __future__ import annotations

from html import escape

from .flowchart import svg
from .model import SopDocument
from .sheet import (FONT_PT, MARGIN, NO_W, NOTE_W, OUT_W, REQ_W, TEXT_W, TIME_W, Sheet, header_fields,
                    header_lists, note_for)

CSS = f"""
@page {{ size: A4 landscape; margin: {MARGIN}mm; @bottom-right {{ content: "Halaman " counter(page) " dari "
  counter(pages); font: 7pt 'DejaVu Sans'; }} }}
body {{ font-family: 'DejaVu Sans', sans-serif; font-size: {FONT_PT}pt; line-height: 1.3; margin: 0; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
td, th {{ border: 0.3mm solid #000; padding: 1mm; vertical-align: top; overflow: hidden; overflow-wrap: anywhere; }}
th {{ font-weight: bold; text-align: center; vertical-align: middle; background: #eee; }}
.card td.label {{ width: 32mm; font-weight: bold; }}
.card td.office {{ text-align: center; vertical-align: middle; font-weight: bold; font-size: 9pt; }}
.card td.sign {{ height: 24mm; }}
.lists b {{ display: block; margin-bottom: 0.8mm; }}
ol {{ margin: 0; padding-left: 4.5mm; }}
.flow {{ page-break-before: always; }}
.flow thead {{ display: table-header-group; }}
.flow tr {{ page-break-inside: avoid; }}
.flow td.sym {{ padding: 0; }}
.flow td.sym svg {{ display: block; }}
.flow td.c {{ text-align: center; }}
h1 {{ font-size: 10pt; text-align: center; margin: 0 0 3mm 0; }}
"""


def _list(items: list[str]) -> str:
    if len(items) <= 1:
        return escape(items[0]) if items else ""
    return "<ol>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ol>"


def to_html(doc: SopDocument) -> str:
    sheet = Sheet.of(doc)
    office = doc.header.get("office") or {}
    fields = header_fields(doc)
    card = [f'<tr><td class="office" rowspan="{len(fields)}">PEMERINTAH KABUPATEN BANTUL<br>'
            f'{escape((office.get("name") or "").upper())}</td>']
    for i, (label, value) in enumerate(fields):
        cls = ' class="sign"' if label == "Disahkan Oleh" else ""
        card.append(("" if i == 0 else "<tr>") + f'<td class="label">{label}</td><td{cls}>{escape(value)}</td></tr>')
    lists = "".join(f"<tr><td><b>{a}:</b>{_list(ai)}</td><td><b>{b}:</b>{_list(bi)}</td></tr>"
                    for (a, ai), (b, bi) in header_lists(doc))
    n = len(doc.actors)
    cols = "".join(f'<col style="width:{w}mm">' for w in
                   [NO_W, TEXT_W, *[sheet.actor_w] * n, REQ_W, TIME_W, OUT_W, NOTE_W])
    head = (f'<tr><th rowspan="2">No</th><th rowspan="2">Uraian Prosedur</th><th colspan="{n}">Pelaksana</th>'
            f'<th colspan="3">Mutu Baku</th><th rowspan="2">Keterangan</th></tr><tr>'
            + "".join(f"<th>{escape(a)}</th>" for a in doc.actors)
            + "<th>Persyaratan/ Kelengkapan</th><th>Waktu</th><th>Output</th></tr>")
    cells = sheet.cells()
    body = []
    for r, s in enumerate(doc.steps):
        syms = "".join(f'<td class="sym">{svg(cells[(r, c)])}</td>' for c in range(n))
        body.append(f'<tr style="height:{sheet.row_h[r]}mm"><td class="c">{s.no}.</td><td>{escape(s.text)}</td>{syms}'
                    f'<td>{escape(s.requirements)}</td><td class="c">{escape(s.time_text)}</td>'
                    f'<td>{escape(s.output)}</td><td>{escape(note_for(doc, r))}</td></tr>')
    return (f'<!doctype html><html lang="id"><head><meta charset="utf-8"><title>SOP {escape(doc.header.get("name") or "")}'
            f'</title><style>{CSS}</style></head><body>'
            f'<h1>STANDAR OPERASIONAL PROSEDUR</h1><table class="card">{"".join(card)}</table>'
            f'<table class="lists"><col style="width:50%"><col style="width:50%">{lists}</table>'
            f'<table class="flow"><colgroup>{cols}</colgroup><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
            "</body></html>")


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError(f"external resource refused while printing: {url[:80]}")


def html_to_pdf(html: str) -> bytes:
    """Print a self-contained HTML document (every printed form of Lajur goes through here):
    nothing is fetched, so a name or text in the document cannot make the server load a URL."""
    from weasyprint import HTML
    return HTML(string=html, url_fetcher=_no_fetch).write_pdf()


def to_pdf(doc: SopDocument) -> bytes:
    return html_to_pdf(to_html(doc))
