"""Backup and restore: the database and the evidence files together, in one archive.

An archive is a gzip'd tar with `manifest.json` first, then the database (`database.sqlite3`,
a copy made with SQLite's online backup API, or `database.pgdump`, pg_dump's custom format)
and the data directory's attachment store (`files/`, `thumbs/`, see engine/attachments.py).
The manifest records the format, Lajur's version and schema revision, the rows per table and
the SHA-256 of every member; restore checks every checksum and, after loading, every count.

Consistency while the service runs: the database is copied first, as one snapshot (SQLite's
backup API copies a consistent state; on PostgreSQL the rows are counted in a REPEATABLE READ
transaction whose snapshot pg_dump is given with --snapshot, so dump and counts agree). Then
the files: an evidence file is renamed into place before its attachment row commits and is
never deleted, so every file the snapshot refers to is on disk by then; files uploaded after
the snapshot come along and are harmless (content-addressed, unreferenced). A referenced file
that is missing fails the backup rather than writing an archive that cannot be restored whole.

Not included: the secret key (sign-ins start afresh after a restore; set LAJUR_SECRET_KEY to
keep them), the embedded broker (its messages are only doorbells; the tick re-enqueues).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .config import Settings
from .errors import LajurError
from .models import Base

FORMAT = "lajur-backup/1"
MANIFEST = "manifest.json"
FILE_DIRS = ("files", "thumbs")
CHUNK = 1024 * 1024


class BackupError(LajurError):
    """A backup or restore that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class Result:
    path: Path
    manifest: dict


def tables() -> list[str]:
    """Every table the backup counts: the models' tables and Alembic's revision."""
    return [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]


# ---- backup ------------------------------------------------------------------------------------

