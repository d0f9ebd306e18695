"""Real Celery worker and beat processes, real Redis, real SMTP (aiosmtpd), a real HTTP
webhook receiver: reminders arrive exactly once through kills and outages.

Each test gets its own Redis key prefix and queue name, so parallel test workers never
share messages. A shortened tick, lease and backoff keep the whole file well under 90 s.
"""
from __future__ import annotations

import email
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from engine.models import Deadline, Delivery, User
from engine.notify import verify

from .conftest import REDIS_URL, service_missing
from .helpers import open_task
from .sopdata import DPMK

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")
SECRET = "uji-rahasia-webhook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---- real outside parts ------------------------------------------------------------------------

class SmtpSink:
    """An aiosmtpd server on a fixed port that can be started late (SMTP down, then up)."""

    def __init__(self, port: int):
        self.port, self.messages, self.controller = port, [], None

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def start(self):
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    sink = SmtpSink(free_port())
    yield sink
    sink.stop()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        srv.requests.append((self.headers.get("X-Lajur-Signature"), body))
        status = srv.statuses.pop(0) if srv.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.requests, server.statuses = [], [500]  # the first call fails, then 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/lajur"
    yield server
    server.shutdown()


@pytest.fixture
def redis_broker():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    return REDIS_URL


class Celery:
    """Worker and beat subprocesses, each in its own process group (kill -9 takes the whole worker)."""

    def __init__(self, tmp_path: Path, env: dict):
        self.tmp, self.env, self.procs = tmp_path, env, []

    def start(self, kind: str, **extra_env) -> subprocess.Popen:
        env = {**os.environ, **self.env, **{k: str(v) for k, v in extra_env.items()}}
        if kind == "worker":
            args = [CELERY, "-A", "workers.app", "worker", "--pool", "prefork", "-c", "2", "--loglevel", "INFO",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"w{len(self.procs)}@%h"]
        else:
            args = [CELERY, "-A", "workers.app", "beat", "--loglevel", "INFO"]
        log = open(self.tmp / f"{kind}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill9(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.tmp.glob("*.log")))


@pytest.fixture
def celery_env(tmp_path, settings, smtp, webhook):
    tag = uuid.uuid4().hex[:10]
    return {
        "LAJUR_DATABASE_URL": settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "celery-data"),
        "LAJUR_QUEUE": f"lajur-test-{tag}", "LAJUR_BROKER_PREFIX": f"lajur-test-{tag}:",
        "LAJUR_TICK_SECONDS": "0.5", "LAJUR_SEND_LEASE_SECONDS": "6", "LAJUR_REQUEUE_AFTER_SECONDS": "2",
        "LAJUR_BACKOFF_SECONDS": "0.5", "LAJUR_BACKOFF_MAX_SECONDS": "1", "LAJUR_VISIBILITY_TIMEOUT": "8",
        "LAJUR_SMTP_HOST": "127.0.0.1", "LAJUR_SMTP_PORT": str(smtp.port), "LAJUR_SMTP_FROM": "lajur@bantulkab.go.id",
        "LAJUR_WEBHOOK_URL": webhook.url, "LAJUR_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def celery(tmp_path, celery_env):
    procs = Celery(tmp_path, celery_env)
    yield procs
    procs.stop()


# ---- a reminder falling due now ----------------------------------------------------------------

def reminder_due_now(services, demo, channels: str) -> int:
    """Start a DPMK instance, claim step 1, and make its warning fall due now; return the task id."""
    with services.sessions.begin() as session:
        session.get(User, demo["dpmk.penerima"]).notify_channels = channels
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Uji pengingat")
    task = open_task(services, iid)
    services.runtime.claim(demo["dpmk.penerima"], task.id)
    with services.sessions.begin() as session:
        session.execute(update(Deadline).where(Deadline.human_task_id == task.id, Deadline.level == "breach")
                        .values(status="cancelled"))
        session.execute(update(Deadline).where(Deadline.human_task_id == task.id, Deadline.level == "warn")
                        .values(due_at=datetime.now(timezone.utc)))
    return task.id


def deliveries(services, task_id):
    with services.sessions() as session:
        return {d.channel: d for d in session.scalars(select(Delivery).where(Delivery.human_task_id == task_id))}


def _delivery_ids(messages):
    return [m["X-Lajur-Delivery"] for m in messages]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_exactly_once_after_kill_9_of_the_worker_mid_send(services, demo, celery, smtp, redis_broker):
    smtp.start()
    slow = {"LAJUR_BROKER_URL": redis_broker, "LAJUR_TEST_SEND_DELAY": "3"}
    worker = celery.start("worker", **slow)
    celery.start("beat", LAJUR_BROKER_URL=redis_broker)
    task_id = reminder_due_now(services, demo, "inapp,email")
    try:
        wait_for(lambda: deliveries(services, task_id).get("email") is not None
                 and deliveries(services, task_id)["email"].status == "sending", 20, "the send to start")
        celery.kill9(worker)  # mid-send: the SMTP conversation has not begun
        assert smtp.messages == []
        celery.start("worker", **slow)
        sent = wait_for(lambda: (d := deliveries(services, task_id)["email"]).status == "sent" and d, 30,
                        "the reclaimed send")
        time.sleep(2)  # let any redelivered copy of the message run (it must be skipped)
    except AssertionError:
        print(celery.logs())
        raise
    assert sent.attempts == 2  # the killed attempt and the one that sent
    assert _delivery_ids(smtp.messages) == [str(sent.id)]
    assert smtp.messages[0]["Subject"].startswith("[Lajur] Peringatan: Menerima berita")
    assert smtp.messages[0]["To"] == "dpmk.penerima@example.bantulkab.go.id"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_smtp_down_then_up_and_webhook_500_then_200(services, demo, celery, smtp, webhook, redis_broker):
    celery.start("worker", LAJUR_BROKER_URL=redis_broker)
    celery.start("beat", LAJUR_BROKER_URL=redis_broker)
    task_id = reminder_due_now(services, demo, "inapp,email,webhook")
    try:
        hook = wait_for(lambda: (d := deliveries(services, task_id).get("webhook")) and d.status == "sent" and d,
                        20, "the webhook delivery")
        mail = wait_for(lambda: (d := deliveries(services, task_id)["email"]).attempts >= 3 and d, 20,
                        "several failed SMTP attempts")
        assert mail.status in ("pending", "sending") and mail.sent_at is None
        smtp.start()  # the mail server comes back
        mail = wait_for(lambda: (d := deliveries(services, task_id)["email"]).status == "sent" and d, 20,
                        "the email after SMTP came back")
        time.sleep(1.5)
    except AssertionError:
        print(celery.logs())
        raise
    # webhook: one failure (500), one success, both signed; the same delivery both times
    assert hook.attempts == 2 and len(webhook.requests) == 2
    for signature, body in webhook.requests:
        assert verify(SECRET, body, signature)
    payloads = [json.loads(body) for _, body in webhook.requests]
    assert {p["delivery_id"] for p in payloads} == {hook.id}
    p = payloads[-1]
    assert p["event"] == "reminder" and p["level"] == "warn" and p["recipient"]["username"] == "dpmk.penerima"
    assert p["link"].endswith(f"/tasks/{task_id}") and "minutes_left" in p and p["text"].startswith("Yth.")
    # email: failed attempts recorded, then exactly one message
    assert mail.attempts >= 3 and _delivery_ids(smtp.messages) == [str(mail.id)]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_embedded_default_sql_broker_and_sqlite(services, demo, celery, smtp, tmp_path):
    """No Redis: kombu's SQL transport over SQLite, prefork workers, the SQLite database."""
    smtp.start()
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    celery.start("worker", LAJUR_BROKER_URL=broker)
    celery.start("beat", LAJUR_BROKER_URL=broker)
    task_id = reminder_due_now(services, demo, "inapp,email")
    try:
        mail = wait_for(lambda: (d := deliveries(services, task_id).get("email")) and d.status == "sent" and d,
                        30, "the email over the SQL broker")
        time.sleep(1.5)
    except AssertionError:
        print(celery.logs())
        raise
    assert mail.attempts == 1 and _delivery_ids(smtp.messages) == [str(mail.id)]
