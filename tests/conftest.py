"""Fixtures: real databases (PostgreSQL and the embedded SQLite default), demo data.

PostgreSQL runs on this machine; each test session gets its own database, dropped at
the end. A missing service skips with a reason, or fails when CI=true.
"""
from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.config import Settings
from engine.demo import seed_demo
from engine.migrate import upgrade
from engine.models import Base
from engine.services import Services

PG_ADMIN_URL = os.environ.get("LAJUR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LAJUR_TEST_REDIS", "redis://127.0.0.1:6379/15")


def service_missing(what: str, reason: str):
    """Skip, or fail under CI: a test whose real service is missing must not pass quietly."""
    message = f"{what} is not reachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: services must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test session (xdist workers get one each)."""
    import psycopg
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"lajur_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_pg(services: Services) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with services.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """An embedded database at the head revision, migrated once per test process: each test
    gets a copy (Alembic's run of every migration takes ~0.35 s, a copy ~1 ms). The migrations
    themselves are tested where they are the subject (test_migrations*, test_schema_compat)."""
    path = tmp_path_factory.mktemp("schema") / "lajur.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (a WAL file cannot be left behind), also
    into a database that has connections open."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@pytest.fixture
def db_url(backend, request, tmp_path):
    if backend == "sqlite":
        path = tmp_path / "lajur.sqlite3"
        sqlite_copy(request.getfixturevalue("sqlite_schema"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings(database_url=db_url, broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
                    data_dir=tmp_path / "data", base_url="http://127.0.0.1:5000")


@pytest.fixture
def services(settings, backend):
    svc = Services.from_settings(settings)
    if backend == "postgresql":
        _truncate_pg(svc)
    yield svc
    svc.dispose()


class DemoSnapshots:
    """The seeded demo, taken once per test process and backend and put back for each test.

    Seeding is ~1.5 s (ten scrypt password hashes and two deploys) and most tests start from
    it, so the first test of a process seeds through `seed_demo` as before and the database
    is kept: on SQLite as a file (restored with the backup API), on PostgreSQL as each table's
    COPY and the sequences' positions (restored into the truncated tables, foreign keys
    deferred as pg_restore does with session_replication_role). The data directory's logins
    file is kept with it. `seed_demo` itself still runs for the first test of each process and
    backend, behind `lajur seed-demo` (test_cli.py) and in the browser tests."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.kept: dict[str, dict] = {}

    def restore(self, services: Services, backend: str) -> None:
        logins = services.settings.data_dir / "demo-logins.json"
        kept = self.kept.get(backend)
        if kept is None:
            with services.sessions.begin() as session:
                seed_demo(session, services.runtime.store, logins)
            self.kept[backend] = self._take(services, backend) | {"logins": logins.read_bytes()}
            return
        if backend == "sqlite":
            sqlite_copy(kept["file"], Path(services.engine.url.database))
        else:
            self._put_pg(services, kept)
        logins.parent.mkdir(parents=True, exist_ok=True)
        logins.write_bytes(kept["logins"])
        logins.chmod(0o600)

    def _take(self, services: Services, backend: str) -> dict:
        if backend == "sqlite":
            path = self.folder / "demo.sqlite3"
            sqlite_copy(Path(services.engine.url.database), path)
            return {"file": path}
        tables = {}
        with services.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            for table in Base.metadata.sorted_tables:
                buf = bytearray()
                with cursor.copy(f'COPY "{table.name}" TO STDOUT') as copy:
                    for chunk in copy:
                        buf += chunk
                if buf:
                    tables[table.name] = bytes(buf)
            sequences = conn.execute(text("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences "
                                          "WHERE last_value IS NOT NULL")).all()
        return {"tables": tables, "sequences": sequences}

    @staticmethod
    def _put_pg(services: Services, kept: dict) -> None:
        with services.engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("SET LOCAL session_replication_role = replica")
            for name, data in kept["tables"].items():
                with cursor.copy(f'COPY "{name}" FROM STDIN') as copy:
                    copy.write(data)
            for name, value in kept["sequences"]:
                cursor.execute("SELECT setval(%s, %s)", (name, value))


@pytest.fixture(scope="session")
def demo_snapshots(tmp_path_factory) -> DemoSnapshots:
    return DemoSnapshots(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def demo(services, backend, demo_snapshots) -> dict[str, int]:
    """The demo seeded (see DemoSnapshots); return username -> user id."""
    from engine.models import User
    from sqlalchemy import select
    demo_snapshots.restore(services, backend)
    with services.sessions() as session:
        return {u.username: u.id for u in session.scalars(select(User))}


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
