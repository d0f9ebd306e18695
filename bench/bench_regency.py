"""A regency on PostgreSQL: 60 offices, 3,000 staff, 100 SOP versions, 1,000,000 finished and
50,000 open steps, and a working day's load replayed at 10x against the production topology
(nginx in front of 2 web nodes, 2 workers, beat, Redis; tests/topology.py starts them).

Loading (not through the engine, but the engine's row shapes): the demo is seeded and the
DPMK SOP deployed through the engine; then SQL copies its definition and version into 58 more
offices (and a second version into 40 of them: 100 versions), inserts 50 staff per office in
the SOP's lanes, and bulk-inserts instances and steps with INSERT ... SELECT generate_series:
finished instances (5 completed steps each, the final state left empty as no path reads it)
and open instances (their earlier steps completed, one step open, the workflow state of a real
engine instance at that step), each open step with its warn and breach deadlines. The
dashboard rollup is built once (timed apart), as the hourly worker task does.

The day (20,000 instances started, 5 steps each completed, reminders coming due) replayed at
`--speed` x: starts are paced at 20,000 x scale / 8 h x speed per second over `--minutes`, and
each started instance's steps are claimed and completed through the web by its lanes' staff;
reminders of bulk-loaded open steps fall due at the day's rate (`--reminders-per-day`) x speed,
each sent by email to an SMTP sink. Measured meanwhile: GET /inbox (staff) and GET /dashboard
(supervisors) by samplers, the completion POST's latency, and per reminder the lateness of its
in-app notification and of its email (sent - due). References in the same run: `SELECT 1`,
GET /healthz through the front.

    .venv/bin/python bench/bench_regency.py [--scale 1.0] [--speed 10] [--minutes 4] [--clients 6]
"""
from __future__ import annotations

import argparse
from collections import Counter
import io
import json
import os
import random
import re
import sys
import threading
import traceback
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from queue import Empty, Queue

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from bench.common import machine, percentile, scratch_database, timed  # noqa: E402
from engine import dashboard  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine import registers  # noqa: E402
from engine.models import HumanTask, Office, User  # noqa: E402
from engine.services import Services  # noqa: E402
from tests.sopdata import DPMK, STEP_DATA, checklist  # noqa: E402
from tests.test_workers import PrivateRedis, SmtpSink  # noqa: E402
from tests.topology import Topology, free_port, nginx_binary, wait_for  # noqa: E402

OFFICES, STAFF_PER_OFFICE, VERSIONS = 60, 50, 100
FINISHED, OPEN, DAY_INSTANCES = 1_000_000, 50_000, 20_000
LANES = ["Petugas Penerima Berita/Informasi", "Kasubbag", "Sekdin", "Operator Website"]
PASSWORD = "bench-regency-123"
TARGETS = {"inbox": 50.0, "completion": 100.0, "reminder": 5000.0, "dashboard": 300.0}


def photo(rng: random.Random) -> bytes:
    """A small PNG, different each time (a new evidence file, not a deduplicated one)."""
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(out, "PNG")
    return out.getvalue()


def step_form(step: str) -> dict:
    data = dict(STEP_DATA[(DPMK, step)])
    data.pop("bukti_multimedia", None)
    return {"action": "complete", "_persyaratan": checklist(DPMK, step),
            **{k: ("on" if v is True else v) for k, v in data.items()}}


# ---- loading --------------------------------------------------------------------------------

