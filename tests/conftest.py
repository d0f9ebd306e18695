"""Fixtures: real databases (PostgreSQL and the embedded SQLite default), demo data.

PostgreSQL runs on this machine; each test session gets its own database, dropped at
the end. A missing service skips with a reason, or fails when CI=true.
"""
from __future__ import annotations

import os
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


@pytest.fixture
def db_url(backend, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'lajur.sqlite3'}"
        upgrade(url)
        return url
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


@pytest.fixture
def demo(services) -> dict[str, int]:
    """Seed the demo; return username -> user id."""
    from engine.models import User
    from sqlalchemy import select
    with services.sessions.begin() as session:
        seed_demo(session, services.runtime.store, services.settings.data_dir / "demo-logins.json")
    with services.sessions() as session:
        return {u.username: u.id for u in session.scalars(select(User))}


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
