"""Published means published: where an item was put online, and whether it is really there.

A step declares in its process folder where it records a publication
(`spiffworkflow:property` `publishedUrl`: the field holding the website URL,
`publishedTitle`: the field, in the step's data or earlier, holding the title that must
appear on the page, `socialLinks`: the field holding the social media links). Completing the
step records one `publication_check` row per link in the step's transaction: the website URL
`pending`, each social media link `recorded` with its channel (read from the link's host).

The website URL is then fetched outside any database transaction (a Celery task after the
completion commits, or the retry button, which fetches before it opens its transaction), and
the outcome is written through the unit of work: whether the server answered (HTTP status),
whether the title appears on the page, and why not. A failed check is shown on the instance
page to the operator and the office's supervisors, who may retry it.

The fetch is careful with what the operator typed: http(s) only; the host is resolved and
every address must be public (no loopback, private, link-local, reserved ranges), and the
connection goes to the checked address (no second lookup to rebind); redirects are followed
by hand, at most 5, each checked the same way; connect and read time out; at most 1 MB is
read. An installation may allow private addresses (LAJUR_PUBLISH_ALLOW_PRIVATE=1: tests, an
intranet website).
"""
from __future__ import annotations

import html
import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import urllib3
from lxml import html as lxml_html
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import access
from .errors import Conflict, NotFound
from .models import HumanTask, PublicationCheck
from .uow import UnitOfWork

MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = "Lajur-publication-check/1"
CHANNELS = (("instagram.com", "Instagram"), ("facebook.com", "Facebook"), ("fb.watch", "Facebook"),
            ("youtube.com", "YouTube"), ("youtu.be", "YouTube"), ("x.com", "X/Twitter"),
            ("twitter.com", "X/Twitter"), ("tiktok.com", "TikTok"))


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False  # every address may be fetched
    allowed: tuple = ()  # networks allowed besides the public internet
    timeout: float = 10.0  # the whole check, and each connect/read
    max_bytes: int = MAX_BYTES

    @classmethod
    def of(cls, settings) -> "Policy":
        text = (settings.publish_allow_private or "").strip()
        everything = text.lower() in ("1", "true", "yes", "on")
        networks = () if everything else tuple(ipaddress.ip_network(n.strip(), strict=False)
                                               for n in text.split(",") if n.strip())
        return cls(everything, networks, settings.publish_timeout_seconds)

    def permits(self, ip) -> bool:
        return self.allow_private or ip.is_global or any(ip in net for net in self.allowed)


@dataclass(frozen=True)
class Outcome:
    status: str  # ok|failed
    http_status: int | None
    title_found: bool | None
    detail: str


class Refused(Exception):
    pass


def channel_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    for domain, name in CHANNELS:
        if host == domain or host.endswith("." + domain):
            return name
    return "Lainnya"


