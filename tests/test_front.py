"""`lajur web` as deployed: nginx in front of 2 gunicorn workers, on PostgreSQL.

Slow clients must not take the site offline (issue 12, item 1: four sockets sending headers
one line every 2 s starved plain gunicorn), and sign-in throttling must hold across both
workers and per client address (item 6: counted per process, 19 wrong passwords passed
before the first refusal; 30 usernames from one address were never throttled).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from .test_web import PASSWORD, users  # noqa: F401  (fixture)
from .test_workers import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def backend():
    return "postgresql"


@pytest.fixture
def served(services, users, tmp_path):  # noqa: F811
    if not Path("/usr/sbin/nginx").exists():
        from .conftest import service_missing
        service_missing("nginx", "/usr/sbin/nginx is not installed (scripts/test.sh installs it)")
    port = free_port()
    data_dir = tmp_path / "served"
    env = dict(os.environ, LAJUR_DATABASE_URL=services.settings.database_url, LAJUR_DATA_DIR=str(data_dir),
               LAJUR_SECRET_KEY="front-test", LAJUR_BASE_URL=f"http://127.0.0.1:{port}")
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (tmp_path / "web.log").read_text()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("lajur web did not answer /healthz")
        yield base, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_slow_clients_do_not_starve_the_app(served):
    base, port = served
    stop = threading.Event()
    opened = []

    def slow_client():
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        opened.append(sock)
        try:
            sock.sendall(b"GET /login HTTP/1.1\r\n")
            for i in range(6):  # one header line every 2 s
                if stop.wait(2):
                    return
                sock.sendall(f"X-Slow-{i}: {'a' * 20}\r\n".encode())
        except OSError:
            pass  # nginx may close a client that is too slow: that is fine

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(50)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        assert len(opened) == 50
        timings = []
        for _ in range(8):
            t0 = time.monotonic()
            response = requests.get(f"{base}/healthz", timeout=3)
            timings.append(time.monotonic() - t0)
            assert response.status_code == 200 and response.text == "ok"
            time.sleep(0.5)
        assert max(timings) < 2.0, timings
        # a real page (a worker, the database) answers too while the slow clients hold their sockets
        assert requests.get(f"{base}/login", timeout=3).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        for sock in opened:
            sock.close()


class SourceAddress(HTTPAdapter):
    """Connect from a chosen loopback address (127.0.0.x), i.e. as another client."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(source: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddress(source))
    return session


def try_login(session: requests.Session, base: str, username: str, password: str, **headers) -> int:
    """A fresh sign-in the way a browser does it (GET the form for its CSRF token, then POST)."""
    session.cookies.clear()
    page = session.get(f"{base}/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = session.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token},
                            headers=headers, allow_redirects=False, timeout=10)
    return response.status_code


def test_login_throttling_is_shared_by_both_workers_and_counts_per_address(served):
    base, _port = served
    # per account: 10 wrong passwords within a minute pass (401), the 11th attempt is refused even with
    # the right password; each attempt is a new connection, so the two gunicorn workers share the work
    one = client_from("127.0.0.2")
    codes = [try_login(one, base, "dpmk.sekdin", "salah-sandi-1") for _ in range(10)]
    assert codes == [401] * 10
    assert try_login(one, base, "dpmk.sekdin", PASSWORD) == 429
    # another account signs in from another address meanwhile
    assert try_login(client_from("127.0.0.3"), base, "dpmk.kasubbag", PASSWORD) == 302

    # per address (password spraying): 30 usernames from one address, a forged X-Forwarded-For on each
    spray = client_from("127.0.0.4")
    codes = [try_login(spray, base, f"pegawai{i}", "Rahasia123!", **{"X-Forwarded-For": f"10.9.0.{i}"})
             for i in range(30)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    # ...which does not lock the sprayed address's neighbours out
    assert try_login(client_from("127.0.0.5"), base, "dpmk.penerima", PASSWORD) == 302
