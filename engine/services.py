"""Wiring: one object per process that holds the database and the engine service.

The CLI, the Flask app factory and the Celery app each build one from Settings; nothing
is created at import time.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .db import make_engine, make_sessionmaker
from .runtime import Runtime


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    runtime: Runtime

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs) -> "Services":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url, **engine_kwargs)
        sessions = make_sessionmaker(engine)
        return cls(settings=settings, engine=engine, sessions=sessions, runtime=Runtime(sessions))

    def dispose(self) -> None:
        self.engine.dispose()
