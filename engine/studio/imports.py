"""Files into a draft and out of a version: folder zips, a single .bpmn, an SOP document, a
new SOP from scratch or as a copy.

Whatever a file lacks that Lajur needs is not guessed: the draft is made from what is there
(plus an empty sop.json card and empty forms where a step names none), and the validator's
problems say what to fix in the editor.
"""
from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from lxml import etree

from ..bpmn import BPMN_FILE, BPMN_NS, NS, SOP_FILE, _properties
from ..config import DeployLimits
from .files import NOTES_FILE, DraftFilesInvalid, check_names, dump

MAX_ZIP_BYTES = 10 * 1024 * 1024
MAX_ZIP_ENTRIES = 400
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)


def zip_of(files: dict[str, str], key: str) -> bytes:
    """The process folder as a zip with one top folder named after the SOP (keep it in git)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in sorted(files.items()):
            z.writestr(f"{key}/{name}", text)
    return out.getvalue()


def files_from_zip(data: bytes, limits: DeployLimits | None = None) -> dict[str, str]:
    """A folder zip (with or without one top folder) -> the draft's files; bounded before reading."""
    limits = limits or DeployLimits()
    if len(data) > MAX_ZIP_BYTES:
        raise DraftFilesInvalid(f"the zip is larger than {MAX_ZIP_BYTES // (1024 * 1024)} MB")
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError):
        raise DraftFilesInvalid("the file is not a zip archive") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DraftFilesInvalid(f"the zip has more than {MAX_ZIP_ENTRIES} files")
    names = [PurePosixPath(i.filename) for i in infos]
    tops = {n.parts[0] for n in names if len(n.parts) > 1}
    strip = 1 if len(tops) == 1 and all(len(n.parts) > 1 for n in names) else 0
    files: dict[str, str] = {}
    budget = 4 * limits.max_bytes
    for info, name in zip(infos, names):
        rel = "/".join(name.parts[strip:])
        if rel.startswith(("__MACOSX/", ".")) or "/." in rel or rel.endswith((".md", ".txt")) and "/" not in rel:
            continue
        if info.file_size > limits.max_bytes or info.file_size > budget:
            raise DraftFilesInvalid(f"{rel}: the file is too large ({info.file_size:,} bytes)")
        budget -= info.file_size
        with z.open(info) as fh:
            raw = fh.read(limits.max_bytes + 1)
        if len(raw) > limits.max_bytes:
            raise DraftFilesInvalid(f"{rel}: the file is too large")
        try:
            files[rel] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DraftFilesInvalid(f"{rel}: the file is not UTF-8 text") from None
    return check_names(files, limits)


def _parse(bpmn_xml: str):
    if _DOCTYPE.search(bpmn_xml):
        raise DraftFilesInvalid("a DOCTYPE is not allowed in a BPMN file (remove the <!DOCTYPE ...> line)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(bpmn_xml.encode(), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise DraftFilesInvalid(f"XML syntax error: {exc.msg} (line {exc.lineno})") from None


def empty_form(title: str) -> dict:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title[:200], "type": "object",
            "properties": {}, "required": [], "additionalProperties": False}


def files_from_bpmn(bpmn_xml: str, office_code: str, office_name: str, key: str,
                    limits: DeployLimits | None = None) -> dict[str, str]:
    """A single .bpmn (Camunda Modeler, bpmn.io) -> a draft: the file as it is, an SOP card with
    a step text per user task, and an empty form for each form a step names but the upload lacks."""
    root = _parse(bpmn_xml)
    processes = root.findall("bpmn:process", NS)
    process = next((p for p in processes if p.get("isExecutable", "true").lower() != "false"),
                   processes[0] if processes else None)
    tasks = list(process.iter(f"{{{BPMN_NS}}}userTask")) if process is not None else []
    sop = {"key": key, "office": {"code": office_code, "name": office_name},
           "name": (process.get("name") if process is not None else None) or key}
    if process is not None and len(processes) > 1:
        sop["process_id"] = process.get("id")
    sop["steps"] = {t.get("id"): {"text": t.get("name") or t.get("id")} for t in tasks if t.get("id")}
    files = {BPMN_FILE: bpmn_xml, SOP_FILE: dump(sop)}
    for t in tasks:
        form = _properties(t).get("formJsonSchemaFilename")
        if form and form.startswith("forms/"):
            files.setdefault(form, dump(empty_form(t.get("name") or t.get("id") or "")))
    return check_names(files, limits)


def files_from_sopdoc(data: bytes, filename: str, office_code: str, office_name: str,
                      key: str | None = None) -> tuple[str, dict[str, str], list[dict]]:
    """An SOP document (DOCX/XLSX/HTML/text, engine/sopdoc) -> (key, draft files, import notes)."""
    from ..sopdoc.draft import FORMATS, import_sop
    suffix = Path(filename or "").suffix.lower()
    if suffix not in FORMATS:
        raise DraftFilesInvalid(f"SOP documents are read from {', '.join(sorted(FORMATS))}, not {suffix or 'this file'}")
    with tempfile.TemporaryDirectory(prefix="lajur-sopdoc-") as tmp:
        src = Path(tmp) / f"sop{suffix}"
        src.write_bytes(data)
        out = Path(tmp) / "draft"
        try:
            doc = import_sop(src, out, office_code, office_name, key or None)
        except ValueError as exc:
            raise DraftFilesInvalid(str(exc)) from None
        files = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
                 for p in sorted(out.rglob("*")) if p.is_file()}
    sop = json.loads(files[SOP_FILE])
    notes = [{"file": "", "element_id": "", "line": None, "message": str(p)} for p in doc.problems]
    return sop["key"], files, notes


def new_sop(key: str, name: str, office_code: str, office_name: str, lane: str) -> dict[str, str]:
    """A new SOP from scratch: one lane, one step with its form and a 60-minute Mutu Baku."""
    pid = "sop_" + key.replace("-", "_")
    template = (Path(__file__).parent / "new_sop.bpmn").read_text(encoding="utf-8")
    bpmn = (template.replace("@PID@", pid).replace("@NAME@", _xml_attr(name))
            .replace("@LANE@", _xml_attr(lane)))
    sop = {"key": key, "process_id": pid, "office": {"code": office_code, "name": office_name}, "name": name,
           "steps": {"step1": {"text": "Langkah pertama"}}}
    form = empty_form("Langkah pertama")
    form["properties"] = {"catatan": {"type": "string", "title": "Catatan", "maxLength": 2000}}
    return {BPMN_FILE: bpmn, SOP_FILE: dump(sop), "forms/step1.schema.json": dump(form)}


def copy_files(files: dict[str, str], key: str, name: str) -> dict[str, str]:
    """Another SOP's folder under a new key and name (its import notes are not copied)."""
    out = {k: v for k, v in files.items() if k != NOTES_FILE}
    sop = json.loads(out[SOP_FILE])
    sop["key"], sop["name"] = key, name
    out[SOP_FILE] = dump(sop)
    return out


def _xml_attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
