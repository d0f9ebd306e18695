"""Reminder messages and the outside channels that carry them (email, webhook).

Rendering is pure: the facts of a reminder go in, a subject and a text in the recipient's
language come out (Bahasa Indonesia by default, English if the user prefers). Sending uses
smtplib and requests directly; retries, leases and exactly-once bookkeeping live in
`engine.deadlines`, so a channel here only has to say "sent" or raise.

The one window for a duplicate: a worker that dies (kill -9, power loss, OOM) after the
mail server or webhook receiver accepted the message but before `finish` committed
"sent" leaves the delivery in "sending"; when its lease runs out the tick hands it to
another worker, which sends it again. No protocol closes that window (the receiver's
"accepted" and our commit cannot be one transaction). What narrows it: it is only the
few milliseconds between the reply and the commit, and every copy carries the same
identity - email: `Message-ID: <lajur-delivery-<id>@<sender domain>>` and
`X-Lajur-Delivery: <id>`; webhook: `X-Lajur-Delivery: <id>` and `delivery_id` in the
signed JSON - so a receiver that keeps the ids it has seen (a mail server deduplicating on
Message-ID, a Telegram/WhatsApp gateway on delivery_id) drops the second copy. A worker
killed before the reply (the usual case: the send is what takes time) sends nothing
twice: the test `test_exactly_once_after_kill_9_of_the_worker_mid_send` checks it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from zoneinfo import ZoneInfo

import requests

from .config import Settings

CHANNELS = ("inapp", "email", "webhook")
OUTSIDE_CHANNELS = ("email", "webhook")

_TITLES = {
    "id": {"warn": "Peringatan", "breach": "Lewat Mutu Baku", "repeat": "Masih terlambat", "test": "Uji notifikasi"},
    "en": {"warn": "Warning", "breach": "Past its time standard", "repeat": "Still overdue",
           "test": "Test notification"},
}


def locale_of(user_locale: str | None) -> str:
    return "en" if (user_locale or "").lower().startswith("en") else "id"


def parse_channels(text: str | None) -> set[str]:
    """A user's channel preference ("inapp,email"); unknown names are ignored."""
    return {c.strip() for c in (text or "").split(",") if c.strip() in CHANNELS}


def format_duration(minutes: float, locale: str) -> str:
    """`95` -> "1 jam 35 menit" / "1 h 35 min"."""
    total = max(0, int(round(minutes)))
    hours, mins = divmod(total, 60)
    if locale == "en":
        if hours and mins:
            return f"{hours} h {mins} min"
        return f"{hours} h" if hours else f"{mins} min"
    if hours and mins:
        return f"{hours} jam {mins} menit"
    return f"{hours} jam" if hours else f"{mins} menit"


def format_local(dt: datetime | None, tz: str, locale: str) -> str:
    if dt is None:
        return "-"
    local = dt.astimezone(ZoneInfo(tz))
    zone = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}.get(tz, local.strftime("%Z"))
    if locale == "en":
        return local.strftime(f"%a %d %b %Y %H:%M {zone}")
    days = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
    months = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
              "November", "Desember"]
    return f"{days[local.weekday()]}, {local.day} {months[local.month - 1]} {local.year} {local:%H:%M} {zone}"


@dataclass(frozen=True)
class Facts:
    """What a reminder is about; `minutes_left` is negative when overdue (working minutes)."""

    level: str
    seq: int
    step: str
    sop: str
    office: str
    instance_id: int
    subject: str
    due_at: datetime | None
    minutes_left: float
    mutu_baku_minutes: float | None
    link: str
    recipient_name: str
    timezone: str = "Asia/Jakarta"


def _overdue(facts: Facts) -> bool:
    return facts.minutes_left < 0 or facts.level in ("breach", "repeat")


