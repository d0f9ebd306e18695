"""Reminder messages and the outside channels that carry them (email, webhook).

Rendering is pure: the facts of a reminder go in, a subject and a text in the recipient's
language come out (Bahasa Indonesia by default, English if the user prefers). Sending uses
smtplib and requests directly (`Sender`); claims, leases, retries and the bookkeeping live
in `engine.outbox`, so a channel here only has to say "sent", "not started" or raise.

Email is at-least-once by nature: the mail server's "250 accepted" and our commit of
"sent" cannot be one transaction, so a worker killed between the two leaves a delivery
that is sent again once its lease runs out. The window is kept as small as SMTP allows:
- the point of no return is the end of DATA; everything before it (connect, EHLO, MAIL,
  RCPT) is undone by RSET, and right before DATA the outbox's gate re-checks that the step
  is still open and renews the lease for the time the server may take to accept;
- `Sender.send` returns as soon as DATA is accepted, the outbox commits "sent" at once, and
  QUIT (which a slow server may take its time over) comes only after that commit;
- the wait for the server's reply to DATA gets most of the lease (not the 10 s of the other
  commands), so a slow server is waited for rather than given up on and sent to again.
Every copy carries the same identity - email: `Message-ID: <lajur-delivery-<id>@<sender
domain>>` and `X-Lajur-Delivery: <id>`; webhook: `X-Lajur-Delivery: <id>` and `delivery_id`
in the signed JSON - so a receiver that keeps the ids it has seen drops the second copy.
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
from typing import Callable
from email.message import EmailMessage
from email.utils import formatdate
from zoneinfo import ZoneInfo

import requests

from .config import Settings
from .webhooks import signing, transport

CHANNELS = ("inapp", "email", "webhook")
OUTSIDE_CHANNELS = ("email", "webhook")

_TITLES = {
    "id": {"warn": "Peringatan", "breach": "Lewat Mutu Baku", "repeat": "Masih terlambat", "test": "Uji notifikasi"},
    "en": {"warn": "Warning", "breach": "Past its time standard", "repeat": "Still overdue",
           "test": "Test notification"},
}


def configured_channels(settings: Settings, webhook: bool) -> tuple[str, ...]:
    """The channels this installation can carry: in the app always; email only with an SMTP
    server (LAJUR_SMTP_HOST); webhook only when the office (or the installation) has one.
    A channel not configured is neither offered in the profile nor used for a send, so no
    send fails in the background for want of a server."""
    return tuple(c for c in CHANNELS if c == "inapp" or (c == "email" and settings.smtp_host)
                 or (c == "webhook" and webhook))


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
    just_late = overdue and abs(facts.minutes_left) < 1  # never "overdue by 0 min"
    if locale == "en":
        when = "just past its due time" if just_late else f"overdue by {span}" if overdue else f"{span} left"
        subject = f"[Lajur] {title}: {facts.step} — {when}"
        text = (f"Dear {facts.recipient_name},\n\n"
                f"The step \"{facts.step}\" of the SOP \"{facts.sop}\" ({facts.office}) is not done yet.\n"
                f"Case: {facts.subject} (instance #{facts.instance_id})\n"
                f"Due (time standard {mb} of office time): {due}\n"
                + ("It has just passed its due time.\n" if just_late else
                   f"{'Overdue by' if overdue else 'Time left'}: {span} of office time\n") +
                f"Open: {facts.link}\n\n"
                f"An automatic message from Lajur.\n")
    else:
        when = "baru saja lewat batas waktu" if just_late else f"terlambat {span}" if overdue else f"sisa {span}"
        subject = f"[Lajur] {title}: {facts.step} — {when}"
        text = (f"Yth. {facts.recipient_name},\n\n"
                f"Langkah \"{facts.step}\" pada SOP \"{facts.sop}\" ({facts.office}) belum selesai.\n"
                f"Perihal: {facts.subject} (instance #{facts.instance_id})\n"
                f"Batas waktu (Mutu Baku {mb} jam kerja): {due}\n"
                + ("Batas waktunya baru saja terlewati.\n" if just_late else
                   f"{'Terlambat' if overdue else 'Sisa waktu'}: {span} jam kerja\n") +
                f"Buka: {facts.link}\n\n"
                f"Pesan otomatis dari Lajur.\n")
    return subject, text


@dataclass(frozen=True)
class ReturnFacts:
    """What a "step sent back" message says: the step, who sent it back from which step, why."""

    step: str
    sop: str
    subject: str
    instance_id: int
    by_name: str
    from_step: str
    reason: str | None
    due_at: datetime | None
    link: str
    recipient_name: str
    pooled: bool = False  # no previous holder in the lane: the lane's members are told
    timezone: str = "Asia/Jakarta"


def render_returned(facts: ReturnFacts, locale: str) -> tuple[str, str]:
    """Subject and text of a step sent back (rework), written as a short letter."""
    locale = locale_of(locale)
    due = format_local(facts.due_at, facts.timezone, locale)
    if locale == "en":
        subject = f"[Lajur] Returned for revision: {facts.step} — {facts.subject}"
        who = "It is back in your lane's pool." if facts.pooled else "It is back in your inbox."
        text = (f"Dear {facts.recipient_name},\n\n"
                f"{facts.by_name} returned the step \"{facts.step}\" of \"{facts.subject}\" ({facts.sop}) "
                f"at \"{facts.from_step}\". {who}\n\n"
                f"Reason: {facts.reason or '(no reason given)'}\n\n"
                f"Please revise and send it again by {due} (office hours).\n"
                f"Open: {facts.link}\n")
    else:
        subject = f"[Lajur] Dikembalikan untuk diperbaiki: {facts.step} — {facts.subject}"
        who = "Langkah ini kembali ke kelompok lajur Anda." if facts.pooled else \
            "Langkah ini kembali ke Kotak Tugas Anda."
        text = (f"Yth. {facts.recipient_name},\n\n"
                f"{facts.by_name} mengembalikan langkah \"{facts.step}\" untuk \"{facts.subject}\" "
                f"({facts.sop}) pada langkah \"{facts.from_step}\". {who}\n\n"
                f"Alasan: {facts.reason or '(tanpa alasan)'}\n\n"
                f"Mohon diperbaiki dan dikirim lagi paling lambat {due} (jam kerja).\n"
                f"Buka: {facts.link}\n")
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

    def __init__(self, message: str, permanent: bool = False, status_code: int | None = None,
                 duration_ms: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status_code, self.duration_ms = status_code, duration_ms  # an event webhook's answer, for its log


class NotSent(Exception):
    """Raised by a send's gate: this message must not go out (`status` says why: its step
    closed - "cancelled" - or another attempt owns the delivery now - "stale")."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


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
    event_id: str | None = None        # an event webhook (engine/webhooks/): its `webhook-id`
    office_id: int | None = None       # the event's office


