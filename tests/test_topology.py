"""The production topology on one machine, under load, losing a part of each kind.

nginx (deploy/nginx/lajur.conf) in front of 2 web nodes, 2 workers and 2 beats on PostgreSQL
and a Redis of this test's own (never the shared one on 6379). Client threads sign in through
nginx and keep starting DPMK instances and completing their steps by posting the step forms;
the SOP's Mutu Baku is one minute (tests/topology.py), and a share of the instances is left
open, so warnings and breaches come due while the load runs. Mid-load, one web node, one
worker and one beat are killed -9 and Redis is restarted empty. Then:
- every completion acknowledged to a client (302 to the inbox) is in the database;
- every reminder that fell due was fired, and each in-app reminder exists exactly once;
- every email was sent, and the SMTP server received each exactly once.
Counts are printed (and kept in bench/README.md).
"""
from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select, text

from engine.models import Deadline, Delivery, HumanTask, Notification

from .conftest import service_missing
from .sopdata import ACTORS, DPMK, STEP_DATA
from .test_web import PASSWORD, users  # noqa: F401 (users is a fixture)
from .test_workers import private_redis, smtp  # noqa: F401 (fixtures)
from .topology import Topology, deploy_short_sop, free_port, nginx_binary, wait_for

LOAD_SECONDS = 85
KILL_WEB_AT, KILL_WORKER_AT, KILL_BEAT_AT, REDIS_RESTART_AT = 25, 55, 60, 65
CLIENTS = 3


def step_form(step: str) -> dict:
    data = {k: v for k, v in STEP_DATA[(DPMK, step)].items() if k != "bukti_multimedia"}
    form = {k: ("on" if v is True else v) for k, v in data.items()}
    return {"action": "claim_complete", **form}  # claim (if nobody holds it) and complete


