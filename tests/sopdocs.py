"""SOP documents in the Permenpan RB 35/2012 layout, built the ways offices write them.

A test SOP: "Pelayanan Surat Masuk" of a fictional office, three actors, five steps, a
decision at step 3 whose TIDAK goes back to step 2. Builders write it as DOCX (marks as text
or as drawn shapes, DrawingML or legacy VML), XLSX (marks as text or filled cells) and HTML.
"""
from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from pathlib import Path

from docx import Document
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from openpyxl import Workbook
from openpyxl.styles import PatternFill

from engine.config import Settings
from engine.services import Services
from engine.sopdoc.deployed import document_from_bpmn, find_version

ROOT = Path(__file__).resolve().parent.parent
LAJUR = [sys.executable, "-m", "engine.cli"]

ACTORS = ["Kepala Dinas", "Sekretaris", "Pengadministrasi Umum"]
HEADER = [("Nomor SOP", "045/SOP/DISKOMINFO/2025"), ("Tanggal Pembuatan", "5 Maret 2025"),
          ("Tanggal Revisi", ""), ("Tanggal Pengesahan", "10 Maret 2025"),
          ("Disahkan Oleh", "Kepala Dinas, Drs. Budi Santoso, NIP. 197001011990031001"),
          ("Nama SOP", "Pelayanan Surat Masuk")]
LISTS = [("Dasar Hukum", ["Permenpan RB No. 35 Tahun 2012", "Perbup Bantul No. 51 Tahun 2012"]),
         ("Kualifikasi Pelaksana", ["Memahami tata naskah dinas"]),
         ("Keterkaitan", ["SOP Surat Keluar"]), ("Peralatan/Perlengkapan", ["Komputer", "Buku Agenda"]),
         ("Peringatan", ["Surat tidak diagendakan, surat dapat hilang."]), ("Pencatatan dan Pendataan", ["Buku Agenda"])]
# (text, actor column, symbol, Waktu as written, Persyaratan, Output, Keterangan)
STEPS = [
    ("Menerima surat masuk dan mencatat di Buku Agenda", 2, "terminator", "2 jam", "Surat masuk", "Surat tercatat", ""),
    ("Mengajukan surat kepada Sekretaris", 2, "activity", "15'", "Surat tercatat", "Lembar disposisi", ""),
    ("Memeriksa surat dan lembar disposisi", 1, "decision", "1 hari", "Lembar disposisi", "Surat diperiksa",
     "Tidak: kembali ke langkah 2"),
    ("Memberi disposisi", 0, "activity", "30 mnt", "Surat diperiksa", "Disposisi Kepala Dinas", ""),
    ("Mengarsipkan surat", 2, "terminator", "1 jam 30 menit", "Disposisi", "Surat diarsipkan", ""),
]
MINUTES = [120, 15, 450, 30, 90]

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_SHAPE = ('<w:r xmlns:w="{w}" xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
          'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
          'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><w:drawing>'
          '<wp:anchor distT="0" distB="0" distL="0" distR="0" simplePos="0" relativeHeight="1" behindDoc="0" '
          'locked="0" layoutInCell="1" allowOverlap="1"><wp:simplePos x="0" y="0"/>'
          '<wp:positionH relativeFrom="column"><wp:posOffset>0</wp:posOffset></wp:positionH>'
          '<wp:positionV relativeFrom="paragraph"><wp:posOffset>0</wp:posOffset></wp:positionV>'
          '<wp:extent cx="720000" cy="360000"/><wp:wrapNone/><wp:docPr id="{id}" name="Shape {id}"/>'
          '<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
          '<wps:wsp><wps:cNvSpPr/><wps:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="720000" cy="360000"/></a:xfrm>'
          '<a:prstGeom prst="{prst}"><a:avLst/></a:prstGeom></wps:spPr><wps:bodyPr/></wps:wsp>'
          '</a:graphicData></a:graphic></wp:anchor></w:drawing></w:r>')
_VML = ('<w:r xmlns:w="{w}" xmlns:v="urn:schemas-microsoft-com:vml"><w:pict>'
        '<v:shape id="s{id}" type="#{type}" style="width:40pt;height:20pt"/></w:pict></w:r>')
