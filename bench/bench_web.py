"""The staff web app under load: gunicorn (2 workers) over PostgreSQL (issue 4's targets).

1. HTTP task completions per second: the Kasubbag completes step 2 of N DPMK instances
   by posting the step form (CSRF token, session cookie, form coercion, validation,
   engine complete, redirect), from 4 client threads. Target: >= 150 completions/s.
   References in the same run: the same completions called directly on the engine
   service in-process (one thread), and GET /healthz through the same gunicorn.
2. p95 of GET /inbox (tabs with counts + the first page of tasks) with 100,000 open
   tasks in the database, for a staff member and for a supervisor. Target: <= 50 ms.

Run: .venv/bin/python bench/bench_web.py [--completions 600] [--open 100000]
"""
from __future__ import annotations

import argparse
import http.client
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from bench.common import (backend_cpu_seconds, machine, percentile, process_cpu_seconds, scratch_database,  # noqa: E402
                          summary, tree_cpu_seconds)
from engine import attachments  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import HumanTask, User  # noqa: E402
from engine.services import Services  # noqa: E402
from tests.sopdata import DPMK, STEP_DATA  # noqa: E402

PASSWORD = "bench-sandi-123"
STEP2_FORM = {"action": "claim_complete", "paraf_kabid_ada": "on", "klasifikasi_arsip": "400.14.1.3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_open_tasks(services: Services, count: int) -> None:
    """`count` open tasks with their instances, by two INSERT ... SELECT generate_series statements.

    Spread over every lane of both offices; a third assigned to the lane's demo user; due
    times from 3 days ago to 4 days ahead, so the overdue tab has real work to count.
    """
    with services.engine.begin() as conn:
        lanes = conn.execute(text(
            "SELECT g.id, g.office_id, g.name, min(ug.user_id), "
            "(SELECT pd.latest_version_id FROM process_definition pd WHERE pd.office_id = g.office_id "
            " ORDER BY pd.id LIMIT 1) FROM office_group g JOIN user_group ug ON ug.group_id = g.id "
            "GROUP BY g.id, g.office_id, g.name ORDER BY g.id")).all()
        base = conn.execute(text("SELECT coalesce(max(id), 0) FROM process_instance")).scalar() + 1
        per_lane = count // len(lanes)
        for n, (group_id, office_id, lane, user_id, version_id) in enumerate(lanes):
            size = per_lane if n < len(lanes) - 1 else count - per_lane * (len(lanes) - 1)
            start = base + n * per_lane
            params = {"start": start, "stop": start + size - 1, "office": office_id, "version": version_id,
                      "group": group_id, "lane": lane, "user": user_id}
            conn.execute(text(
                "INSERT INTO process_instance (id, office_id, version_id, subject, status, state, lock_version, "
                "started_at) SELECT i, :office, :version, 'Berita massal ' || i, 'running', '{}', 1, "
                "now() - (i % 5000) * interval '1 minute' FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) i"), params)
            conn.execute(text(
                "INSERT INTO human_task (task_guid, instance_id, office_id, version_id, bpmn_id, name, lane, "
                "group_id, state, assignee_id, mutu_baku_minutes, ready_at, due_at) "
                "SELECT 'bench-' || i, i, :office, :version, 'step1', 'Langkah massal', :lane, :group, 'ready', "
                "CASE WHEN i % 3 = 0 THEN :user END, 60, now() - (i % 5000) * interval '1 minute', "
                "now() + ((i * 7919) % 10080 - 4320) * interval '1 minute' FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) i"),
                params)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('process_instance', 'id'), "
                          "(SELECT max(id) FROM process_instance))"))
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def start_gunicorn(url: str, data_dir: Path, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """gunicorn -w 2 serving the app on a free port, answering /healthz; returns it and its base URL."""
    port = free_port()
    env = dict(os.environ, LAJUR_DATABASE_URL=url, LAJUR_DATA_DIR=str(data_dir), LAJUR_SECRET_KEY="bench",
               LAJUR_BASE_URL="http://127.0.0.1", **env_extra)
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level",
               "warning", "webui.wsgi:app"]
    print("server:", " ".join(command[1:]))
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    return server, base