def _test_delay() -> None:
    """LAJUR_TEST_SEND_DELAY: seconds to sleep before the network send, so a test's
    kill -9 lands mid-send. Unset in production."""
    delay = float(os.environ.get("LAJUR_TEST_SEND_DELAY", "0") or 0)
    if delay > 0:
        time.sleep(delay)


def email_message(settings: Settings, out: Outgoing) -> EmailMessage:
    """The email of a delivery; its Message-ID is the delivery's, the same on every attempt."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = out.to_address
    msg["Subject"] = out.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<lajur-delivery-{out.delivery_id}@{settings.smtp_from.split('@')[-1]}>"
    msg["X-Lajur-Delivery"] = str(out.delivery_id)
    msg.set_content(out.text)
    return msg


class Sender:
    """The outside channels of one batch of sends: one SMTP session (opened on first use,
    reused for each message, QUIT at `close`) and one HTTP session.

    `send(out, gate)` does everything that can be undone, then calls `gate()` right before
    the point of no return (SMTP DATA, the webhook POST); a gate that raises NotSent stops
    the message there. `send` returns once the message is accepted, or raises SendError.
    """

    def __init__(self, settings: Settings, timeout: float, accept_timeout: float):
        self.settings, self.timeout, self.accept_timeout = settings, timeout, accept_timeout
        self._smtp: smtplib.SMTP | None = None
        self._down: str | None = None  # the mail server could not be reached: the batch's other emails wait too
        self._http: requests.Session | None = None

    def send(self, out: Outgoing, gate: Callable[[], None]):
        """Send one message; an event webhook returns the receiver's answer (status, time)."""
        _test_delay()
        if out.event_id is not None:
            return send_event(self.settings, out, gate)
        if out.channel == "email":
            self._email(out, gate)
        elif out.channel == "webhook":
            self._webhook(out, gate)
        else:
            raise SendError(f"unknown channel {out.channel!r}", permanent=True)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        if self._http is not None:
            self._http.close()
            self._http = None

    # ---- email ---------------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
        try:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _rset(self) -> None:
        """End the mail transaction without sending; a session that cannot is dropped."""
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _envelope(self, out: Outgoing) -> smtplib.SMTP:
        """An SMTP session with MAIL and RCPT accepted for `out`; a reused session the server
        closed meanwhile is opened again (nothing was sent on it for this message)."""
        for fresh in ((False, True) if self._smtp is not None else (True,)):
            if fresh:
                self._drop()
                self._smtp = self._connect()
            smtp = self._smtp
            try:
                code, reply = smtp.mail(self.settings.smtp_from)
            except smtplib.SMTPServerDisconnected:
                if fresh:
                    raise
                continue
            if code != 250:
                self._rset()
                raise SendError(f"MAIL FROM refused: {code} {reply!r}"[:900], permanent=500 <= code < 600)
            code, reply = smtp.rcpt(out.to_address)
            if code not in (250, 251):
                self._rset()
                raise SendError(f"recipient refused: {code} {reply!r}"[:900], permanent=500 <= code < 600)
            return smtp
        raise AssertionError("unreachable")

    def _email(self, out: Outgoing, gate: Callable[[], None]) -> None:
        s = self.settings
        if not s.smtp_host:
            raise SendError("SMTP is not configured (LAJUR_SMTP_HOST)")
        if not out.to_address:
            raise SendError("recipient has no email address", permanent=True)
        if self._down:
            raise SendError(self._down)
        data = email_message(s, out).as_bytes()
        try:
            smtp = self._envelope(out)
            try:
                gate()
            except NotSent:
                self._rset()
                raise
            smtp.sock.settimeout(self.accept_timeout)  # a slow server is waited for, not sent to twice
            code, reply = smtp.data(data)
            smtp.sock.settimeout(self.timeout)
        except (SendError, NotSent):
            raise
        except smtplib.SMTPDataError as exc:
            raise SendError(f"message refused: {exc.smtp_code} {exc.smtp_error!r}"[:900],
                            permanent=500 <= exc.smtp_code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            reached = self._smtp is not None
            self._drop()
            error = f"SMTP {s.smtp_host}:{s.smtp_port}: {exc!r}"[:900]
            if not reached:
                self._down = error
            raise SendError(error) from None

    # ---- webhook -------------------------------------------------------------------------
    def _webhook(self, out: Outgoing, gate: Callable[[], None]) -> None:
        if not out.url or not out.secret:
            raise SendError("no webhook URL/secret configured for this office", permanent=True)
        body = json.dumps(out.payload, ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Lajur-Signature": sign(out.secret, body),
                   "X-Lajur-Delivery": str(out.delivery_id), "User-Agent": "Lajur-webhook/1"}
        gate()
        if self._http is None:
            self._http = requests.Session()
        try:
            response = self._http.post(out.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendError(f"webhook {out.url}: {exc.__class__.__name__}: {exc}"[:900]) from None
        if response.status_code >= 300:
            # 4xx other than 408/429 will not get better by retrying
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
            raise SendError(f"webhook {out.url}: HTTP {response.status_code}", permanent=permanent)


def send_event(settings: Settings, out: Outgoing, gate: Callable[[], None]):
    """POST an event webhook (engine/webhooks/), signed as Standard Webhooks says; the
    address is checked at send time (engine/webhooks/transport.py)."""
    if not out.secret:
        raise SendError(out.text or "no signing secret", permanent=True)
    body = json.dumps(out.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Lajur-webhook/1",
               **signing.headers(out.secret, out.event_id, int(time.time()), body)}
    gate()
    timeout = settings.webhook_timeout_seconds
    try:
        answer = transport.post(out.url, body, headers, allow_private=settings.webhook_allow_private,
                                connect_timeout=min(5.0, timeout), read_timeout=timeout)
    except transport.Refused as exc:
        raise SendError(str(exc)[:900], permanent=True) from None
    except Exception as exc:  # network: refused, reset, timed out, TLS; a later attempt may work
        raise SendError(f"{exc.__class__.__name__}: {exc}"[:900]) from None
    if not 200 <= answer.status < 300:
        # a redirect is not followed; 4xx other than 408/429 will not get better by retrying
        permanent = 300 <= answer.status < 500 and answer.status not in (408, 429)
        raise SendError(f"HTTP {answer.status}", permanent=permanent, status_code=answer.status,
                        duration_ms=answer.duration_ms)
    return answer
