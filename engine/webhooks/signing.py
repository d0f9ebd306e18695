"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each request carries `webhook-id` (the event's id: the same on every attempt and on "send
again", so a receiver keeps the ids it has seen and drops a second copy), `webhook-timestamp`
(seconds since the epoch, at the attempt: a receiver refuses old ones, say older than five
minutes, against replays) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">`, keyed with the secret's decoded bytes (engine/webhooks/secrets.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from .secrets import key_bytes


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key_bytes(secret), signed, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, msg_id, timestamp, body)}


def verify(secret: str, msg_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True if one of the space-separated signatures in `header` is ours (the receiver's check)."""
    try:
        expected = signature(secret, msg_id, int(timestamp), body)
    except ValueError:
        return False
    return any(hmac.compare_digest(expected, s) for s in (header or "").split())