def seeded(url: str, tmp: Path) -> tuple[Services, dict[str, int], str, Path]:
    """Migrate, seed the demo (passwords: PASSWORD) and store one evidence photo of the Penerima.
    Returns the services, username -> id, the photo's sha256 and the data directory."""
    upgrade(url)
    data_dir = tmp / "data"
    settings = Settings(database_url=url, broker_url="memory://", data_dir=data_dir, base_url="http://127.0.0.1")
    services = Services.from_settings(settings)
    fast = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    with services.sessions.begin() as session:
        seed_demo(session, services.runtime.store, data_dir / "logins.json")
        for user in session.scalars(select(User)):
            user.password_hash = fast
    with services.sessions() as session:
        users = {u.username: u.id for u in session.scalars(select(User))}
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buf, "PNG")
    buf.seek(0)
    with services.sessions.begin() as session:
        sha = attachments.store(session, session.get(User, users["dpmk.penerima"]), "foto.png", buf, data_dir).sha256
    return services, users, sha, data_dir


def prepare_step2(services: Services, users: dict[str, int], n: int, sha: str, label: str) -> list[int]:
    """N DPMK instances whose step 1 is done in-process; return their open step 2 task ids."""
    rt = services.runtime
    data = dict(STEP_DATA[(DPMK, "step1")], bukti_multimedia=[sha])
    ids = []
    for i in range(n):
        iid = rt.start(users["dpmk.penerima"], DPMK, f"{label} {i}")
        with services.sessions() as session:
            task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid,
                                                                HumanTask.state == "ready"))
        rt.complete(users["dpmk.penerima"], task_id, data)
        with services.sessions() as session:
            ids.append(session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid,
                                                                 HumanTask.state == "ready")))
    return ids


def signed_in(base: str, username: str) -> tuple[requests.Session, str]:
    """A client session signed in through the login form; return it and its CSRF token."""
    s = requests.Session()
    page = s.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    page = s.get(f"{base}/inbox").text
    return s, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


class LeanClient:
    """A keep-alive HTTP/1.1 client on http.client for the throughput run.

    `requests` costs ~2-3 ms of CPU per POST on this machine, and the load generator shares
    the two cores with gunicorn and PostgreSQL; office PCs are other machines. The session
    cookie and CSRF token come from a sign-in through the real login form (`signed_in`);
    cookies the server sets later are kept."""

    def __init__(self, base: str, session: requests.Session, token: str):
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port))
        self.cookies = {c.name: c.value for c in session.cookies}
        self.token = token

    def post_form(self, path: str, form: dict) -> tuple[int, str]:
        body = urlencode({**form, "csrf_token": self.token})
        self.conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())})
        response = self.conn.getresponse()
        response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers.get("Location", "")


def http_completions(base: str, task_ids: list[int], threads: int) -> float:
    clients = [LeanClient(base, *signed_in(base, "dpmk.kasubbag")) for _ in range(threads)]
    chunks = [task_ids[i::threads] for i in range(threads)]
    failures = []

    def run(k: int) -> None:
        for task_id in chunks[k]:
            status, location = clients[k].post_form(f"/tasks/{task_id}", STEP2_FORM)
            if status != 302 or not location.endswith("/inbox"):
                failures.append((task_id, status, location))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    elapsed = time.perf_counter() - t0
    assert not failures, failures[:3]
    return len(task_ids) / elapsed


def healthz_rate(base: str, seconds: float, threads: int) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        s = requests.Session()
        while time.perf_counter() < stop:
            assert s.get(f"{base}/healthz").status_code == 200
            done[k] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return sum(done) / (time.perf_counter() - t0)