def backup(settings: Settings, out: Path) -> Result:
    """Write an archive of the database and the evidence files to `out` (refuses to overwrite)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} exists; choose a new file name")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    with tempfile.TemporaryDirectory(prefix="lajur-backup-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        if _is_sqlite(settings.database_url):
            db_name, counts, revision, attachments = _snapshot_sqlite(settings.database_url, tmp)
        else:
            db_name, counts, revision, attachments = _snapshot_pg(settings.database_url, tmp)
        files = _evidence_files(settings.data_dir)
        have = {p.name for rel, p in files if rel.startswith("files/")}
        missing = sorted(set(attachments) - have)
        if missing:
            raise BackupError(f"{len(missing)} evidence file(s) referenced by the database are missing from "
                              f"{settings.data_dir / 'files'} (first: {missing[0]})")
        members = [(db_name, tmp / db_name)] + files
        checksums = {name: _sha256(path) for name, path in members}
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "lajur_version": _version(),
            "schema_revision": revision,
            "database": {"kind": "sqlite" if db_name.endswith(".sqlite3") else "postgresql", "member": db_name,
                         "server_version": _server_version(settings.database_url)},
            "counts": counts,
            "evidence": {"files": sum(1 for n, _ in files if n.startswith("files/")),
                         "thumbs": sum(1 for n, _ in files if n.startswith("thumbs/")),
                         "attachments": len(attachments)},
            "checksums": checksums,
        }
        partial = out.with_name(out.name + ".part")
        try:
            with tarfile.open(partial, "w:gz") as tar:
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(datetime.now().timestamp()), 0o600
                tar.addfile(info, io.BytesIO(body))
                for name, path in members:
                    tar.add(path, arcname=name, recursive=False)
            os.chmod(partial, 0o600)  # the archive holds password hashes and webhook secrets
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return Result(out, manifest)


def _snapshot_sqlite(url: str, tmp: Path) -> tuple[str, dict, str | None, list[str]]:
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    target = tmp / "database.sqlite3"
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # online: copies one consistent state while others keep writing
    finally:
        src.close()
    try:
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        counts, revision, shas = _read_snapshot(dst.execute)
    finally:
        dst.close()
    return target.name, counts, revision, shas


def _snapshot_pg(url: str, tmp: Path) -> tuple[str, dict, str | None, list[str]]:
    import psycopg
    target = tmp / "database.pgdump"
    try:
        conn = psycopg.connect(_libpq_dsn(url), autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}") from None
    with conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts, revision, shas = _read_snapshot(lambda sql: conn.execute(sql))
        # the snapshot lives as long as this transaction: pg_dump runs inside it
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
              "--file", str(target), *_pg_args(url)], url)
        conn.execute("ROLLBACK")
    return target.name, counts, revision, shas


def _read_snapshot(execute) -> tuple[dict, str | None, list[str]]:
    """Rows per table, the schema revision and the attachments' hashes, read from one snapshot."""
    counts = {}
    for name in tables():
        try:
            counts[name] = int(execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
        except Exception as exc:  # sqlite3 and psycopg each raise their own
            raise BackupError(f"table {name} cannot be read ({exc}); is the database migrated "
                              f"(lajur migrate)?") from None
    revision = execute("SELECT version_num FROM alembic_version").fetchone()
    shas = [row[0] for row in execute("SELECT DISTINCT sha256 FROM attachment").fetchall()]
    return counts, revision[0] if revision else None, shas


def _evidence_files(data_dir: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of every stored evidence file and thumbnail, not the upload temp dir."""
    out = []
    for top in FILE_DIRS:
        root = Path(data_dir) / top
        if not root.is_dir():
            continue
        for shard in sorted(root.iterdir()):
            if not shard.is_dir() or shard.name == "tmp":
                continue
            for path in sorted(shard.iterdir()):
                if path.is_file() and not path.is_symlink():
                    out.append((f"{top}/{shard.name}/{path.name}", path))
    return out


# ---- restore -----------------------------------------------------------------------------------

def read_manifest(archive: Path) -> dict:
    """The archive's manifest, checked for format; raises BackupError for anything else."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupError(f"{archive} is not a Lajur backup (no {MANIFEST} first)")
            manifest = json.loads(tar.extractfile(first).read(1024 * 1024 * 16))
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as exc:
        raise BackupError(f"{archive} cannot be read as a Lajur backup: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
    return manifest


def restore(settings: Settings, archive: Path, force: bool = False) -> Result:
    """Load an archive into the configured database and data directory.

    Refuses a target that already holds Lajur data (rows in any table, or evidence files)
    unless `force`; checks every member's checksum before touching the target, and the rows
    per table after loading.
    """
    manifest = read_manifest(archive)
    kind = "sqlite" if _is_sqlite(settings.database_url) else "postgresql"
    if manifest["database"]["kind"] != kind:
        raise BackupError(f"the archive holds a {manifest['database']['kind']} database; the target is {kind}")
    if not force:
        _refuse_non_empty(settings)
    with tempfile.TemporaryDirectory(prefix="lajur-restore-") as tmp:
        tmp = Path(tmp)
        _extract_checked(Path(archive), manifest, tmp)
        db_member = tmp / manifest["database"]["member"]
        if kind == "sqlite":
            _restore_sqlite(settings.database_url, db_member)
        else:
            _restore_pg(settings.database_url, db_member)
        _restore_files(settings.data_dir, tmp, force)
    counts = _count(settings.database_url)
    wrong = {t: (n, counts.get(t)) for t, n in manifest["counts"].items() if counts.get(t) != n}
    if wrong:
        raise BackupError("restored rows differ from the manifest: " +
                          ", ".join(f"{t} {want} != {got}" for t, (want, got) in sorted(wrong.items())))
    return Result(Path(archive), manifest)


def _refuse_non_empty(settings: Settings) -> None:
    if any(_evidence_files(settings.data_dir)):
        raise BackupError(f"{settings.data_dir} already holds evidence files; restore into an empty data "
                          f"directory or pass --force")
    if _is_sqlite(settings.database_url) and not _sqlite_path(settings.database_url).exists():
        return
    counts = _count(settings.database_url, missing_ok=True)
    filled = sorted(t for t, n in counts.items() if n and t != "alembic_version")
    if filled:
        raise BackupError(f"the target database is not empty ({', '.join(filled[:4])}"
                          f"{' ...' if len(filled) > 4 else ''}); restore into an empty one or pass --force")


def _extract_checked(archive: Path, manifest: dict, into: Path) -> None:
    """Extract every member the manifest lists, each checked against its SHA-256; nothing else."""
    expected = dict(manifest.get("checksums") or {})
    seen = set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name == MANIFEST:
                continue
            if member.name not in expected or not member.isfile():
                raise BackupError(f"{archive}: unexpected member {member.name!r}")
            target = into / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with tar.extractfile(member) as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
            if digest.hexdigest() != expected[member.name]:
                raise BackupError(f"{archive}: {member.name} does not match its checksum (damaged archive)")
            seen.add(member.name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{archive}: {len(missing)} member(s) missing (first: {missing[0]})")


def _restore_sqlite(url: str, member: Path) -> None:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(member, tmp)
    os.replace(tmp, target)


def _restore_pg(url: str, member: Path) -> None:
    # --clean drops what the dump holds first (a forced restore over a migrated or filled database)
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", "--dbname", _libpq_dsn(url), str(member)], url)


def _restore_files(data_dir: Path, extracted: Path, force: bool) -> None:
    for top in FILE_DIRS:
        src_root = extracted / top
        if force:
            shutil.rmtree(Path(data_dir) / top, ignore_errors=True)
        if not src_root.is_dir():
            continue
        for src in src_root.rglob("*"):
            if src.is_file():
                target = Path(data_dir) / src.relative_to(extracted)
                target.parent.mkdir(parents=True, exist_ok=True)
                if _same_fs(src, target.parent):
                    os.replace(src, target)
                else:
                    shutil.copyfile(src, target)
                os.chmod(target, 0o640)


def _count(url: str, missing_ok: bool = False) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with _connected(engine) as conn:
            present = set(inspect(conn).get_table_names())
            out = {}
            for name in tables():
                if name in present:
                    out[name] = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                elif not missing_ok:
                    out[name] = None
            return out
    finally:
        engine.dispose()


# ---- helpers -----------------------------------------------------------------------------------

def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq URI (psycopg and the pg_* tools read the same)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_args(url: str) -> list[str]:
    return ["--dbname", _libpq_dsn(url)]


def _run(args: list[str], url: str) -> None:
    if shutil.which(args[0]) is None:
        raise BackupError(f"{args[0]} is not installed (Debian: postgresql-client)")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        password = make_url(url).password
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if password:
            message = message.replace(str(password), "***")
        raise BackupError(f"{args[0]} failed: {message}")


def _server_version(url: str) -> str:
    if _is_sqlite(url):
        return sqlite3.sqlite_version
    engine = create_engine(url)
    try:
        with _connected(engine) as conn:
            return conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


@contextmanager
def _connected(engine):
    """A connection, or a BackupError naming the database that cannot be reached."""
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise BackupError(f"cannot connect to the database: {str(exc.orig).strip().splitlines()[0]}") from None
    with conn:
        yield conn


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _version() -> str:
    try:
        return importlib_metadata.version("lajur")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"