def _addresses(host: str, port: int, policy: Policy) -> list[str]:
    """The host's addresses, all of them public unless the installation allows private ones."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"nama host tidak ditemukan / host not found ({host})") from exc
    found = list(dict.fromkeys(info[4][0] for info in infos))
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not policy.permits(ip):
            raise Refused(f"alamat privat ditolak / private address refused ({host} -> {ip})")
    return found


def _normal(text: str) -> str:
    return " ".join(html.unescape(text).split()).casefold()


def _page_text(body: bytes) -> str:
    try:
        doc = lxml_html.fromstring(body)
    except (ValueError, lxml_html.etree.ParserError):
        return body.decode("utf-8", "replace")
    for bad in doc.xpath("//script|//style"):
        bad.drop_tree()
    title = " ".join(doc.xpath("//title//text()"))
    return title + " " + doc.text_content()


def fetch(url: str, expected_title: str | None, policy: Policy) -> Outcome:
    """Fetch `url` (following checked redirects) and look for `expected_title` on the page."""
    deadline = time.monotonic() + policy.timeout
    try:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Refused("hanya alamat http(s) / only http(s) URLs")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = _addresses(parts.hostname, port, policy)[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise Refused("waktu habis / timed out")
            timeout = urllib3.Timeout(connect=min(5.0, left), read=left)
            kwargs = {"server_hostname": parts.hostname, "assert_hostname": parts.hostname} \
                if parts.scheme == "https" else {}
            pool_cls = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
            # connect to the checked address; the Host header (and TLS SNI) name the host
            with pool_cls(address, port, timeout=timeout, retries=False, maxsize=1, **kwargs) as pool:
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
                response = pool.urlopen("GET", path, headers={"Host": host_header, "User-Agent": USER_AGENT,
                                                              "Accept": "text/html,*/*"},
                                        redirect=False, preload_content=False, retries=False)
                try:
                    if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                        url = urljoin(url, response.headers["Location"])
                        continue
                    body = b""
                    while len(body) < policy.max_bytes:
                        if time.monotonic() > deadline:
                            raise Refused("waktu habis / timed out")
                        chunk = response.read(64 * 1024)
                        if not chunk:
                            break
                        body += chunk
                finally:
                    response.release_conn()
            if response.status != 200:
                return Outcome("failed", response.status, None,
                               f"halaman tidak ditemukan / page not found (HTTP {response.status})")
            if not expected_title:
                return Outcome("ok", 200, None, "halaman menjawab / the page answered")
            found = _normal(expected_title) in _normal(_page_text(body[:policy.max_bytes]))
            if not found:
                return Outcome("failed", 200, False, "judul tidak ada di halaman / title not on the page")
            return Outcome("ok", 200, True, "judul ditemukan / title found")
        raise Refused(f"terlalu banyak pengalihan / more than {MAX_REDIRECTS} redirects")
    except Refused as exc:
        return Outcome("failed", None, None, str(exc)[:500])
    except ValueError:  # a URL urllib cannot read (a bad port, brackets)
        return Outcome("failed", None, None, "alamat tidak valid / invalid URL")
    except urllib3.exceptions.NewConnectionError:
        return Outcome("failed", None, None, "tidak dapat dihubungi / could not connect")
    except (urllib3.exceptions.TimeoutError, socket.timeout):
        return Outcome("failed", None, None, "waktu habis / timed out")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Outcome("failed", None, None, f"tidak dapat dihubungi / could not connect ({type(exc).__name__})")


# ---- recording (inside a completion) --------------------------------------------------------

def _text(value) -> str | None:
    return value.strip()[:300] if isinstance(value, str) and value.strip() else None


def record(uow: UnitOfWork, spec: dict, *, office_id: int, instance_id: int, task_id: int, data: dict,
           now: datetime) -> None:
    """The publication rows of a completed step (`spec`: the step's "published" metadata)."""
    base = {"office_id": office_id, "instance_id": instance_id, "human_task_id": task_id, "attempts": 0,
            "recorded_at": now}
    url = data.get(spec.get("url") or "")
    if isinstance(url, str) and url.strip():
        uow.publication({**base, "channel": "Website", "url": url.strip()[:2000],
                         "expected_title": _text(data.get(spec.get("title") or "")), "status": "pending"})
    links = data.get(spec.get("social") or "")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, str) and link.strip():
            uow.publication({**base, "channel": channel_of(link), "url": link.strip()[:2000],
                             "expected_title": None, "status": "recorded"})


# ---- checking (outside the completion) ------------------------------------------------------

def checks_of(session: Session, instance_id: int) -> list[PublicationCheck]:
    return list(session.scalars(select(PublicationCheck).where(PublicationCheck.instance_id == instance_id)
                                .order_by(PublicationCheck.id)))


def pending_of(session: Session, instance_id: int) -> list[int]:
    return list(session.scalars(select(PublicationCheck.id).where(
        PublicationCheck.instance_id == instance_id, PublicationCheck.status == "pending")))


def run_check(sessions, check_id: int, policy: Policy, now, actor: access.Actor | None = None) -> Outcome:
    """Fetch one website check and record its outcome. The fetch runs between two short
    transactions, never inside one: the first claims the row (a retry by `actor`, who must be
    allowed to, or the worker taking a pending one), the second records the outcome."""
    with sessions.begin() as session:
        row = session.get(PublicationCheck, check_id)
        if row is None or row.channel != "Website":
            raise NotFound(f"publication check {check_id} does not exist")
        if actor is not None:
            completed_by = session.scalar(select(HumanTask.completed_by_id).where(HumanTask.id == row.human_task_id))
            access.check_retry_publication(actor, row.office_id, completed_by)
        url, title = row.url, row.expected_title
        uow = UnitOfWork.on(session)
        uow.publication_claimed(check_id, retry=actor is not None)
        uow.flush()
    outcome = fetch(url, title, policy)
    with sessions.begin() as session:
        uow = UnitOfWork.on(session)
        uow.publication_checked(check_id, {"status": outcome.status, "http_status": outcome.http_status,
                                           "title_found": outcome.title_found, "detail": outcome.detail,
                                           "checked_at": now() if callable(now) else now})
        uow.flush()
    return outcome


def run_pending(sessions, policy: Policy, now, limit: int = 10) -> dict[int, str]:
    """The worker's round: check the website links recorded since the last round."""
    with sessions() as session:
        ids = list(session.scalars(select(PublicationCheck.id).where(PublicationCheck.status == "pending")
                                   .order_by(PublicationCheck.id).limit(limit)))
    done = {}
    for check_id in ids:
        try:
            done[check_id] = run_check(sessions, check_id, policy, now).status
        except Conflict:  # another worker took it
            continue
    return done