def inbox_latency(base: str, username: str, path: str, n: int) -> list[float]:
    client, _token = signed_in(base, username)
    for _ in range(5):
        client.get(f"{base}{path}")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(f"{base}{path}")
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and "inbox-panel" in r.text
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--completions", type=int, default=600)
    ap.add_argument("--open", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300, help="inbox requests per user")
    ap.add_argument("--threads", type=int, default=4, help="client threads for the throughput runs")
    args = ap.parse_args()
    print(f"machine: {machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    with scratch_database("lajur_bench_web") as url, tempfile.TemporaryDirectory() as tmp:
        services, users, sha, data_dir = seeded(url, Path(tmp))
        t0 = time.perf_counter()
        web_ids = prepare_step2(services, users, args.completions, sha, "Bench web")
        ref_ids = prepare_step2(services, users, args.completions, sha, "Bench engine")
        print(f"prepared {2 * args.completions} instances at step 2 in {time.perf_counter() - t0:.1f} s")

        server, base = start_gunicorn(url, data_dir)
        try:
            # warm both workers (imports, spec cache) before measuring
            signed_in(base, "dpmk.kasubbag")
            healthz_rate(base, 1.0, args.threads)

            cpu0 = (process_cpu_seconds(), tree_cpu_seconds(server.pid), backend_cpu_seconds(url))
            web_rate = http_completions(base, web_ids, args.threads)
            cpu1 = (process_cpu_seconds(), tree_cpu_seconds(server.pid), backend_cpu_seconds(url))
            client_ms, web_ms, pg_ms = ((b - a) * 1000 / len(web_ids) for a, b in zip(cpu0, cpu1))
            t0 = time.perf_counter()
            for task_id in ref_ids:
                services.runtime.complete(users["dpmk.kasubbag"], task_id,
                                          {"paraf_kabid_ada": True, "klasifikasi_arsip": "400.14.1.3"}, claim=True)
            engine_rate = len(ref_ids) / (time.perf_counter() - t0)
            health = healthz_rate(base, 5.0, args.threads)
            print(f"\n[1] {args.completions} step completions (DPMK step 2, Kasubbag), {args.threads} client threads")
            print(f"    HTTP form posts via gunicorn -w 2   : {web_rate:8.1f} completions/s   "
                  f"target >= 150/s {'MET' if web_rate >= 150 else 'MISSED'}")
            print(f"    CPU per completion: gunicorn workers {web_ms:.2f} ms, PostgreSQL {pg_ms:.2f} ms, "
                  f"the load generator (4 threads) {client_ms:.2f} ms; 2 cores give "
                  f"{2000 / (web_ms + pg_ms + client_ms):.0f}/s for that sum, {2000 / (web_ms + pg_ms):.0f}/s "
                  "without the load generator")
            print(f"    reference: engine in-process, 1 thread: {engine_rate:8.1f} completions/s")
            print(f"    reference: GET /healthz via gunicorn  : {health:8.1f} requests/s")

            t0 = time.perf_counter()
            load_open_tasks(services, args.open)
            with services.sessions() as session:
                open_count = session.scalar(text("SELECT count(*) FROM human_task WHERE state = 'ready'"))
            print(f"\n[2] inbox with {open_count:,} open tasks in the database (loaded in "
                  f"{time.perf_counter() - t0:.1f} s), {args.requests} sequential requests each")
            worst = 0.0
            for username, path in [("dpmk.penerima", "/inbox"), ("dpmk.penerima", "/inbox?tab=group"),
                                   ("dpmk.kasubbag", "/inbox?tab=overdue"), ("dinsos.ketua", "/inbox?tab=group")]:
                values = inbox_latency(base, username, path, args.requests)
                worst = max(worst, percentile(values, 0.95))
                print(f"    {username:15s} GET {path:20s} {summary(values)}")
            print(f"    worst p95 {worst:.1f} ms: target <= 50 ms {'MET' if worst <= 50 else 'MISSED'}")
            hz = inbox_latency_healthz(base, args.requests)
            print(f"    reference: GET /healthz (no database)    {summary(hz)}")
        finally:
            server.terminate()
            server.wait(10)
            services.dispose()


def inbox_latency_healthz(base: str, n: int) -> list[float]:
    s = requests.Session()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.get(f"{base}/healthz")
        out.append((time.perf_counter() - t0) * 1000)
    return out


if __name__ == "__main__":
    threading.excepthook = lambda a: print("thread error:", a.exc_value)
    main()
