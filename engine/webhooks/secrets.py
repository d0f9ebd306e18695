"""A subscription's signing secret: generated here, shown once, kept encrypted.

HMAC signing needs the secret itself, so it cannot be stored hashed the way API tokens are
(engine/tokens.py). It is stored encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag,
from the `cryptography` package) with the installation's *webhook key*, which lives outside
the database: `LAJUR_WEBHOOK_KEY` (a Fernet key; set it on every node of a multi-node
installation), else the file `webhook_key` in the data directory, made once with mode 0600.
A database dump or a backup archive alone therefore does not give the secrets away; the
secret is decrypted only by the worker, right before it signs a delivery. Losing the key
means every subscription needs a new secret (`lajur webhooks rotate`); deliveries meanwhile
fail with a clear error in the log, they are not sent unsigned.

Secrets follow the Standard Webhooks format: `whsec_` + base64 of 32 random bytes; the HMAC
key is those bytes.
"""
from __future__ import annotations

import base64
import os
import secrets as _random
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..config import Settings

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def hint(secret: str) -> str:
    """What the pages show of a secret: its first characters after the prefix."""
    return secret[len(PREFIX):len(PREFIX) + 6] + "…"


def key_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret (the decoded bytes); any other text is used as is."""
    if secret.startswith(PREFIX):
        return base64.b64decode(secret[len(PREFIX):])
    return secret.encode()


class SecretUnavailable(Exception):
    """The stored secret cannot be decrypted with this installation's webhook key."""


def _key(settings: Settings, create: bool) -> bytes | None:
    env = os.environ.get("LAJUR_WEBHOOK_KEY")
    if env:
        return env.strip().encode()
    path = Path(settings.data_dir) / "webhook_key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key())
    return path.read_bytes().strip()


def seal(settings: Settings, secret: str) -> str:
    """The secret encrypted with the webhook key (made on first use)."""
    return Fernet(_key(settings, create=True)).encrypt(secret.encode()).decode()


def unseal(settings: Settings, box: str) -> str:
    key = _key(settings, create=False)
    if key is None:
        raise SecretUnavailable("the webhook key is missing (LAJUR_WEBHOOK_KEY or <data dir>/webhook_key)")
    try:
        return Fernet(key).decrypt(box.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnavailable("the webhook secret cannot be decrypted with this installation's webhook key; "
                                "give the subscription a new secret") from None
