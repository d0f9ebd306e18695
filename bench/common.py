"""Shared set-up for the benchmarks: a throw-away PostgreSQL database and timing helpers."""
from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from contextlib import contextmanager

import psycopg

ADMIN_URL = os.environ.get("LAJUR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(prefix: str):
    """Create a database for one benchmark run and drop it afterwards; yield its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (the same as PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def timed(fn, repeat: int) -> list[float]:
    """Milliseconds per call, `repeat` calls after two warm-up calls."""
    fn()
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 0.5):7.2f} ms  p95 {percentile(values, 0.95):7.2f} ms  "
            f"max {max(values):7.2f} ms  (n={len(values)}, mean {statistics.mean(values):.2f})")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def backend_cpu_seconds(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving database `url` (same machine:
    read from /proc), to split a run's cost between the client and the server."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                           "pg_backend_pid()", (name,))]
    return sum(_proc_cpu(pid) for pid in pids)


def process_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its living children (a gunicorn master and its workers)."""
    children = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        pass
    return _proc_cpu(pid) + sum(tree_cpu_seconds(c) for c in children)
