"""Importing an SOP document as a draft process folder.

The draft is a process folder as README's "How a process folder is written" describes, plus
`problems.json`: what the importer could not read for sure. Those problems are left open in
the draft itself (a step in no lane, a step without a timer, a TIDAK branch ending at
"TIDAK: tujuan belum ditentukan"), so deploy validation refuses the first two until a person
has resolved them, and the third stays visible in the diagram.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from .bpmn_writer import decision_field, write_bpmn
from .layout import read_layout
from .model import SopDocument

MAX_FILE_BYTES = 10 * 1024 * 1024
PROBLEMS_FILE = "problems.json"
FORMATS = {".docx": "docx", ".xlsx": "xlsx", ".xlsm": "xlsx", ".html": "html", ".htm": "html", ".txt": "text"}


def slug(text: str, sep: str = "-") -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", sep, ascii_text.lower()).strip(sep)


def read_document(path: Path) -> SopDocument:
    """Read an SOP file (by its extension) into the common model; ValueError when unreadable."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"format berkas {path.suffix or '(tanpa ekstensi)'} tidak didukung: "
                         f"gunakan {', '.join(sorted(FORMATS))}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"berkas lebih besar dari {MAX_FILE_BYTES // (1024 * 1024)} MB")
    data = path.read_bytes()
    if fmt == "docx":
        from .read_docx import read_docx as reader
    elif fmt == "xlsx":
        from .read_xlsx import read_xlsx as reader
    elif fmt == "html":
        from .read_html import read_html as reader
    else:
        from .read_text import read_text as reader
    return read_layout(reader(data))


def form_schema(sid: str, step) -> dict:
    """A form skeleton for one step from its Persyaratan and Output text, to be refined."""
    props: dict = {}
    required = []
    if step.requirements:
        props[f"{sid}_persyaratan_lengkap"] = {
            "type": "boolean", "title": "Persyaratan/kelengkapan sudah lengkap", "const": True,
            "description": step.requirements}
        required.append(f"{sid}_persyaratan_lengkap")
    if step.decision:
        props[decision_field(sid)] = {"type": "string", "title": "Keputusan", "enum": ["YA", "TIDAK"]}
        props[f"{sid}_alasan"] = {"type": "string", "title": "Alasan bila TIDAK", "maxLength": 10000,
                                  "x-lajur-widget": "textarea"}
        required.append(decision_field(sid))
    props[f"{sid}_output"] = {"type": "string", "title": "Output", "minLength": 1, "maxLength": 10000,
                              "description": step.output or "Hasil langkah ini", "x-lajur-widget": "textarea"}
    required.append(f"{sid}_output")
    props[f"{sid}_bukti"] = {"type": "array", "title": "Bukti output (berkas)",
                             "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                             "uniqueItems": True, "x-lajur-widget": "files"}
    description = "; ".join(filter(None, [f"Persyaratan: {step.requirements}" if step.requirements else "",
                                          f"Output: {step.output}" if step.output else ""]))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": step.text[:200],
            "description": description, "type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def sop_card(doc: SopDocument, key: str, process_id: str, office_code: str, office_name: str) -> dict:
    card = {"key": key, "process_id": process_id, "office": {"code": office_code, "name": office_name}}
    card.update(doc.header)
    card["name"] = doc.header.get("name") or key
    card["supervisor_lanes"] = []
    card["steps"] = {}
    for s in doc.steps:
        # the step's number, actor (lane) and Mutu Baku are the BPMN's (one source for each fact)
        entry = {"text": s.text, "requirements_text": s.requirements,
                 "requirements": [s.requirements] if s.requirements else [], "output": s.output}
        if s.note:
            entry["note"] = s.note
        card["steps"][f"step{s.no}"] = entry
    return card


def write_draft(doc: SopDocument, out: Path, office_code: str, office_name: str, key: str | None = None) -> Path:
    """Write `doc` as a draft process folder in `out` (new or empty); return the folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"folder tujuan {out} sudah ada dan tidak kosong")
    key = key or f"{office_code}-{slug(doc.header.get('name') or 'sop')}"[:60].strip("-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,79}", key):
        raise ValueError(f"kunci proses {key!r} tidak sah: huruf kecil, angka dan '-'")
    process_id = "sop_" + key.replace("-", "_")
    (out / "forms").mkdir(parents=True, exist_ok=True)
    (out / "process.bpmn").write_text(write_bpmn(doc, process_id, office_name), encoding="utf-8")
    dump = lambda obj: json.dumps(obj, indent=2, ensure_ascii=False) + "\n"  # noqa: E731
    (out / "sop.json").write_text(dump(sop_card(doc, key, process_id, office_code, office_name)), encoding="utf-8")
    for s in doc.steps:
        (out / "forms" / f"step{s.no}.schema.json").write_text(dump(form_schema(f"step{s.no}", s)), encoding="utf-8")
    (out / PROBLEMS_FILE).write_text(dump([p.as_dict() for p in doc.problems]), encoding="utf-8")
    return out


def import_sop(path: Path, out: Path, office_code: str, office_name: str, key: str | None = None) -> SopDocument:
    """Read the SOP file at `path` and write its draft process folder to `out`."""
    doc = read_document(path)
    write_draft(doc, out, office_code, office_name, key)
    return doc
