"""The HTTP POST of an event webhook, with the receiver's address checked at send time.

A subscription's URL is typed by an office administrator, so the server must not become a
way to reach what only it can reach (the database, Redis, the metadata service of a cloud,
the office LAN): the host name is resolved right before the POST, every address it resolves
to must be public (`ipaddress.is_global`), and the connection goes to that checked address
(the name is not resolved a second time, so a DNS answer that changes between check and
connect - "DNS rebinding" - cannot slip a private address in). HTTPS still verifies the
certificate against the host name (SNI and hostname check through urllib3's
`server_hostname`/`assert_hostname`). Private and loopback receivers are allowed only when
the installation says so (`LAJUR_WEBHOOK_ALLOW_PRIVATE=1`, tests and a LAN-only gateway).

Redirects are not followed (a 3xx is a failed attempt), the connect and read timeouts are
short, and at most `MAX_RESPONSE_BYTES` of the answer is read (the log keeps its status).
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL = 500


class Refused(Exception):
    """The URL or its address may not be sent to (permanent: retrying cannot help)."""


@dataclass(frozen=True)
class Answer:
    status: int
    duration_ms: int


def check_url(url: str) -> str:
    """The URL a subscription may have (checked when it is saved): http(s), a host, no
    credentials, at most 500 characters. Raise Refused saying why."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise Refused(f"a URL of at most {MAX_URL} characters without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("an http:// or https:// URL with a host name")
    if parts.username or parts.password:
        raise Refused("no user name or password in the URL (the signature authenticates Lajur)")
    try:
        parts.port
    except ValueError:
        raise Refused("the port is not a number from 1 to 65535") from None
    return url


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to; Refused if the name does not resolve to public addresses only."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise ConnectionError(f"cannot resolve {host}")
    if not allow_private:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise Refused(f"{host} resolves to a private or loopback address ({private[0]}); "
                          "not allowed on this installation (LAJUR_WEBHOOK_ALLOW_PRIVATE)")
    return addresses[0]


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, connect_timeout: float,
         read_timeout: float) -> Answer:
    """POST `body` to `url` at its checked address; return the status and the time taken.
    Raises Refused (the address may not be used) or OSError/urllib3 errors (network)."""
    parts = urlsplit(check_url(url))
    host, https = parts.hostname, parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = resolve(host, port, allow_private)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    if https:
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1,
                                           server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
    started = time.monotonic()
    try:
        response = pool.urlopen("POST", target, body=body, headers={**headers, "Host": host_header},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        try:
            response.read(MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            response.release_conn()
            response.close()
        return Answer(response.status, int((time.monotonic() - started) * 1000))
    finally:
        pool.close()
