"""Published means published: the website link a step records is fetched (outside the step's
transaction) from a real local HTTP server: found, not found, title missing, slow, and a
redirect to a private address refused; social media links recorded per channel."""
import ipaddress
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import select

from engine import published
from engine.access import Actor
from engine.errors import Forbidden
from engine.models import PublicationCheck

from .helpers import work_step
from .sopdata import DINSOS, DPMK, STEP_DATA

TITLE = STEP_DATA[(DPMK, "step1")]["judul_berita"]
LOCAL_ONLY = published.Policy(allowed=(ipaddress.ip_network("127.0.0.1/32"),), timeout=2.0)


class _Site(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/berita/ada":
            body = f"<html><head><title>DPMK</title></head><body><h1>{TITLE}</h1></body></html>".encode()
            self._send(200, body)
        elif self.path == "/berita/tanpa-judul":
            self._send(200, b"<html><body><h1>Berita lain</h1><script>var t='" + TITLE.encode() + b"'</script></body></html>")
        elif self.path == "/berita/lambat":
            time.sleep(4)
            self._send(200, TITLE.encode())
        elif self.path.startswith("/pindah"):
            target = unquote(self.path.split("=", 1)[1])
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
        elif self.path == "/berita/besar":
            self._send(200, b"<html><body>" + b"x" * (3 * 1024 * 1024) + TITLE.encode() + b"</body></html>")
        else:
            self._send(404, b"not found")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@contextmanager
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_outcomes_against_a_local_server():
    with site() as base:
        found = published.fetch(f"{base}/berita/ada", TITLE, LOCAL_ONLY)
        assert (found.status, found.http_status, found.title_found) == ("ok", 200, True)
        missing = published.fetch(f"{base}/berita/tidak-ada", TITLE, LOCAL_ONLY)
        assert (missing.status, missing.http_status) == ("failed", 404) and "404" in missing.detail
        untitled = published.fetch(f"{base}/berita/tanpa-judul", TITLE, LOCAL_ONLY)  # only inside a script
        assert (untitled.status, untitled.http_status, untitled.title_found) == ("failed", 200, False)
        started = time.monotonic()
        slow = published.fetch(f"{base}/berita/lambat", TITLE, LOCAL_ONLY)
        assert slow.status == "failed" and "timed out" in slow.detail and time.monotonic() - started < 3.5
        big = published.fetch(f"{base}/berita/besar", TITLE, LOCAL_ONLY)  # only the first 1 MB is read
        assert big.status == "failed" and big.title_found is False
        followed = published.fetch(f"{base}/pindah?to={quote(base + '/berita/ada', safe='')}", TITLE, LOCAL_ONLY)
        assert followed.status == "ok"
        for private in ("http://127.0.0.2/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                        "http://[::1]/", "http://192.168.1.1/", "http://0.0.0.0/"):
            refused = published.fetch(f"{base}/pindah?to={quote(private, safe='')}", TITLE, LOCAL_ONLY)
            assert refused.status == "failed" and "private address refused" in refused.detail, (private, refused)
        # the default policy refuses the local server itself
        assert "private address refused" in published.fetch(f"{base}/berita/ada", TITLE, published.Policy()).detail
        assert "only http(s)" in published.fetch("file:///etc/passwd", TITLE, LOCAL_ONLY).detail
        closed = published.fetch("http://127.0.0.1:1/", TITLE, LOCAL_ONLY)  # nothing listens there
        assert closed.status == "failed" and "could not connect" in closed.detail


def test_channel_of_social_links():
    assert published.channel_of("https://www.instagram.com/p/abc/") == "Instagram"
    assert published.channel_of("https://youtu.be/xyz") == "YouTube"
    assert published.channel_of("https://x.com/dinsos/status/1") == "X/Twitter"
    assert published.channel_of("https://evil-instagram.com/") == "Lainnya"


def _checks(services, iid):
    with services.sessions() as session:
        return published.checks_of(session, iid)


def test_website_step_records_and_checks_and_retries(services, demo):
    rt = services.runtime
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    with site() as base:
        iid = rt.start(demo["dpmk.penerima"], DPMK, "Terbit")
        for step in ("step1", "step2", "step3"):
            work_step(services, demo, DPMK, iid, step)
        work_step(services, demo, DPMK, iid, "step4",
                  data={"url_berita": f"{base}/berita/belum-tayang", "tanggal_tayang": "2026-11-21"})
        (check,) = _checks(services, iid)
        assert (check.channel, check.status, check.expected_title) == ("Website", "pending", TITLE)
        assert published.run_pending(services.sessions, LOCAL_ONLY, now) == {check.id: "failed"}
        (check,) = _checks(services, iid)
        assert (check.status, check.http_status, check.attempts) == ("failed", 404, 1)
        assert published.run_pending(services.sessions, LOCAL_ONLY, now) == {}  # failed: not retried by itself
        # another clerk (neither the operator who recorded it nor a supervisor) may not retry it
        with pytest.raises(Forbidden):
            published.run_check(services.sessions, check.id, LOCAL_ONLY, now,
                                actor=Actor(demo["dpmk.penerima"], check.office_id, frozenset({"staff"})))
        # the page goes up (the operator fixed the link on the website); the operator retries
        with services.sessions.begin() as session:
            session.execute(PublicationCheck.__table__.update().values(url=f"{base}/berita/ada"))
        outcome = published.run_check(services.sessions, check.id, LOCAL_ONLY, now,
                                      actor=Actor(demo["dpmk.operator"], check.office_id, frozenset({"staff"})))
        assert outcome.status == "ok"
        (check,) = _checks(services, iid)
        assert (check.status, check.title_found, check.attempts) == ("ok", True, 2)


def test_social_links_recorded_per_channel(services, demo):
    rt = services.runtime
    iid = rt.start(demo["dinsos.petugas"], DINSOS, "Medsos")
    for step in ("step1", "step2", "step3"):
        work_step(services, demo, DINSOS, iid, step)
    work_step(services, demo, DINSOS, iid, "step4", data={
        **STEP_DATA[(DINSOS, "step4")],
        "tautan_medsos": ["https://www.instagram.com/p/bansos/", "https://www.youtube.com/watch?v=1"]})
    rows = [(c.channel, c.status) for c in _checks(services, iid)]
    assert rows == [("Website", "pending"), ("Instagram", "recorded"), ("YouTube", "recorded")]
    with services.sessions() as session:
        assert session.scalar(select(PublicationCheck.expected_title).where(
            PublicationCheck.channel == "Website")) == STEP_DATA[(DINSOS, "step2")]["judul_rilis"]
