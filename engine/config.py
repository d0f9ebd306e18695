"""Settings from the environment, with the embedded default (SQLite, SQL broker)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    data_dir: Path
    base_url: str
    # Outgoing mail (reminders). No host: email deliveries fail visibly instead of vanishing.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "lajur@localhost"
    smtp_starttls: bool = False
    # Fallback outgoing webhook when an office has no `office_webhook` row (secret from env only).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # Event webhooks (engine/webhooks/): private/loopback receivers only if the installation
    # allows them; the seconds a receiver has to connect and to answer.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 10.0
    # The deadline tick and delivery reliability knobs.
    tick_seconds: float = 1.0
    send_lease_seconds: float = 60.0    # a claimed send not finished by then is reclaimed
    requeue_after_seconds: float = 30.0  # a queued send not started by then is enqueued again
    max_attempts: int = 8
    backoff_seconds: float = 5.0        # first retry delay; doubles, capped at backoff_max
    backoff_max_seconds: float = 900.0
    queue: str = "lajur"
    metrics_token: str | None = None    # /metrics needs `Authorization: Bearer <it>`; unset: loopback only
    heartbeat_seconds: float = 10.0     # workers and beats write theirs this often (engine/heartbeat.py)
    # Deploying code: a script task is Python with the server's rights. Off by default; the
    # system administrator may enable it for the installation (LAJUR_ALLOW_SCRIPTS=1).
    allow_scripts: bool = False
    # What deploy accepts (see README, "How a process folder is written").
    max_bpmn_bytes: int = 2 * 1024 * 1024
    max_mutu_baku_days: float = 30.0   # working days of 450 minutes

    @property
    def deploy_limits(self) -> "DeployLimits":
        return DeployLimits(allow_scripts=self.allow_scripts, max_bytes=self.max_bpmn_bytes,
                            max_mutu_baku_minutes=self.max_mutu_baku_days * 450)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("LAJUR_DATA_DIR", ROOT / "var")).resolve()
        db = env.get("LAJUR_DATABASE_URL", f"sqlite:///{data_dir / 'lajur.sqlite3'}")
        broker = env.get("LAJUR_BROKER_URL", f"sqla+sqlite:///{data_dir / 'broker.sqlite3'}")
        return cls(database_url=db, broker_url=broker, data_dir=data_dir,
                   base_url=env.get("LAJUR_BASE_URL", "http://127.0.0.1:5000"),
                   smtp_host=env.get("LAJUR_SMTP_HOST") or None,
                   smtp_port=int(env.get("LAJUR_SMTP_PORT", "25")),
                   smtp_user=env.get("LAJUR_SMTP_USER") or None,
                   smtp_password=env.get("LAJUR_SMTP_PASSWORD") or None,
                   smtp_from=env.get("LAJUR_SMTP_FROM", "lajur@localhost"),
                   smtp_starttls=_flag(env.get("LAJUR_SMTP_STARTTLS")),
                   webhook_url=env.get("LAJUR_WEBHOOK_URL") or None,
                   webhook_secret=env.get("LAJUR_WEBHOOK_SECRET") or None,
                   webhook_allow_private=_flag(env.get("LAJUR_WEBHOOK_ALLOW_PRIVATE")),
                   webhook_timeout_seconds=float(env.get("LAJUR_WEBHOOK_TIMEOUT_SECONDS", "10")),
                   tick_seconds=float(env.get("LAJUR_TICK_SECONDS", "1.0")),
                   send_lease_seconds=float(env.get("LAJUR_SEND_LEASE_SECONDS", "60")),
                   requeue_after_seconds=float(env.get("LAJUR_REQUEUE_AFTER_SECONDS", "30")),
                   max_attempts=int(env.get("LAJUR_MAX_ATTEMPTS", "8")),
                   backoff_seconds=float(env.get("LAJUR_BACKOFF_SECONDS", "5")),
                   backoff_max_seconds=float(env.get("LAJUR_BACKOFF_MAX_SECONDS", "900")),
                   queue=env.get("LAJUR_QUEUE", "lajur"),
                   metrics_token=env.get("LAJUR_METRICS_TOKEN") or None,
                   heartbeat_seconds=float(env.get("LAJUR_HEARTBEAT_SECONDS", "10")),
                   allow_scripts=_flag(env.get("LAJUR_ALLOW_SCRIPTS")),
                   max_bpmn_bytes=int(env.get("LAJUR_MAX_BPMN_BYTES", str(2 * 1024 * 1024))),
                   max_mutu_baku_days=float(env.get("LAJUR_MAX_MUTU_BAKU_DAYS", "30")))


@dataclass(frozen=True)
class DeployLimits:
    """What a deploy accepts; the defaults are the installation's defaults."""

    allow_scripts: bool = False
    max_bytes: int = 2 * 1024 * 1024
    max_mutu_baku_minutes: float = 30 * 450