def seed_offices(services: Services) -> None:
    """58 more offices with the DPMK SOP (40 with a second version), 50 staff in each office."""
    hashed = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")  # cheap: sign-ins are not measured
    with services.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO office (code, name, timezone, include_cuti_bersama, calendar_revision) "
            "SELECT 'opd' || lpad(i::text, 2, '0'), 'Perangkat Daerah ' || i, 'Asia/Jakarta', true, 1 "
            "FROM generate_series(3, :n) i"), {"n": OFFICES})
        src = conn.execute(text("SELECT d.id, d.key, d.name, d.latest_version_id FROM process_definition d "
                                "JOIN office o ON o.id = d.office_id WHERE o.code = 'dpmk'")).one()
        copy_version = ("INSERT INTO process_version (definition_id, version, content_hash, process_id, bpmn_xml, spec, "
                        "steps, forms, sop, deployed_by_id, deployed_at) SELECT d.id, :v, content_hash, process_id, "
                        "bpmn_xml, spec, steps, forms, sop, NULL, now() - interval '400 days' + :v * interval '200 days' "
                        "FROM process_version pv, process_definition d JOIN office o ON o.id = d.office_id "
                        "WHERE pv.id = :src AND o.code LIKE 'opd%' AND (:v = 1 OR o.code <= :last)")
        conn.execute(text("INSERT INTO process_definition (office_id, key, name) SELECT id, :key, :name FROM office "
                          "WHERE code LIKE 'opd%'"), {"key": src.key, "name": src.name})
        extra = VERSIONS - 2 - (OFFICES - 2)  # dpmk and dinsos have one each
        conn.execute(text(copy_version), {"v": 1, "src": src.latest_version_id, "last": ""})
        conn.execute(text(copy_version), {"v": 2, "src": src.latest_version_id,
                                          "last": f"opd{2 + extra:02d}"})
        conn.execute(text("UPDATE process_definition d SET latest_version_id = (SELECT max(id) FROM process_version "
                          "v WHERE v.definition_id = d.id) WHERE latest_version_id IS NULL"))
        conn.execute(text("INSERT INTO office_group (office_id, name) SELECT o.id, l FROM office o, unnest(CAST(:lanes AS text[])) l "
                          "WHERE o.code LIKE 'opd%' OR (o.code IN ('dpmk') AND NOT EXISTS (SELECT 1 FROM "
                          "office_group g WHERE g.office_id = o.id AND g.name = l))"), {"lanes": LANES})
        conn.execute(text(
            "INSERT INTO user_account (username, full_name, password_hash, office_id, roles, email, locale, active, "
            "notify_channels) SELECT 'staf.' || o.code || '.' || n, 'Pegawai ' || o.code || ' ' || n, :h, o.id, "
            "CASE WHEN n % 4 IN (1, 2) AND n < 8 THEN 'staff,supervisor' ELSE 'staff' END, "
            "'staf.' || o.code || '.' || n || '@example.bantulkab.go.id', 'id', true, 'inapp,email' "
            "FROM office o, generate_series(0, :per - 1) n WHERE o.code <> 'dinsos'"),
            {"h": hashed, "per": STAFF_PER_OFFICE})
        conn.execute(text(
            "INSERT INTO user_group (user_id, group_id) SELECT u.id, g.id FROM user_account u "
            "JOIN office_group g ON g.office_id = u.office_id "
            "AND g.name = (CAST(:lanes AS text[]))[1 + (split_part(u.username, '.', 3)::int % 4)] WHERE u.username LIKE 'staf.%'"),
            {"lanes": LANES})
        conn.execute(text("UPDATE user_account SET password_hash = :h"), {"h": hashed})
    with services.sessions.begin() as session:  # each office's Buku Agenda and Daftar Arsip (step 1 and 5 numbers)
        for office in session.scalars(select(Office).where(Office.code.like("opd%"))):
            registers.ensure_defaults(session, office)


def template_states(services: Services, demo: dict) -> dict[str, str]:
    """The workflow state of a real DPMK instance with each step open (bpmn_id -> JSON text)."""
    from tests.helpers import work_step
    rt, states = services.runtime, {}
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Templat")
    for step in ("step1", "step2", "step3", "step4", "step5"):
        with services.engine.connect() as conn:
            states[step] = conn.execute(text("SELECT state::text FROM process_instance WHERE id = :i"),
                                        {"i": iid}).scalar_one()
        work_step(services, demo, DPMK, iid, step)
    return states


