"""Backup and restore (engine/backup.py, `lajur backup|restore`) on SQLite and PostgreSQL.

A service with instances, steps, audit rows and evidence files, all made through the engine,
is backed up while another thread keeps starting instances, then restored into a fresh
place (a new SQLite file / a new PostgreSQL database, and a new data directory): every row
and every file is there, and the restored service keeps working.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from sqlalchemy import select, text

from engine import attachments
from engine.backup import BackupError, backup, read_manifest, restore
from engine.config import Settings
from engine.models import User
from engine.services import Services

from .conftest import PG_ADMIN_URL
from .helpers import open_task, work_step
from .sopdata import DINSOS, DPMK, STEP_DATA

ROOT = Path(__file__).resolve().parent.parent
COMPARED = ["process_instance", "human_task", "audit_event", "attachment", "deadline", "notification",
            "task_pause", "user_account", "process_version"]


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (seed % 256, 80, 160)).save(out, "PNG")
    return out.getvalue()


def upload(services, username: str, seed: int) -> str:
    with services.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        return attachments.store(session, user, f"foto-{seed}.png", io.BytesIO(png(seed)),
                                 services.settings.data_dir).sha256


def populate(services, demo) -> None:
    """Finished, half-done and fresh instances of both SOPs, with evidence files."""
    for i in range(3):
        sha = upload(services, "dpmk.penerima", i)
        iid = services.runtime.start(demo["dpmk.penerima"], DPMK, f"Berita {i}")
        data = {**STEP_DATA[(DPMK, "step1")], "bukti_multimedia": [sha]}
        work_step(services, demo, DPMK, iid, "step1", data=data)
        if i == 0:
            for step in ("step2", "step3", "step4", "step5"):
                work_step(services, demo, DPMK, iid, step)
    sha = upload(services, "dinsos.petugas", 99)
    iid = services.runtime.start(demo["dinsos.petugas"], DINSOS, "Bansos")
    work_step(services, demo, DINSOS, iid, "step1", data={**STEP_DATA[(DINSOS, "step1")], "foto_video": [sha]})
    task = open_task(services, iid)
    services.runtime.claim(demo["dinsos.pengelola"], task.id)
    services.runtime.set_pause_mode(None, "dinsos", "immediate")
    services.runtime.pause(demo["dinsos.pengelola"], task.id, "menunggu foto")


def rows(engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))]


def files_of(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for top in ("files", "thumbs") for p in (data_dir / top).rglob("*")
            if p.is_file() and "tmp" not in p.relative_to(data_dir).parts}


@pytest.fixture
def fresh_target(backend, tmp_path):
    """Settings for a place that never held Lajur: a new SQLite file or a new PostgreSQL database."""
    data_dir = tmp_path / "restored-data"
    if backend == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'restored.sqlite3'}", broker_url="memory://",
                       base_url="http://127.0.0.1:5000", data_dir=data_dir)
        return
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"lajur_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield Settings(database_url=PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", broker_url="memory://",
                   base_url="http://127.0.0.1:5000", data_dir=data_dir)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_while_running_then_restore_into_a_fresh_place(services, demo, fresh_target, tmp_path):
    populate(services, demo)
    # the service keeps working during the backup: instances started from another thread
    stop, started, errors = threading.Event(), [], []

    def writer():
        while not stop.is_set():
            try:
                started.append(services.runtime.start(demo["dpmk.penerima"], DPMK, "Selama backup"))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = backup(services.settings, tmp_path / "lajur.tar.gz")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert started  # the writer really ran alongside
    manifest = result.manifest
    assert oct(os.stat(result.path).st_mode & 0o777) == "0o600"
    assert manifest["evidence"] == {"files": 4, "thumbs": 4, "attachments": 4}
    assert manifest["counts"]["process_instance"] >= 4 and manifest["schema_revision"]
    assert read_manifest(result.path) == manifest

    restored = restore(fresh_target, result.path)
    assert restored.manifest == manifest
    target = Services.from_settings(fresh_target)
    try:
        # exactly the snapshot: every instance, step, audit row and attachment, field for field
        source_rows = {t: rows(services.engine, t) for t in COMPARED}
        for table in COMPARED:
            got = rows(target.engine, table)
            assert len(got) == manifest["counts"][table], table
            assert got == source_rows[table][:len(got)], table  # ids are ordered: the snapshot's prefix
        # the instances the writer started after the snapshot are the only difference
        with target.engine.connect() as conn:
            snapshot_ids = {r[0] for r in conn.execute(text("SELECT id FROM process_instance"))}
        assert snapshot_ids | set(started) >= {r[0] for r in source_rows["process_instance"]}
        # every step belongs to a restored instance (one consistent snapshot, no torn write)
        with target.engine.connect() as conn:
            orphans = conn.execute(text("SELECT count(*) FROM human_task t LEFT JOIN process_instance i "
                                        "ON i.id = t.instance_id WHERE i.id IS NULL")).scalar_one()
            running_without_step = conn.execute(text(
                "SELECT count(*) FROM process_instance i WHERE i.status = 'running' AND NOT EXISTS "
                "(SELECT 1 FROM human_task t WHERE t.instance_id = i.id AND t.state = 'ready')")).scalar_one()
        assert orphans == 0 and running_without_step == 0
        assert files_of(fresh_target.data_dir) == files_of(services.settings.data_dir)
        # the restored service works on: sequences continue past the restored ids
        new_id = target.runtime.start(demo["dpmk.penerima"], DPMK, "Setelah restore")
        assert new_id > max(snapshot_ids)
        work_step(target, demo, DPMK, new_id, "step1")
    finally:
        target.dispose()


def test_restore_refuses_a_non_empty_target_and_a_damaged_archive(services, demo, fresh_target, tmp_path):
    populate(services, demo)
    archive = backup(services.settings, tmp_path / "a.tar.gz").path
    with pytest.raises(BackupError, match="exists"):
        backup(services.settings, archive)
    # into the source itself: not empty, refused, nothing changed
    before = rows(services.engine, "audit_event")
    with pytest.raises(BackupError, match="evidence files|not empty"):
        restore(services.settings, archive)
    assert rows(services.engine, "audit_event") == before
    # a damaged member is found before the target is touched
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(damaged, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read()
            if member.name.startswith("files/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="checksum"):
        restore(fresh_target, damaged)
    assert files_of(fresh_target.data_dir) == {}
    not_a_backup = tmp_path / "x.tar.gz"
    not_a_backup.write_bytes(b"hello")
    with pytest.raises(BackupError, match="cannot be read"):
        restore(fresh_target, not_a_backup)
    # a forced restore over a filled target replaces it
    restore(fresh_target, archive)
    extra = Services.from_settings(fresh_target)
    try:
        extra.runtime.start(demo["dpmk.penerima"], DPMK, "Akan hilang")
    finally:
        extra.dispose()
    with pytest.raises(BackupError, match="evidence files|not empty"):
        restore(fresh_target, archive)
    restore(fresh_target, archive, force=True)
    manifest = read_manifest(archive)
    target = Services.from_settings(fresh_target)
    try:
        assert len(rows(target.engine, "process_instance")) == manifest["counts"]["process_instance"]
    finally:
        target.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_backup_and_restore(services, demo, tmp_path):
    populate(services, demo)
    env = {**os.environ, "LAJUR_DATABASE_URL": services.settings.database_url,
           "LAJUR_DATA_DIR": str(services.settings.data_dir)}
    lajur = [sys.executable, "-m", "engine.cli"]
    out = tmp_path / "cli.tar.gz"
    done = subprocess.run([*lajur, "backup", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 instance(s)" in done.stdout and "4 file(s)" in done.stdout
    # restoring over the running database: one line on stderr, status 1, no traceback
    again = subprocess.run([*lajur, "restore", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1
    fresh = {**env, "LAJUR_DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
             "LAJUR_DATA_DIR": str(tmp_path / "new-data")}
    done = subprocess.run([*lajur, "restore", str(out)], env=fresh, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "checksums and counts match" in done.stdout
    shown = subprocess.run([*lajur, "show", "dpmk.sekdin", "1"], env=fresh, cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and "Berita 0" in shown.stdout, shown.stderr


@pytest.mark.parametrize("backend", ["postgresql"])
def test_unreachable_database_is_a_clear_error(services, tmp_path):
    missing = Settings(database_url=PG_ADMIN_URL.rsplit("/", 1)[0] + "/lajur_no_such_db", broker_url="memory://",
                       base_url="http://127.0.0.1:5000", data_dir=tmp_path / "none")
    with pytest.raises(BackupError, match="cannot connect to the database"):
        backup(missing, tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()
