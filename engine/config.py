"""Settings from the environment, with the embedded default (SQLite, SQL broker)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    data_dir: Path
    base_url: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("LAJUR_DATA_DIR", ROOT / "var")).resolve()
        db = env.get("LAJUR_DATABASE_URL", f"sqlite:///{data_dir / 'lajur.sqlite3'}")
        broker = env.get("LAJUR_BROKER_URL", f"sqla+sqlite:///{data_dir / 'broker.sqlite3'}")
        return cls(database_url=db, broker_url=broker, data_dir=data_dir,
                   base_url=env.get("LAJUR_BASE_URL", "http://127.0.0.1:5000"))