def bulk_load(services: Services, finished: int, open_: int, states: dict[str, str], now: datetime) -> float:
    """Instances and steps by INSERT ... SELECT generate_series over a per-office lookup of versions,
    lane groups and lane staff; returns seconds."""
    t0 = time.perf_counter()
    with services.engine.begin() as conn:
        conn.execute(text(
            "CREATE TEMP TABLE b_office AS SELECT row_number() OVER (ORDER BY o.id) - 1 AS k, o.id AS office_id, "
            "d.latest_version_id AS version_id FROM office o JOIN process_definition d ON d.office_id = o.id "
            "AND d.key = :key"), {"key": DPMK})
        n_off = conn.execute(text("SELECT count(*) FROM b_office")).scalar_one()
        conn.execute(text(
            "CREATE TEMP TABLE b_step AS SELECT (row_number() OVER (ORDER BY key))::int AS pos, key AS bpmn_id, "
            "value->>'name' AS name, value->>'lane' AS lane, (value->>'mutu_baku_minutes')::float AS mb "
            "FROM process_version v, json_each(v.steps) WHERE v.id = (SELECT version_id FROM b_office WHERE k = 0)"))
        conn.execute(text("ALTER TABLE b_step ADD COLUMN data json"))
        for n in range(1, 6):  # what a completion stores: the submitted form data
            conn.execute(text("UPDATE b_step SET data = CAST(:d AS json) WHERE bpmn_id = :b"),
                         {"d": json.dumps(STEP_DATA[(DPMK, f"step{n}")]), "b": f"step{n}"})
        conn.execute(text(
            "CREATE TEMP TABLE b_lane AS SELECT g.office_id, g.name AS lane, g.id AS group_id, "
            "array_agg(ug.user_id ORDER BY ug.user_id) AS staff FROM office_group g "
            "JOIN user_group ug ON ug.group_id = g.id GROUP BY g.office_id, g.name, g.id"))
        base = conn.execute(text("SELECT coalesce(max(id), 0) FROM process_instance")).scalar_one()
        n_open_inst = open_
        done_in_open = sum((i % 5) for i in range(open_))  # open at step (i % 5) + 1: earlier ones completed
        n_done_inst = max(0, (finished - done_in_open) // 5)
        total = n_done_inst + n_open_inst
        # instances: the first n_done finished over the past two years, then the open ones of the last days
        conn.execute(text(
            "INSERT INTO process_instance (id, office_id, version_id, subject, status, state, lock_version, "
            "started_at, completed_at) "
            "SELECT :base + i, o.office_id, o.version_id, 'Berita ' || i, "
            "CASE WHEN i <= :nd THEN 'completed' ELSE 'running' END, "
            "CASE WHEN i <= :nd THEN '{}'::json ELSE (ARRAY[:s1, :s2, :s3, :s4, :s5])[1 + (i - :nd) % 5]::json END, "
            "CASE WHEN i <= :nd THEN 6 ELSE 1 + (i - :nd) % 5 END, "
            "CASE WHEN i <= :nd THEN :now - ((i * 7919) % (720 * 86400)) * interval '1 second' - interval '5 days' "
            "ELSE :now - ((i * 7919) % (4 * 86400)) * interval '1 second' END, "
            "CASE WHEN i <= :nd THEN :now - ((i * 7919) % (720 * 86400)) * interval '1 second' - interval '3 days' END "
            "FROM generate_series(1, :total) i JOIN b_office o ON o.k = i % :noff"),
            {"base": base, "nd": n_done_inst, "total": total, "noff": n_off, "now": now,
             **{f"s{n}": states[f"step{n}"] for n in range(1, 6)}})
        # steps: every step of a finished instance; of an open one, the completed ones and the open one
        conn.execute(text(
            "INSERT INTO human_task (task_guid, instance_id, office_id, version_id, bpmn_id, name, lane, group_id, "
            "state, assignee_id, completed_by_id, mutu_baku_minutes, ready_at, claimed_at, completed_at, due_at, "
            "working_minutes, data) "
            "SELECT md5(i.id || '-' || s.pos)::uuid::text, i.id, i.office_id, i.version_id, s.bpmn_id, s.name, s.lane, "
            "l.group_id, CASE WHEN done THEN 'completed' ELSE 'ready' END, who, CASE WHEN done THEN who END, s.mb, "
            "ready, CASE WHEN who IS NOT NULL THEN ready + interval '3 minutes' END, "
            "CASE WHEN done THEN ready + w * interval '1 minute' END, "
            "CASE WHEN done THEN ready + s.mb * interval '1 minute' ELSE :now + ((i.id * 31) % 2880) * interval "
            "'1 minute' END, CASE WHEN done THEN w END, CASE WHEN done THEN s.data END "
            "FROM process_instance i "
            "JOIN b_step s ON s.pos <= CASE WHEN i.status = 'completed' THEN 5 ELSE i.lock_version END "
            "JOIN b_lane l ON l.office_id = i.office_id AND l.lane = s.lane, "
            "LATERAL (SELECT i.status = 'completed' OR s.pos < i.lock_version AS done, "
            "  l.staff[1 + (i.id + s.pos) % array_length(l.staff, 1)] AS who, "
            "  round((s.mb * (0.3 + ((i.id * 13 + s.pos * 7) % 100) / 70.0))::numeric, 2)::float AS w, "
            "  i.started_at + (s.pos - 1) * interval '10 minutes' AS ready) x "
            "WHERE i.id > :base"), {"base": base, "now": now})
        conn.execute(text("UPDATE process_instance SET lock_version = 1 WHERE id > :base AND status = 'running'"),
                     {"base": base})
        # the open steps' reminders: warn at 80 % and breach, due in the next two days
        conn.execute(text(
            "INSERT INTO deadline (human_task_id, office_id, level, seq, at_fraction, due_at, status) "
            "SELECT t.id, t.office_id, lv.level, 0, lv.f, t.due_at - (1 - lv.f) * t.mutu_baku_minutes * "
            "interval '1 minute' + interval '1 hour', 'pending' FROM human_task t, (VALUES ('warn', 0.8), "
            "('breach', 1.0)) lv(level, f) WHERE t.state = 'ready' AND t.instance_id > :base"), {"base": base})
        for table in ("process_instance", "human_task", "deadline", "office", "user_account", "office_group",
                      "process_definition", "process_version"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT max(id) FROM {table}))"))
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def schedule_reminders(services: Services, count: int, first: datetime, spread: float) -> list[int]:
    """`count` warnings of assigned open bulk steps made to fall due between `first` and
    `first + spread` s (their breaches after the run); returns their deadline ids."""
    with services.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT d.id FROM deadline d JOIN human_task t ON t.id = d.human_task_id WHERE d.level = 'warn' "
            "AND d.status = 'pending' AND t.assignee_id IS NOT NULL ORDER BY d.id LIMIT :n"), {"n": count})]
        conn.execute(text(
            "UPDATE deadline SET due_at = :first + (array_position(CAST(:ids AS bigint[]), id) - 1) * :gap * interval '1 second' "
            "WHERE id = ANY(CAST(:ids AS bigint[]))"), {"first": first, "ids": ids, "gap": spread / max(1, count)})
    return ids


