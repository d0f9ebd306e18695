"""Event webhooks through the real Celery worker and beat processes (both databases: Redis
with PostgreSQL, kombu's SQL transport with SQLite): a completed step reaches a real
receiver once, signed, after a 500 and a retry; the worker decrypts the secret with the
installation's key from LAJUR_WEBHOOK_KEY."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from engine.accounts import office_by_code
from engine.models import Delivery
from engine.webhooks import subscriptions

from .helpers import open_task
from .sopdata import DPMK, STEP_DATA
from .test_workers import celery, celery_env, redis_broker, smtp, wait_for, webhook  # noqa: F401 - fixtures
from .webhook_receiver import receiver, verify


@pytest.fixture
def hook():
    with receiver([500]) as server:
        yield server


def test_a_completed_step_reaches_the_receiver_through_the_worker(services, demo, celery, hook, backend, tmp_path,
                                                                   monkeypatch, request):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("LAJUR_WEBHOOK_KEY", key)  # this process seals with it, the worker unseals with it
    if backend == "postgresql":
        broker = request.getfixturevalue("redis_broker")
    else:
        broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    with services.sessions.begin() as session:
        sub, secret = subscriptions.add(session, services.settings, office_by_code(session, "dpmk").id, hook.url,
                                        ["step.completed"], "", None, datetime.now(timezone.utc))
        sub_id = sub.id
    env = {"LAJUR_BROKER_URL": broker, "LAJUR_WEBHOOK_KEY": key, "LAJUR_WEBHOOK_ALLOW_PRIVATE": "1"}
    celery.start("worker", **env)
    celery.start("beat", **env)
    rt = services.runtime
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Uji webhook lewat worker")
    task = open_task(services, iid)
    rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])

    def delivered():
        with services.sessions() as session:
            d = session.scalar(select(Delivery).where(Delivery.subscription_id == sub_id))
            return d if d is not None and d.status == "sent" else None
    try:
        delivery = wait_for(delivered, 40, "the webhook delivery")
        time.sleep(1.5)  # nothing more arrives
    except AssertionError:
        print(celery.logs())
        raise
    assert delivery.attempts == 2 and len(hook.requests) == 2  # the 500, then the retry
    (h1, b1, _), (h2, b2, _) = hook.requests
    assert h1["webhook-id"] == h2["webhook-id"] == delivery.event_id
    event = verify(secret, h2, b2)
    assert event["type"] == "step.completed" and event["data"]["task_id"] == task.id
    with services.sessions() as session:
        lines = subscriptions.log(session, sub_id, None)
    assert [(line.attempt, line.status_code) for line in lines] == [(2, 200), (1, 500)]
