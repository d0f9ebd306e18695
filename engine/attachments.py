"""Evidence files (photos, videos, PDF) stored by content hash, outside the web root.

The type is read from the file's content (never from its name or the browser's
Content-Type), so a text file renamed `.png` is refused; an image must also parse, and
its size in pixels is read from its header and bounded before any pixel is decoded (a
481 KB PNG of 13,000 x 13,000 pixels once cost 1.4 GB and 14 s to thumbnail). A file
is written once per office under `data_dir/files/<aa>/<sha256>`; the same photo
uploaded twice becomes one row and one file. Writing goes to a temporary file that is
checked (size, type, pixels, quota) and only then renamed into place, so nothing
invalid is stored and a reader never sees half a file.

Each upload records the step it was uploaded for: a step and an instance have a byte
quota, and a file that no step refers to (a draft abandoned, a losing race, a form sent
back with errors and never completed) is removed after a grace period by `prune()`.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import filetype
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from .errors import LajurError
from .models import Attachment, HumanTask, User

MAX_BYTES = 50 * 1024 * 1024
STEP_QUOTA_BYTES = 200 * 1024 * 1024      # all files uploaded for one step
INSTANCE_QUOTA_BYTES = 500 * 1024 * 1024  # all files uploaded for one instance
MAX_FILES_PER_POST = 10
PRUNE_GRACE = timedelta(days=2)           # an unreferenced upload is kept this long (a draft in progress)
THUMB_PX = 320
CHUNK = 1024 * 1024
# Pixel ceilings. A JPEG thumbnail decodes at 1/8 scale (Pillow's draft), so its ceiling is
# high; PNG and WebP have no reduced decode, so theirs bounds the full decode (~3 bytes a pixel).
MAX_PIXELS = {"image/jpeg": 80_000_000, "image/png": 24_000_000, "image/webp": 24_000_000}

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
          max_bytes: int = MAX_BYTES, allowed: set[str] | frozenset[str] | None = None,
          human_task_id: int | None = None, instance_id: int | None = None) -> Attachment:
    """Store one upload for the user's office and return its Attachment row.

    Raises FileRejected (type not allowed, not a readable image, too many pixels, empty,
    over the step's or instance's quota) or FileTooLarge. `allowed` narrows the accepted
    types further (a form field's `x-lajur-accept`). `human_task_id`/`instance_id`: the
    step it is uploaded for (quota, clean-up).
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
        if mime in IMAGE_MIME:
            _check_image(Path(tmp_name), mime, filename)
        elif mime == "application/pdf":
            _check_pdf(Path(tmp_name), filename)
        sha = digest.hexdigest()
        existing = session.scalar(select(Attachment).where(Attachment.office_id == user.office_id,
                                                          Attachment.sha256 == sha))
        if existing is not None:
            _link_file(Path(tmp_name), file_path(data_dir, sha))
            return existing
        _check_quota(session, human_task_id, instance_id, size, filename)
        target = file_path(data_dir, sha)
        _link_file(Path(tmp_name), target)
        has_thumb = mime in IMAGE_MIME and _thumbnail(target, thumb_path(data_dir, sha))
        attachment = Attachment(office_id=user.office_id, sha256=sha, mime=mime, size=size,
                                original_name=_clean_name(filename), has_thumbnail=has_thumb,
                                uploaded_by_id=user.id, uploaded_at=datetime.now(timezone.utc),
                                human_task_id=human_task_id, instance_id=instance_id)
        session.add(attachment)
        session.flush()
        return attachment
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _link_file(tmp: Path, target: Path) -> None:
    """Move the checked temporary file into place (once: the same content is one file)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)


def _check_image(path: Path, mime: str, filename: str) -> None:
    """The image parses and its pixel count, read from the header only, is under the ceiling."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS[mime]:
                raise FileRejected(f"Gambar {filename!r} terlalu besar ({width} x {height} piksel; maks. "
                                   f"{MAX_PIXELS[mime] // 1_000_000} megapiksel).")
            img.verify()  # structure and checksums, without decoding the pixels
    except FileRejected:
        raise
    except Image.DecompressionBombError:
        raise FileRejected(f"Gambar {filename!r} terlalu besar (piksel).") from None
    except Exception:
        raise FileRejected(f"Berkas {filename!r} bukan gambar yang dapat dibaca.") from None


def _check_pdf(path: Path, filename: str) -> None:
    """A PDF starts with its header and ends with an end-of-file marker (not zeros after a magic)."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 2048))
        tail = f.read()
    if b"%%EOF" not in tail:
        raise FileRejected(f"Berkas {filename!r} bukan PDF yang utuh.")


def _check_quota(session: Session, human_task_id: int | None, instance_id: int | None, size: int,
                 filename: str) -> None:
    for column, key, quota, what in ((Attachment.human_task_id, human_task_id, STEP_QUOTA_BYTES, "langkah"),
                                     (Attachment.instance_id, instance_id, INSTANCE_QUOTA_BYTES, "SOP")):
        if key is None:
            continue
        used = session.scalar(select(func.coalesce(func.sum(Attachment.size), 0)).where(column == key))
        if used + size > quota:
            raise FileTooLarge(f"Berkas {filename!r} melebihi kuota unggahan {what} ini "
                               f"(maks. {quota // (1024 * 1024)} MB seluruhnya).")


def _clean_name(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip() or "berkas"
    return "".join(ch for ch in name if ch.isprintable())[:255]


def _thumbnail(source: Path, target: Path) -> bool:
    """A JPEG of at most THUMB_PX on its long side; False when Pillow cannot read the image.

    A JPEG is decoded at a reduced scale (draft), and the EXIF rotation is applied to the
    small image, not the full one; the pixel ceiling (store) bounds a PNG or WebP decode.
    """
    from PIL import Image, ImageOps
    try:
        with Image.open(source) as img:
            img.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            img.thumbnail((THUMB_PX, THUMB_PX), reducing_gap=2.0)
            img = ImageOps.exif_transpose(img)
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


def referenced(session: Session, attachment: Attachment) -> str | None:
    """'data' when a step's submitted data refers to the file, 'draft' when only a draft does, else None.

    The sha256 is searched in the JSON text of the office's steps: files are referenced
    by hash inside form data (any files field of any step), and a pruning run is rare.
    """
    pattern = f"%{attachment.sha256}%"
    rows = session.execute(select(cast(HumanTask.data, String).like(pattern)).where(
        HumanTask.office_id == attachment.office_id,
        or_(cast(HumanTask.data, String).like(pattern), cast(HumanTask.draft, String).like(pattern))).limit(50)).all()
    if any(r[0] for r in rows):
        return "data"
    return "draft" if rows else None


def _remove(session: Session, data_dir: Path, attachment: Attachment) -> None:
    """Delete the row, and the file and thumbnail when no other office keeps the same content."""
    sha = attachment.sha256
    session.delete(attachment)
    session.flush()
    if session.scalar(select(func.count()).select_from(Attachment).where(Attachment.sha256 == sha)) == 0:
        for path in (file_path(data_dir, sha), thumb_path(data_dir, sha)):
            path.unlink(missing_ok=True)


def discard(session: Session, data_dir: Path, attachment_ids: list[int] | set[int]) -> int:
    """Remove uploads of a request that did not go through (a completion that lost a race),
    unless a step refers to them meanwhile. Returns how many were removed."""
    removed = 0
    for attachment in session.scalars(select(Attachment).where(Attachment.id.in_(list(attachment_ids)),
                                                               Attachment.kept.is_(False))):
        if referenced(session, attachment) is None:
            _remove(session, Path(data_dir), attachment)
            removed += 1
    return removed


def prune(session: Session, data_dir: Path, now: datetime, grace: timedelta = PRUNE_GRACE,
          batch: int = 500) -> int:
    """Remove uploads older than `grace` that no step refers to; returns how many.

    Meant for a periodic job (Celery beat, e.g. hourly) and `lajur files prune`. A file a
    completed step refers to is marked `kept` and never looked at again; one only a draft
    refers to is checked again next time.
    """
    removed = 0
    candidates = session.scalars(select(Attachment).where(Attachment.kept.is_(False),
                                                          Attachment.uploaded_at < now - grace)
                                 .order_by(Attachment.id).limit(batch)).all()
    for attachment in candidates:
        found = referenced(session, attachment)
        if found == "data":
            attachment.kept = True
        elif found is None:
            _remove(session, Path(data_dir), attachment)
            removed += 1
    return removed


# ---- services: each in a transaction of its own on the caller's session factory -------------------

def store_upload(sessions, user_id: int, filename: str, stream: BinaryIO, data_dir: Path, **kwargs) -> Attachment:
    """store() for an upload by `user_id`, committed at once (a completion refers to it by hash)."""
    with sessions.begin() as session:
        return store(session, session.get(User, user_id), filename, stream, data_dir, **kwargs)


def discard_uploads(sessions, data_dir: Path, attachment_ids: list[int] | set[int]) -> int:
    """discard() the given uploads (a completion that lost its race leaves none of its files)."""
    if not attachment_ids:
        return 0
    with sessions.begin() as session:
        return discard(session, data_dir, attachment_ids)