class Client:
    """One office PC: signed in as every DPMK actor through nginx, working instances to various depths."""

    def __init__(self, base: str, services, log: dict):
        self.base, self.services, self.log = base, services, log
        self.sessions = {user: self._sign_in(user) for user in set(ACTORS.values()) if user.startswith("dpmk.")}

    def _sign_in(self, username):
        s = requests.Session()
        page = s.get(f"{self.base}/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = s.post(f"{self.base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                   allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text[:300]
        page = s.get(f"{self.base}/inbox", timeout=10).text  # the signed-in session's token
        return s, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post(self, username, path, form):
        s, token = self.sessions[username]
        try:
            r = s.post(f"{self.base}{path}", data={**form, "csrf_token": token}, allow_redirects=False, timeout=15)
        except requests.RequestException:
            self.log["errors"]["connection"] += 1
            return None
        if r.status_code >= 500:
            self.log["errors"][r.status_code] += 1
        return r

    def open_task(self, instance_id):
        with self.services.sessions() as session:
            return session.execute(select(HumanTask.id, HumanTask.bpmn_id, HumanTask.lane).where(
                HumanTask.instance_id == instance_id, HumanTask.state == "ready")).first()

    def run(self, k: int, stop: threading.Event):
        try:
            self._run(k, stop)
        except Exception as exc:  # noqa: BLE001 - a dead client must fail the test, not vanish
            self.log["crashed"].append(repr(exc))
            raise

    def _run(self, k: int, stop: threading.Event):
        n = 0
        while not stop.is_set():
            n += 1
            r = self.post("dpmk.penerima", f"/start/{DPMK}", {"subject": f"Beban {k}-{n}"})
            if r is None or r.status_code != 302 or "/tasks/" not in r.headers.get("Location", ""):
                time.sleep(0.2)
                continue
            task_id = int(r.headers["Location"].rsplit("/", 1)[1])
            self.log["started"].append(task_id)
            with self.services.sessions() as session:
                instance_id = session.get(HumanTask, task_id).instance_id
            depth = (0, 1, 5, 0, 2)[n % 5]  # steps to complete; the rest stays open and falls due
            if n % 5 == 3:
                self.post("dpmk.penerima", f"/tasks/{task_id}/claim", {})  # held, unfinished: warn the holder
            for _ in range(depth):
                if stop.is_set():
                    break
                row = self.open_task(instance_id)
                if row is None:
                    break
                user = ACTORS[row.lane]
                claim = self.post(user, f"/tasks/{row.id}/claim", {})
                if claim is None or claim.status_code != 302:
                    break
                done = self.post(user, f"/tasks/{row.id}", step_form(row.bpmn_id))
                if done is None or done.status_code != 302 or not done.headers["Location"].endswith("/inbox"):
                    break
                self.log["completed"].append((row.id, user, time.monotonic()))


def counts(services) -> dict:
    with services.engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT 'deadlines_done', count(*) FROM deadline WHERE status = 'done' UNION ALL "
            "SELECT 'notifications', count(*) FROM notification UNION ALL "
            "SELECT 'emails_sent', count(*) FROM delivery WHERE channel = 'email' AND status = 'sent' UNION ALL "
            "SELECT 'emails', count(*) FROM delivery WHERE channel = 'email'")).all())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_of_each_survive_kill_9_and_a_redis_restart(services, users, smtp, private_redis, tmp_path):
    if nginx_binary() is None:
        service_missing("nginx", "not installed (scripts/test.sh installs Debian's nginx)")
    smtp.start()
    deploy_short_sop(services, tmp_path)
    ports = [free_port(), free_port()]
    front = free_port()
    tag = f"topo{front}"
    topo = Topology(tmp_path, {
        "LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_BROKER_URL": private_redis.url,
        "LAJUR_DATA_DIR": str(tmp_path / "shared-data"), "LAJUR_SECRET_KEY": "uji-topologi-" + tag,
        "LAJUR_QUEUE": f"lajur-{tag}", "LAJUR_TICK_SECONDS": "0.5", "LAJUR_SEND_LEASE_SECONDS": "6",
        "LAJUR_REQUEUE_AFTER_SECONDS": "2", "LAJUR_BACKOFF_SECONDS": "0.5", "LAJUR_BACKOFF_MAX_SECONDS": "1",
        "LAJUR_VISIBILITY_TIMEOUT": "8", "LAJUR_SMTP_HOST": "127.0.0.1", "LAJUR_SMTP_PORT": str(smtp.port),
        "LAJUR_SMTP_FROM": "lajur@bantulkab.go.id", "LAJUR_LOGIN_LIMIT": "100/minute"})
    log = {"started": [], "completed": [], "errors": Counter(), "crashed": []}
    stop = threading.Event()
    threads = []
    try:
        topo.web("web1", ports[0])
        topo.web("web2", ports[1])
        topo.worker("worker1")
        topo.worker("worker2")
        topo.beat("beat1")
        topo.beat("beat2")
        topo.nginx(front, ports)
        for port in (*ports, front):
            topo.wait_http(port)
        topo.wait_worker("worker1")
        topo.wait_worker("worker2")
        base = f"http://127.0.0.1:{front}"
        clients = [Client(base, services, log) for _ in range(CLIENTS)]
        threads = [threading.Thread(target=c.run, args=(k, stop)) for k, c in enumerate(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        marks = {}
        for at, action in sorted([(KILL_WEB_AT, "kill web1"), (KILL_WORKER_AT, "kill worker1"),
                                  (KILL_BEAT_AT, "kill beat1"), (REDIS_RESTART_AT, "restart redis")]):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            marks[action] = (len(log["completed"]), counts(services)["deadlines_done"])
            if action == "restart redis":
                private_redis.stop()
                time.sleep(2)
                private_redis.start()
            else:
                topo.kill9(action.split()[1])
        time.sleep(max(0.0, t0 + LOAD_SECONDS - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(30)
        load_end = datetime.now(timezone.utc)

        # every reminder due by the end of the load fires (the surviving beat ticks on)
        def all_due_fired():
            with services.sessions() as session:
                return session.scalar(select(func.count()).select_from(Deadline).where(
                    Deadline.status == "pending", Deadline.due_at <= load_end)) == 0
        wait_for(all_due_fired, 60, "every reminder due by the end of the load to fire", interval=0.5)
        topo.stop("beat2")  # no more ticks: what fired is final
        time.sleep(3)

        def all_emails_sent():
            c = counts(services)
            return c["emails"] == c["emails_sent"]
        wait_for(all_emails_sent, 60, "every email to be sent", interval=0.5)
        time.sleep(2)  # a duplicate would arrive now
    except AssertionError:
        stop.set()
        print(topo.logs())
        raise
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        topo.stop_all()

    assert not log["crashed"], log["crashed"]
    # 1. every acknowledged completion is in the database, by the user it was acknowledged to
    acked = {task_id: user for task_id, user, _ in log["completed"]}
    with services.sessions() as session:
        rows = {t.id: t for t in session.scalars(select(HumanTask).where(HumanTask.id.in_(acked)))}
        usernames = dict(session.execute(text("SELECT id, username FROM user_account")).all())
    lost = [t for t in acked if t not in rows or rows[t].state != "completed"]
    assert not lost, f"{len(lost)} acknowledged completion(s) missing: {lost[:5]}"
    assert all(usernames[rows[t].completed_by_id] == user for t, user in acked.items())
    with services.sessions() as session:
        started = session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.id.in_(log["started"])))
    assert started == len(log["started"])
    # 2. each in-app reminder exactly once: one per fired level, seq and recipient, every fired deadline told
    with services.sessions() as session:
        keys = session.execute(select(Notification.human_task_id, Notification.level, Notification.seq,
                                      Notification.user_id)).all()
        fired = session.execute(select(Deadline.human_task_id, Deadline.level, Deadline.seq).where(
            Deadline.status == "done")).all()
        emails = session.scalars(select(Delivery).where(Delivery.channel == "email")).all()
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes, dupes[:5]
    told = {(t, lvl, seq) for t, lvl, seq, _ in keys}
    untold = [f for f in fired if tuple(f) not in told]
    assert not untold, untold[:5]
    # 3. no email lost, none twice
    received = [m["X-Lajur-Delivery"] for m in smtp.messages]
    assert sorted(received) == sorted(str(d.id) for d in emails), (len(received), len(emails))
    assert all(d.status == "sent" for d in emails)

    figures = {
        "instances started (acknowledged)": len(log["started"]),
        "completions acknowledged": len(acked), "completions lost": len(lost),
        "reminders fired (deadlines)": len(fired), "in-app reminders": len(keys), "duplicates": len(dupes),
        "emails sent": len(emails), "emails received": len(received),
        "client errors (not acknowledged)": dict(log["errors"]),
        "completions / reminders fired before each event": marks,
    }
    print("topology figures:", figures)
    # the events really hit mid-load: work was done and reminders fired before and after each
    assert marks["kill web1"][0] > 0 and len(acked) > marks["restart redis"][0]
    assert marks["kill worker1"][1] > 0 and len(fired) > marks["restart redis"][1]
    assert received, "no email at all: the test proved nothing"