def render(facts: Facts, locale: str) -> tuple[str, str]:
    """Subject and plain text of a reminder in `locale` ('id' or 'en')."""
    locale = locale_of(locale)
    title = _TITLES[locale].get(facts.level, facts.level)
    overdue = _overdue(facts)
    span = format_duration(abs(facts.minutes_left), locale)
    due = format_local(facts.due_at, facts.timezone, locale)
    mb = format_duration(facts.mutu_baku_minutes or 0, locale)
    if locale == "en":
        when = f"overdue by {span}" if overdue else f"{span} left"
        subject = f"[Lajur] {title}: {facts.step} — {when}"
        text = (f"Dear {facts.recipient_name},\n\n"
                f"The step \"{facts.step}\" of the SOP \"{facts.sop}\" ({facts.office}) is not done yet.\n"
                f"Case: {facts.subject} (instance #{facts.instance_id})\n"
                f"Due (time standard {mb} of office time): {due}\n"
                f"{'Overdue by' if overdue else 'Time left'}: {span} of office time\n"
                f"Open: {facts.link}\n\n"
                f"An automatic message from Lajur.\n")
    else:
        when = f"terlambat {span}" if overdue else f"sisa {span}"
        subject = f"[Lajur] {title}: {facts.step} — {when}"
        text = (f"Yth. {facts.recipient_name},\n\n"
                f"Langkah \"{facts.step}\" pada SOP \"{facts.sop}\" ({facts.office}) belum selesai.\n"
                f"Perihal: {facts.subject} (instance #{facts.instance_id})\n"
                f"Batas waktu (Mutu Baku {mb} jam kerja): {due}\n"
                f"{'Terlambat' if overdue else 'Sisa waktu'}: {span} jam kerja\n"
                f"Buka: {facts.link}\n\n"
                f"Pesan otomatis dari Lajur.\n")
    return subject, text


def webhook_payload(facts: Facts, recipient: dict, text: str, event: str = "reminder") -> dict:
    """The JSON a Telegram bot or WhatsApp gateway receives."""
    payload = {
        "event": event, "level": facts.level, "seq": facts.seq, "office": facts.office, "process": facts.sop,
        "instance_id": facts.instance_id, "subject": facts.subject, "step": facts.step,
        "due_at": facts.due_at.isoformat() if facts.due_at else None,
        "recipient": recipient, "link": facts.link, "text": text,
    }
    if _overdue(facts):
        payload["overdue_minutes"] = round(max(0.0, -facts.minutes_left), 1)
    else:
        payload["minutes_left"] = round(facts.minutes_left, 1)
    return payload


# ---- channels ------------------------------------------------------------------------------

def sign(secret: str, body: bytes) -> str:
    """The X-Lajur-Signature header value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


class SendError(Exception):
    """A channel could not deliver; `permanent` says retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One claimed delivery, as plain data: what a channel needs and nothing from a session."""

    delivery_id: int
    attempt: int
    channel: str
    subject: str
    text: str
    to_address: str | None = None      # email
    url: str | None = None             # webhook
    secret: str | None = None          # webhook
    payload: dict = field(default_factory=dict)


def _test_delay() -> None:
    """LAJUR_TEST_SEND_DELAY: seconds to sleep before the network send, so a test's
    kill -9 lands mid-send. Unset in production."""
    delay = float(os.environ.get("LAJUR_TEST_SEND_DELAY", "0") or 0)
    if delay > 0:
        time.sleep(delay)


def send(settings: Settings, out: Outgoing, timeout: float = 10.0) -> None:
    """Deliver `out` over its channel or raise SendError."""
    _test_delay()
    if out.channel == "email":
        send_email(settings, out, timeout)
    elif out.channel == "webhook":
        send_webhook(out, timeout)
    else:
        raise SendError(f"unknown channel {out.channel!r}", permanent=True)


def send_email(settings: Settings, out: Outgoing, timeout: float = 10.0) -> None:
    if not settings.smtp_host:
        raise SendError("SMTP is not configured (LAJUR_SMTP_HOST)")
    if not out.to_address:
        raise SendError("recipient has no email address", permanent=True)
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = out.to_address
    msg["Subject"] = out.subject
    msg["Date"] = formatdate(localtime=False)
    # Stable per delivery: a receiver can drop the copy a crash between send and commit could make.
    msg["Message-ID"] = f"<lajur-delivery-{out.delivery_id}@{settings.smtp_from.split('@')[-1]}>"
    msg["X-Lajur-Delivery"] = str(out.delivery_id)
    msg.set_content(out.text)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"recipient refused: {exc.recipients}", permanent=True) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc!r}"[:900]) from None


def send_webhook(out: Outgoing, timeout: float = 10.0) -> None:
    if not out.url or not out.secret:
        raise SendError("no webhook URL/secret configured for this office", permanent=True)
    body = json.dumps(out.payload, ensure_ascii=False, sort_keys=True).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Lajur-Signature": sign(out.secret, body),
               "X-Lajur-Delivery": str(out.delivery_id), "User-Agent": "Lajur-webhook/1"}
    try:
        response = requests.post(out.url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise SendError(f"webhook {out.url}: {exc.__class__.__name__}: {exc}"[:900]) from None
    if response.status_code >= 300:
        # 4xx other than 408/429 will not get better by retrying
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise SendError(f"webhook {out.url}: HTTP {response.status_code}", permanent=permanent)