PRST = {"terminator": "flowChartTerminator", "activity": "rect", "decision": "flowChartDecision"}
VML_TYPE = {"terminator": "_x0000_t116", "activity": "_x0000_t109", "decision": "_x0000_t4"}
TEXT_MARK = {"terminator": "X", "activity": "X", "decision": "◇"}


def build_docx(steps=STEPS, marks: str = "text", numbers_row: bool = False) -> bytes:
    """The SOP as Word writes it: title, header card table, lists, then the flowchart table
    with merged heading cells. `marks`: "text", "shapes" (DrawingML, with connector lines in
    the columns between) or "vml" (legacy shapes)."""
    document = Document()
    document.add_paragraph("PEMERINTAH KABUPATEN BANTUL")
    card = document.add_table(rows=len(HEADER), cols=3)
    logo = card.cell(0, 0).merge(card.cell(len(HEADER) - 1, 0))
    logo.text = "DINAS KOMUNIKASI DAN INFORMATIKA"
    for i, (label, value) in enumerate(HEADER):
        card.cell(i, 1).text, card.cell(i, 2).text = label, value
    lists = document.add_table(rows=3, cols=2)
    for i, (label, items) in enumerate(LISTS):
        lists.cell(i // 2, i % 2).text = f"{label}:\n" + "\n".join(f"{n}. {x}" for n, x in enumerate(items, 1))

    n = len(ACTORS)
    cols = 2 + n + 4
    extra = 1 if numbers_row else 0
    table = document.add_table(rows=2 + extra + len(steps), cols=cols)
    table.cell(0, 0).merge(table.cell(1, 0)).text = "No"
    table.cell(0, 1).merge(table.cell(1, 1)).text = "Uraian Prosedur"
    table.cell(0, 2).merge(table.cell(0, 1 + n)).text = "Pelaksana"
    table.cell(0, 2 + n).merge(table.cell(0, 4 + n)).text = "Mutu Baku"
    table.cell(0, 5 + n).merge(table.cell(1, 5 + n)).text = "Keterangan"
    for i, actor in enumerate(ACTORS):
        table.cell(1, 2 + i).text = actor
    for i, label in enumerate(["Persyaratan/ Kelengkapan", "Waktu", "Output"]):
        table.cell(1, 2 + n + i).text = label
    if numbers_row:
        for c in range(cols):
            table.cell(2, c).text = str(c + 1)
    shapes = []
    for r, (text, actor, kind, time, req, out, note) in enumerate(steps):
        row = 2 + extra + r
        table.cell(row, 0).text = f"{r + 1}."
        table.cell(row, 1).text = text
        for c, value in enumerate([req, time, out, note]):
            table.cell(row, 2 + n + c).text = value
        if actor is None:
            continue
        for a in (actor if isinstance(actor, list) else [actor]):
            if marks == "text":
                table.cell(row, 2 + a).text = TEXT_MARK[kind]
            else:
                shapes.append((row, 2 + a, kind))
        if marks == "shapes" and r > 0 and isinstance(steps[r - 1][1], int) and isinstance(actor, int):
            prev = steps[r - 1][1]
            for c in range(min(prev, actor) + 1, max(prev, actor)):
                shapes.append((row, 2 + c, "connector"))
    body_tables = list(document.element.body.iterchildren(qn("w:tbl")))
    flow_rows = body_tables[-1].findall(qn("w:tr"))
    for i, (row, col, kind) in enumerate(shapes):
        tc = flow_rows[row].findall(qn("w:tc"))[col]
        if marks == "vml":
            xml = _VML.format(w=W, id=100 + i, type=VML_TYPE[kind])
        else:
            xml = _SHAPE.format(w=W, id=100 + i, prst="straightConnector1" if kind == "connector" else PRST[kind])
        tc.find(qn("w:p")).append(parse_xml(xml))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def build_xlsx(steps=STEPS, marks: str = "text") -> bytes:
    """The SOP as an Excel sheet: merged heading cells; marks as "√"/"◇" or as filled cells."""
    book = Workbook()
    ws = book.active
    ws.title = "SOP"
    ws.append(["PEMERINTAH KABUPATEN BANTUL"])
    for label, value in HEADER:
        ws.append([label, value])
    for label, items in LISTS:
        ws.append([label, "; ".join(items)])
    ws.append([])
    n = len(ACTORS)
    ws.append(["No", "Uraian Prosedur", "Pelaksana", *[None] * (n - 1), "Mutu Baku", None, None, "Keterangan"])
    top = ws.max_row
    ws.append([None, None, *ACTORS, "Persyaratan/Kelengkapan", "Waktu", "Output", None])
    ws.merge_cells(start_row=top, start_column=1, end_row=top + 1, end_column=1)
    ws.merge_cells(start_row=top, start_column=2, end_row=top + 1, end_column=2)
    ws.merge_cells(start_row=top, start_column=3, end_row=top, end_column=2 + n)
    ws.merge_cells(start_row=top, start_column=3 + n, end_row=top, end_column=5 + n)
    fill = PatternFill("solid", fgColor="FF9BC2E6")
    for r, (text, actor, kind, time, req, out, note) in enumerate(steps):
        ws.append([r + 1, text, *[None] * n, req, time, out, note])
        if actor is None:
            continue
        cell = ws.cell(row=ws.max_row, column=3 + actor)
        if marks == "text":
            cell.value = "◇" if kind == "decision" else "√"
        else:
            cell.fill = fill
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def build_html(steps=STEPS) -> bytes:
    """The SOP as the registry's web page: rowspan/colspan headings, symbols as images."""
    n = len(ACTORS)
    rows = "".join(f"<tr><td>{label}</td><td>{value}</td></tr>" for label, value in HEADER)
    body = []
    for r, (text, actor, kind, time, req, out, note) in enumerate(steps):
        cells = "".join(f'<td><img src="data:," alt="simbol {"keputusan" if kind == "decision" else "kegiatan"}"></td>'
                        if a == actor else "<td></td>" for a in range(n))
        body.append(f"<tr><td>{r + 1}</td><td>{text}</td>{cells}<td>{req}</td><td>{time}</td><td>{out}</td>"
                    f"<td>{note}</td></tr>")
    return (f"<html><body><h1>PEMERINTAH KABUPATEN BANTUL</h1><table>{rows}</table>"
            + "".join(f"<p>{label}:</p><ol>{''.join(f'<li>{i}</li>' for i in items)}</ol>" for label, items in LISTS)
            + f'<table><tr><th rowspan="2">No</th><th rowspan="2">Uraian Prosedur</th><th colspan="{n}">Pelaksana'
            f'</th><th colspan="3">Mutu Baku</th><th rowspan="2">Keterangan</th></tr><tr>'
            + "".join(f"<th>{a}</th>" for a in ACTORS)
            + "<th>Persyaratan/ Kelengkapan</th><th>Waktu</th><th>Output</th></tr>" + "".join(body)
            + "</table></body></html>").encode()


@contextmanager
def cli_services(tmp_path):
    """Services over the database of the `run` fixture (tests/test_cli.py): tmp_path/data."""
    data = tmp_path / "data"
    settings = Settings(database_url=f"sqlite:///{data / 'lajur.sqlite3'}",
                        broker_url=f"sqla+sqlite:///{data / 'broker.sqlite3'}", data_dir=data,
                        base_url="http://127.0.0.1:5000")
    services = Services.from_settings(settings)
    try:
        yield services
    finally:
        services.dispose()


def deployed_document(tmp_path, key, version) -> dict:
    """The SOP document of a deployed version, as plain data to compare."""
    with cli_services(tmp_path) as services, services.sessions() as session:
        v = find_version(session, key, version)
        d = document_from_bpmn(v.bpmn_xml, v.sop)
        return {"actors": d.actors, "lanes": sorted({st["lane"] for st in v.steps.values()}), "header": d.header,
                "steps": [(x.no, x.text, x.actor, x.minutes, x.requirements, x.output,
                           x.decision.tidak_to if x.decision else None) for x in d.steps]}
