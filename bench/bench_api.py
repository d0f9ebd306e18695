"""Step completions through the REST API vs the web form, on gunicorn (2 workers) + PostgreSQL.

The Kasubbag completes step 2 of DPMK instances from 4 client threads: through the API
(POST /api/v1/tasks/{id}/complete with a bearer token and JSON) and, as the reference in
the same run, through the web form (bench_web's client: session cookie, CSRF token, form
post, redirect). The two run alternately in rounds so a swing of this shared VM's speed
hits both. Target: the API at least as fast as the form. The token's rate limit counts in
Redis when it runs (as in production with a Redis broker), else in worker memory.

Run: .venv/bin/python bench/bench_api.py [--completions 600] [--rounds 3]
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.bench_web import (healthz_rate, http_completions, prepare_step2, seeded, signed_in,  # noqa: E402
                             start_gunicorn)
from bench.common import (backend_cpu_seconds, machine, process_cpu_seconds, scratch_database,  # noqa: E402
                          tree_cpu_seconds)
from engine import tokens  # noqa: E402
from engine.models import User  # noqa: E402

STEP2 = {"data": {"paraf_kabid_ada": True, "klasifikasi_arsip": "400.14.1.3"}}
REDIS = "redis://127.0.0.1:6379/14"


class ApiClient:
    """A keep-alive HTTP/1.1 client (http.client, like bench_web's LeanClient) with a bearer token."""

    def __init__(self, base: str, token: str):
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port))
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post_json(self, path: str, body: dict) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=json.dumps(body), headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def api_completions(base: str, token: str, task_ids: list[int], threads: int) -> float:
    clients = [ApiClient(base, token) for _ in range(threads)]
    chunks = [task_ids[i::threads] for i in range(threads)]
    failures = []

    def run(k: int) -> None:
        for task_id in chunks[k]:
            status, body = clients[k].post_json(f"/api/v1/tasks/{task_id}/complete", STEP2)
            if status != 200 or b'"opened"' not in body:
                failures.append((task_id, status, body[:200]))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    elapsed = time.perf_counter() - t0
    assert not failures, failures[:3]
    return len(task_ids) / elapsed


def measured(fn, server_pid: int, url: str, n: int):
    cpu0 = (tree_cpu_seconds(server_pid), backend_cpu_seconds(url), process_cpu_seconds())
    rate = fn()
    cpu1 = (tree_cpu_seconds(server_pid), backend_cpu_seconds(url), process_cpu_seconds())
    return rate, [(b - a) * 1000 / n for a, b in zip(cpu0, cpu1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--completions", type=int, default=600, help="per path (API and form), over all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    print(f"machine: {machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    try:
        redis.Redis.from_url(REDIS).ping()
        limiter_env = {"LAJUR_RATELIMIT_STORAGE": REDIS}
        print("token rate limit counted in Redis")
    except redis.RedisError:
        limiter_env = {"LAJUR_RATELIMIT_STORAGE": "memory://"}
        print("Redis not reachable: token rate limit counted in worker memory")
    with scratch_database("lajur_bench_api") as url, tempfile.TemporaryDirectory() as tmp:
        services, users, sha, data_dir = seeded(url, Path(tmp))
        t0 = time.perf_counter()
        per_round = args.completions // args.rounds
        web_ids = prepare_step2(services, users, per_round * args.rounds, sha, "Bench form")
        api_ids = prepare_step2(services, users, per_round * args.rounds, sha, "Bench API")
        print(f"prepared {2 * per_round * args.rounds} instances at step 2 in {time.perf_counter() - t0:.1f} s")
        with services.sessions.begin() as db:
            kasubbag = db.scalar(select(User).where(User.username == "dpmk.kasubbag"))
            token = tokens.create_token(db, kasubbag, "bench", "write", 1, datetime.now(timezone.utc))[1]
        server, base = start_gunicorn(url, data_dir, LAJUR_API_LIMIT="1000000/minute", **limiter_env)
        try:
            signed_in(base, "dpmk.kasubbag")  # warm both workers
            healthz_rate(base, 1.0, args.threads)
            ApiClient(base, token).post_json("/api/v1/tasks/0/claim", {})
            totals = {"api": [0.0, [0.0, 0.0, 0.0]], "form": [0.0, [0.0, 0.0, 0.0]]}
            for r in range(args.rounds):
                chunk = slice(r * per_round, (r + 1) * per_round)
                runs = [("form", lambda c=chunk: http_completions(base, web_ids[c], args.threads)),
                        ("api", lambda c=chunk: api_completions(base, token, api_ids[c], args.threads))]
                for name, fn in (runs if r % 2 == 0 else runs[::-1]):
                    seconds0 = time.perf_counter()
                    _rate, cpu = measured(fn, server.pid, url, per_round)
                    totals[name][0] += time.perf_counter() - seconds0
                    totals[name][1] = [a + b / args.rounds for a, b in zip(totals[name][1], cpu)]
                    print(f"    round {r + 1} {name:4s}: {_rate:7.1f} completions/s")
            n = per_round * args.rounds
            api_rate, form_rate = n / totals["api"][0], n / totals["form"][0]
            print(f"\n{n} step completions each (DPMK step 2, Kasubbag), {args.threads} client threads, "
                  f"{args.rounds} alternating rounds")
            for name, rate in (("API  POST /api/v1/tasks/{id}/complete", api_rate),
                               ("form POST /tasks/{id} (reference)   ", form_rate)):
                gunicorn_ms, pg_ms, client_ms = totals["api" if name.startswith("API") else "form"][1]
                print(f"    {name}: {rate:7.1f} completions/s   CPU per completion: gunicorn {gunicorn_ms:.2f} ms, "
                      f"PostgreSQL {pg_ms:.2f} ms, load generator {client_ms:.2f} ms")
            print(f"    API / form: {api_rate / form_rate:.2f}   target >= 1.0 "
                  f"{'MET' if api_rate >= form_rate else 'MISSED'}")
        finally:
            server.terminate()
            server.wait(10)
            services.dispose()


if __name__ == "__main__":
    main()
