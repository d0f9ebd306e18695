"""A live Lajur app (demo seed, some work in flight) for the API tests, served on a free port."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import select, text
from werkzeug.serving import make_server

from engine import tokens
from engine.config import Settings
from engine.demo import seed_demo
from engine.models import Base, User
from engine.services import Services


def now() -> datetime:
    return datetime.now(timezone.utc)


def make_token(services: Services, username: str, scope: str = "write", days: int = 30) -> str:
    with services.sessions.begin() as db:
        user = db.scalar(select(User).where(User.username == username))
        return tokens.create_token(db, user, f"test {scope}", scope, days, now())[1]


@contextmanager
def live_app(db_url: str, tmp, config: dict | None = None):
    """Seeded services and the app on a thread; yields (base_url, services)."""
    from webui import create_app
    settings = Settings(database_url=db_url, broker_url=f"sqla+sqlite:///{tmp / 'broker.sqlite3'}",
                        data_dir=tmp / "data", base_url="http://127.0.0.1")
    services = Services.from_settings(settings)
    if services.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with services.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with services.sessions.begin() as db:
        seed_demo(db, services.runtime.store, tmp / "logins.json")
    app = create_app(services=services, config={"LAJUR_API_LIMIT": "100000/minute", **(config or {})})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would drown the report
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", services
    finally:
        httpd.shutdown()
        services.dispose()
