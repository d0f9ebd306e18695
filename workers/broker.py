"""The Redis transport, with one fix: losing Redis must not stop the worker.

When the connection to Redis breaks while the worker holds messages it has not yet
acknowledged (with acks_late: every send under way), Celery drops the broken connection
and reconnects. Two things then go wrong with kombu 5.7 / Celery 5.7, both found by the
Redis restart test in tests/test_workers.py:

- closing the old channel tries to push the unacknowledged messages back to Redis, and
- a send that finishes after the reconnect acknowledges its message on the old channel;

the old channel is already detached from its connection, so both fail with an
AttributeError (`'NoneType' object has no attribute 'hostname'` / `'client'`), which
Celery does not count as a connection error: "Unrecoverable error", the worker stops.

Here a push back that fails, and an ack or reject on a detached channel, are logged and
dropped instead. Nothing is lost by that: the messages are only doorbells. If Redis kept
them, they are still in its unacked set and come back after the visibility timeout; if
Redis lost them, the tick re-enqueues every delivery still pending or whose lease ran out
(`engine.deadlines.due_for_enqueue`). Either way the claim in the database makes any
extra copy a no-op.

Used for `redis://` broker URLs through `broker_transport` (workers/app.py).

Private internals, pinned: kombu offers no public hook for this (the failure is inside
its Redis QoS), so this subclasses `kombu.transport.redis.QoS` and reads its `_delivered`
map. kombu and celery are pinned exactly in pyproject.toml (5.7.0, the versions the Redis
restart test passed with), and `tests/test_workers.py::test_kombu_hook_guard` fails loudly
when an upgrade moves what this relies on: the versions, the overridden methods'
signatures, the class attributes that plug the QoS in, and `_delivered`. To upgrade: run
that guard and `test_exactly_once_through_a_redis_restart` on the new versions (and drop
this module if kombu fixed the bug), then move both pins.
"""
from __future__ import annotations

import logging

from kombu.transport import redis, virtual

log = logging.getLogger("lajur.workers")


def _detached(channel) -> bool:
    transport = getattr(channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


class QoS(redis.QoS):
    def ack(self, delivery_tag):
        if _detached(self.channel):
            log.warning("ack of message %s dropped: its broker connection is gone", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # forget it locally only
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if _detached(self.channel):
            log.warning("reject of message %s dropped: its broker connection is gone", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue=requeue)

    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except Exception as exc:  # noqa: BLE001 - any failure here must not take the worker down
            log.warning("broker unreachable: %d unacknowledged message(s) not put back (%r); the tick "
                        "re-enqueues their deliveries", len(self._delivered), exc)
            self._delivered.clear()
            return None


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
