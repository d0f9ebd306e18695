"""A draft's files: what names and sizes are accepted, and writing them out as a process folder.

The studio sends the whole folder on each save; these checks bound it before anything is
parsed (a file name is a fixed name or a form under `forms/`, nothing else reaches the disk).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..bpmn import BPMN_FILE, MAX_FORM_BYTES, SOP_FILE
from ..config import DeployLimits
from ..errors import LajurError

NOTES_FILE = "problems.json"  # what an SOP document import could not read for sure (engine/sopdoc)
FORM_NAME = re.compile(r"^forms/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.json$")
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
MAX_FILES = 200


class DraftFilesInvalid(LajurError):
    """The files sent are not a process folder the studio accepts (a 422 on the web)."""

    http_status = 422


def check_names(files: dict, limits: DeployLimits | None = None) -> dict[str, str]:
    """`files` as {path: text}, refused (DraftFilesInvalid) if a name, type or size is off."""
    limits = limits or DeployLimits()
    if not isinstance(files, dict) or not files:
        raise DraftFilesInvalid("the draft has no files")
    if len(files) > MAX_FILES:
        raise DraftFilesInvalid(f"a process folder may have at most {MAX_FILES} files")
    total = 0
    for name, text in files.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise DraftFilesInvalid("every file must be a name and its text")
        if name not in (BPMN_FILE, SOP_FILE, NOTES_FILE) and not FORM_NAME.match(name):
            raise DraftFilesInvalid(f"file name {name[:100]!r} is not part of a process folder "
                                    "(process.bpmn, sop.json, forms/<name>.json)")
        if "\x00" in text:
            raise DraftFilesInvalid(f"{name}: the file contains a NUL byte")
        size = len(text.encode("utf-8", "surrogatepass"))
        limit = MAX_FORM_BYTES if name.startswith("forms/") else limits.max_bytes
        if size > limit:
            raise DraftFilesInvalid(f"{name}: the file is {size:,} bytes; at most {limit:,} are accepted")
        total += size
    if total > 2 * limits.max_bytes:
        raise DraftFilesInvalid(f"the process folder is {total:,} bytes; at most {2 * limits.max_bytes:,} in all")
    if BPMN_FILE not in files:
        raise DraftFilesInvalid("the draft has no process.bpmn")
    return dict(files)


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    """Write checked `files` into the (new) `folder`; return it."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def dump(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def version_files(version) -> dict[str, str]:
    """The process folder of a stored version, as it was deployed (sop.json and forms re-indented)."""
    files = {BPMN_FILE: version.bpmn_xml, SOP_FILE: dump(version.sop)}
    for name, schema in sorted(version.forms.items()):
        files[name] = dump(schema)
    return files
