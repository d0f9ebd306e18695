"""Evidence files (photos, videos, PDF) stored by content hash, outside the web root.

The type is read from the file's first bytes (never from its name or the browser's
Content-Type), so a text file renamed `.png` is refused. A file is written once per
office under `data_dir/files/<aa>/<sha256>`; the same photo uploaded twice becomes one
row and one file. Writing goes to a temporary file in the same directory, then a rename,
so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import filetype
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import LajurError
from .models import Attachment, User

MAX_BYTES = 50 * 1024 * 1024
THUMB_PX = 320
CHUNK = 1024 * 1024

ALLOWED_MIME = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "video/mp4": "MP4",
    "video/webm": "WebM",
    "application/pdf": "PDF",
}
IMAGE_MIME = {"image/jpeg", "image/png", "image/webp"}


class FileRejected(LajurError):
    """An upload that is not evidence we keep: wrong type, too large or empty."""

    http_status = 422


class FileTooLarge(FileRejected):
    http_status = 413


def file_path(data_dir: Path, sha256: str) -> Path:
    return Path(data_dir) / "files" / sha256[:2] / sha256


def thumb_path(data_dir: Path, sha256: str) -> Path:
    return Path(data_dir) / "thumbs" / sha256[:2] / f"{sha256}.jpg"


def detect_mime(head: bytes) -> str | None:
    """The MIME type from the content's magic bytes, or None when unknown."""
    kind = filetype.guess(head)
    return kind.mime if kind else None


def store(session: Session, user: User, filename: str, stream: BinaryIO, data_dir: Path,
          max_bytes: int = MAX_BYTES, allowed: set[str] | frozenset[str] | None = None) -> Attachment:
    """Store one upload for the user's office and return its Attachment row.

    Raises FileRejected (type not allowed, empty) or FileTooLarge. `allowed` narrows the
    accepted types further (a form field's `x-lajur-accept`).
    """
    if user.office_id is None:
        raise FileRejected("Akun tanpa kantor tidak dapat mengunggah berkas.")
    data_dir = Path(data_dir)
    tmp_dir = data_dir / "files" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="up-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(
                        f"Berkas {filename!r} terlalu besar (maks. {max_bytes // (1024 * 1024) or 1} MB).")
                if len(head) < 8192:
                    head += chunk[:8192 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise FileRejected(f"Berkas {filename!r} kosong.")
        mime = detect_mime(head)
        accepted = set(ALLOWED_MIME) & set(allowed) if allowed else set(ALLOWED_MIME)
        if mime not in accepted:
            names = ", ".join(sorted(ALLOWED_MIME[m] for m in accepted))
            raise FileRejected(f"Jenis berkas {filename!r} tidak diterima (isi berkas bukan {names}).")
        sha = digest.hexdigest()
        existing = session.scalar(select(Attachment).where(Attachment.office_id == user.office_id,
                                                          Attachment.sha256 == sha))
        target = file_path(data_dir, sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o640)
            os.replace(tmp_name, target)
        if existing is not None:
            return existing
        has_thumb = mime in IMAGE_MIME and _thumbnail(target, thumb_path(data_dir, sha))
        attachment = Attachment(office_id=user.office_id, sha256=sha, mime=mime, size=size,
                                original_name=_clean_name(filename), has_thumbnail=has_thumb,
                                uploaded_by_id=user.id, uploaded_at=datetime.now(timezone.utc))
        session.add(attachment)
        session.flush()
        return attachment
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _clean_name(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip() or "berkas"
    return "".join(ch for ch in name if ch.isprintable())[:255]


def _thumbnail(source: Path, target: Path) -> bool:
    """A JPEG of at most THUMB_PX on its long side; False when Pillow cannot read the image."""
    from PIL import Image, ImageOps
    try:
        with Image.open(source) as img:
            img = ImageOps.exif_transpose(img)
            img.thumbnail((THUMB_PX, THUMB_PX))
            if img.mode not in ("RGB", "L"):
                background = Image.new("RGB", img.size, "white")
                background.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
                img = background
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="th-")
            with os.fdopen(fd, "wb") as out:
                img.save(out, "JPEG", quality=80)
            os.replace(tmp, target)
        return True
    except Exception:  # a corrupt image is still evidence; it just has no preview
        return False


def by_sha(session: Session, office_id: int | None, shas: list[str] | set[str]) -> dict[str, Attachment]:
    """The office's attachments with these hashes (office None = any office, for the regency admin)."""
    shas = [s for s in set(shas) if isinstance(s, str)]
    if not shas:
        return {}
    query = select(Attachment).where(Attachment.sha256.in_(shas))
    if office_id is not None:
        query = query.where(Attachment.office_id == office_id)
    return {a.sha256: a for a in session.scalars(query)}


def evidence_fields(schema: dict) -> list[str]:
    """The form's evidence fields: arrays of SHA-256 hashes of uploaded files."""
    return [n for n, p in schema.get("properties", {}).items() if p.get("x-lajur-widget") == "files"]


def evidence_values(schema: dict, data: dict | None) -> set[str]:
    """Every sha256 a step's data refers to."""
    found: set[str] = set()
    for name in evidence_fields(schema):
        value = (data or {}).get(name)
        if isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def foreign_evidence(session: Session, office_id: int | None, schema: dict, data: dict) -> list[str]:
    """The evidence fields of `data` naming a file that is not one of the office's own uploads
    (a guessed hash, or another office's file): such a step must not be completed."""
    wanted = evidence_values(schema, data)
    if not wanted:
        return []
    known = by_sha(session, office_id, wanted)
    return [name for name in evidence_fields(schema)
            if isinstance(data.get(name), list) and any(v not in known for v in data[name])]