# ---- the replay -----------------------------------------------------------------------------

class Web:
    """Signed-in HTTP sessions through the front, one per user, made on first use."""

    def __init__(self, base: str):
        self.base, self.sessions, self.lock = base, {}, threading.Lock()

    def session(self, username: str) -> tuple[requests.Session, str]:
        with self.lock:
            if username in self.sessions:
                return self.sessions[username]
        s = requests.Session()
        page = s.get(f"{self.base}/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = s.post(f"{self.base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                   allow_redirects=False, timeout=30)
        assert r.status_code == 302, (username, r.status_code, r.text[:200])
        page = s.get(f"{self.base}/inbox", timeout=30).text
        pair = (s, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1))
        with self.lock:
            self.sessions.setdefault(username, pair)
            return self.sessions[username]

    def post(self, username: str, path: str, form: dict, files: dict | None = None) -> tuple[requests.Response, float]:
        s, token = self.session(username)
        t0 = time.perf_counter()
        r = s.post(f"{self.base}{path}", data={**form, "csrf_token": token}, files=files, allow_redirects=False,
                   timeout=60)
        return r, (time.perf_counter() - t0) * 1000

    def get(self, username: str, path: str) -> tuple[requests.Response, float]:
        s, _ = self.session(username)
        t0 = time.perf_counter()
        r = s.get(f"{self.base}{path}", timeout=60)
        return r, (time.perf_counter() - t0) * 1000


def _why(r) -> str:
    """The field error or flash message of a refused form post, for the error count."""
    found = re.search(r'class="(?:muted small|field-error|flash[^"]*)"[^>]*>\s*([^<]{1,160})', r.text)
    return found.group(1).strip() if found else r.text[:80]


def replay(services: Services, web: Web, staff: dict, supervisors: list[str], rate: float, seconds: float,
           clients: int, results: dict) -> None:
    """Starts paced at `rate`/s for `seconds`; each instance's steps worked right after by its lanes' staff."""
    work: Queue = Queue()
    stop = threading.Event()
    rng = random.Random(17)
    offices = sorted(staff)

    def worker():
        local = random.Random()
        while not stop.is_set():  # at the end of the window the backlog is reported, not drained
            try:
                office = work.get(timeout=0.2)
            except Empty:
                continue
            try:
                starter = local.choice(staff[office][LANES[0]])
                r, _ = web.post(starter, f"/start/{DPMK}", {"subject": "Berita hari ini"})
                if r.status_code != 302:
                    results["errors"].append(("start", r.status_code))
                    continue
                results["started"] += 1
                task_id = int(r.headers["Location"].rsplit("/", 1)[1])
                with services.sessions() as session:
                    instance_id = session.get(HumanTask, task_id).instance_id
                for _ in range(5):
                    with services.sessions() as session:
                        row = session.execute(select(HumanTask.id, HumanTask.bpmn_id, HumanTask.lane).where(
                            HumanTask.instance_id == instance_id, HumanTask.state == "ready")).first()
                    if row is None:
                        break
                    # the starter holds step 1 (they took the news in); later steps are claimed
                    user = starter if row.bpmn_id == "step1" else local.choice(staff[office][row.lane])
                    if row.bpmn_id != "step1":  # a later step of the starter's own lane is claimed too
                        r, _ = web.post(user, f"/tasks/{row.id}/claim", {})
                        if r.status_code != 302:
                            results["errors"].append(("claim", r.status_code))
                            break
                    files = None
                    if row.bpmn_id == "step1":  # the evidence photo, uploaded with the form as a browser does
                        files = {"bukti_multimedia__upload": ("foto.png", photo(local), "image/png")}
                    r, ms = web.post(user, f"/tasks/{row.id}", step_form(row.bpmn_id), files)
                    if r.status_code != 302:
                        results["errors"].append(("complete", r.status_code, _why(r)))
                        break
                    results["completion"].append(ms)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the client carries on
                results["errors"].append(("client", f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"))
                if "client_trace" not in results:
                    results["client_trace"] = traceback.format_exc()

    def sampler(kind: str, every: float):
        local = random.Random(kind)
        while not stop.is_set():
            t0 = time.monotonic()
            if kind == "inbox":
                office = local.choice(offices)
                user = local.choice(staff[office][local.choice(LANES)])
                r, ms = web.get(user, "/inbox")
            elif kind == "dashboard":
                r, ms = web.get(local.choice(supervisors), "/dashboard")
            else:
                r, ms = web.get(supervisors[0], "/healthz")
            if r.status_code == 200:
                results[kind].append(ms)
            else:
                results["errors"].append((kind, r.status_code))
            time.sleep(max(0.0, every - (time.monotonic() - t0)))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    threads += [threading.Thread(target=sampler, args=a) for a in (("inbox", 0.25), ("dashboard", 1.0),
                                                                    ("healthz", 1.0))]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        n += 1
        work.put(rng.choice(offices))
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    results["offered"] = n
    results["backlog_at_end"] = work.qsize()
    stop.set()
    for t in threads:
        t.join(120)


def reminder_lateness(services: Services, ids: list[int]) -> tuple[list[float], list[float], int]:
    """Per reminder: in-app notification created - due, email sent - due (ms); and how many were not sent."""
    with services.engine.connect() as conn:
        inapp = [float(r[0]) * 1000 for r in conn.execute(text(
            "SELECT extract(epoch FROM n.created_at - d.due_at) FROM deadline d JOIN notification n ON "
            "n.human_task_id = d.human_task_id AND n.level = d.level AND n.seq = d.seq WHERE d.id = ANY(:ids)"),
            {"ids": ids})]
        mail = [float(r[0]) * 1000 for r in conn.execute(text(
            "SELECT extract(epoch FROM v.sent_at - v.due_at) FROM deadline d JOIN delivery v ON "
            "v.human_task_id = d.human_task_id AND v.level = d.level AND v.seq = d.seq AND v.channel = 'email' "
            "WHERE d.id = ANY(:ids) AND v.status = 'sent'"), {"ids": ids})]
    return inapp, mail, len(ids) - len(mail)


def line(label: str, ms: list[float], target: float | None, q: float = 0.95) -> str:
    if not ms:
        return f"{label:<40} no samples"
    value = percentile(ms, q)
    verdict = "" if target is None else ("  met" if value <= target else "  MISSED")
    return (f"{label:<40} p50 {percentile(ms, 0.5):8.1f} ms  p{int(q * 100)} {value:8.1f} ms  "
            f"max {max(ms):8.1f} ms  (n={len(ms)}){'' if target is None else f'  target {target:.0f} ms'}{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="share of the finished/open steps and of the day's load")
    ap.add_argument("--speed", type=float, default=10.0, help="replay speed (10: a day's rate x 10)")
    ap.add_argument("--minutes", type=float, default=4.0, help="real minutes of replay")
    ap.add_argument("--clients", type=int, default=6, help="client threads working instances")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per web node")
    ap.add_argument("--reminders-per-day", type=int, default=10_000)
    args = ap.parse_args()
    if nginx_binary() is None:
        sys.exit("nginx is not installed (apt-get install nginx)")
    day_rate = DAY_INSTANCES * args.scale / (8 * 3600) * args.speed
    reminder_rate = args.reminders_per_day * args.scale / (8 * 3600) * args.speed
    seconds = args.minutes * 60
    print(f"bench_regency: {machine()}; scale {args.scale}, speed {args.speed}x, {args.minutes} min: "
          f"{day_rate:.2f} starts/s, {reminder_rate:.2f} reminders/s")
    workdir = Path(f"/tmp/lajur-bench-regency-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis("/usr/bin/redis-server", workdir)
    smtp = SmtpSink(free_port())
    with scratch_database("lajur_bench_regency") as url:
        upgrade(url)
        redis.start()
        smtp.start()
        settings = Settings(database_url=url, broker_url=redis.url, data_dir=workdir / "data",
                            base_url="http://127.0.0.1")
        services = Services.from_settings(settings, pool_size=4)
        topo = None
        try:
            with services.sessions.begin() as session:
                seed_demo(session, services.runtime.store, settings.data_dir / "demo-logins.json")
            t0 = time.perf_counter()
            seed_offices(services)
            with services.sessions() as session:
                demo = {u.username: u.id for u in session.scalars(select(User).where(~User.username.like("staf.%")))}
            states = template_states(services, demo)
            now = datetime.now(timezone.utc)
            secs = bulk_load(services, int(FINISHED * args.scale), int(OPEN * args.scale), states, now)
            with services.engine.connect() as conn:
                sizes = dict(conn.execute(text(
                    "SELECT 'offices', count(*) FROM office UNION ALL SELECT 'staff', count(*) FROM user_account "
                    "UNION ALL SELECT 'versions', count(*) FROM process_version UNION ALL "
                    "SELECT 'finished steps', count(*) FROM human_task WHERE state = 'completed' UNION ALL "
                    "SELECT 'open steps', count(*) FROM human_task WHERE state = 'ready' UNION ALL "
                    "SELECT 'deadlines', count(*) FROM deadline")).all())
                db_size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
            print(f"loaded in {time.perf_counter() - t0:.0f} s (bulk {secs:.0f} s): "
                  + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + f"; database {db_size}")
            t1 = time.perf_counter()
            built = dashboard.build_rollup(services.engine, now)
            print(f"dashboard rollup built in {time.perf_counter() - t1:.1f} s: {built}")
            with services.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT o.code, g.name, u.username, u.roles FROM user_account u JOIN office o ON o.id = u.office_id "
                    "JOIN user_group ug ON ug.user_id = u.id JOIN office_group g ON g.id = ug.group_id "
                    "WHERE u.username LIKE 'staf.%'")).all()
            staff: dict = {}
            for code, lane, username, _roles in rows:
                staff.setdefault(code, {}).setdefault(lane, []).append(username)
            supervisors = sorted({r[2] for r in rows if "supervisor" in r[3]})
            # the production topology
            ports, front = [free_port(), free_port()], free_port()
            topo = Topology(workdir, {
                "LAJUR_DATABASE_URL": url, "LAJUR_BROKER_URL": redis.url, "LAJUR_DATA_DIR": str(settings.data_dir),
                "LAJUR_SECRET_KEY": uuid.uuid4().hex, "LAJUR_SMTP_HOST": "127.0.0.1",
                "LAJUR_SMTP_PORT": str(smtp.port), "LAJUR_LOGIN_LIMIT": "100000/minute",
                "LAJUR_QUEUE": f"lajur-regency-{os.getpid()}"})
            for k, port in enumerate(ports):
                topo.web(f"web{k + 1}", port, args.web_workers)
            topo.worker("worker1")
            topo.worker("worker2")
            topo.beat("beat1")
            topo.nginx(front, ports)
            for port in (*ports, front):
                topo.wait_http(port, 120)
            topo.wait_worker("worker1", 120)
            topo.wait_worker("worker2", 120)
            web = Web(f"http://127.0.0.1:{front}")
            for u in supervisors[:20]:
                web.session(u)
            def select_1():
                with services.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            select1 = timed(select_1, 200)
            reminders = schedule_reminders(services, int(reminder_rate * seconds),
                                           datetime.now(timezone.utc) + timedelta(seconds=10), seconds - 20)
            results = {"started": 0, "completion": [], "inbox": [], "dashboard": [], "healthz": [], "errors": []}
            t2 = time.perf_counter()
            replay(services, web, staff, supervisors, day_rate, seconds, args.clients, results)
            elapsed = time.perf_counter() - t2
            wait_for(lambda: reminder_lateness(services, reminders)[2] == 0, 90, "the reminders' emails", interval=1)
            inapp, mail, unsent = reminder_lateness(services, reminders)
        finally:
            if topo is not None:
                topo.stop_all()
            services.dispose()
            smtp.stop()
            redis.stop()
    done = len(results["completion"])
    print(f"replay: {elapsed:.0f} s, {results['offered']} instances offered, {results['started']} started, "
          f"{done} steps completed ({done / elapsed:.1f}/s), {len(reminders)} reminders due, "
          f"{len(smtp.messages)} emails received; queue left {results['backlog_at_end']}; "
          f"errors {len(results['errors'])}")
    for error, n in Counter(results["errors"]).most_common(8):
        print(f"  {n} x {error}")
    if "client_trace" in results:
        print("  the first client error:\n" + results["client_trace"])
    print(line("inbox GET /inbox", results["inbox"], TARGETS["inbox"]))
    print(line("completion POST /tasks/<id>", results["completion"], TARGETS["completion"]))
    print(line("reminder lateness, in-app (created-due)", inapp, TARGETS["reminder"], 0.99))
    print(line("reminder lateness, email (sent-due)", mail, TARGETS["reminder"], 0.99))
    print(line("dashboard GET /dashboard", results["dashboard"], TARGETS["dashboard"]))
    print("references (same run):")
    print(line("  GET /healthz through nginx", results["healthz"], None))
    print(line("  SELECT 1 round trip", select1, None))
    print(f"  emails unsent at the end: {unsent}")


if __name__ == "__main__":
    main()
