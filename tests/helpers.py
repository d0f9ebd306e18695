"""Driving an SOP instance through the engine the way its actors would; a real webhook receiver."""
import asyncio
import email
import threading
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from sqlalchemy import select

from engine.db import as_utc
from engine.models import HumanTask, ProcessInstance, ProcessVersion

from .sopdata import ACTORS, REJECT, STEP_DATA, checklist


def open_task(services, instance_id: int) -> HumanTask:
    with services.sessions() as session:
        rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                       HumanTask.state == "ready")).all()
    assert len(rows) == 1, f"expected one open step, found {[r.bpmn_id for r in rows]}"
    return rows[0]


def work_step(services, users, process_key, instance_id, expect_step, data=None, reject=False):
    """Claim and complete the instance's open step as its lane's actor; return the task."""
    task = open_task(services, instance_id)
    assert task.bpmn_id == expect_step
    user_id = users[ACTORS[task.lane]]
    services.runtime.claim(user_id, task.id)
    if data is None:
        data = REJECT[(process_key, expect_step)] if reject else STEP_DATA[(process_key, expect_step)]
    services.runtime.complete(user_id, task.id, data, checklist=checklist(process_key, expect_step))
    return task


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        srv.requests.append((self.headers.get("X-Lajur-Signature"), body))
        status = srv.statuses.pop(0) if srv.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@contextmanager
def webhook_receiver(statuses=()):
    """A real HTTP server on a free port answering each POST with the next of `statuses`
    (then 200); `.requests` holds (signature header, raw body) in order, `.url` its address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.requests, server.statuses = [], list(statuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/lajur"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class SmtpSink:
    """An aiosmtpd server on a fixed port that can be started late (SMTP down, then up), and
    be slow: `delays` holds seconds to wait before answering RCPT, DATA (a server slow to
    accept: it has the message only at the end of the wait, as a real one commits it before
    answering) or QUIT; `rcpt_reply` replaces RCPT's "250 OK" (say, "451 ..."). `events`
    records each command as it arrives; `messages` each accepted message.

    A client that disconnects during a slow DATA: aiosmtpd drops the message (it cancels the
    handler); with `keep_orphans` the message is kept, as a real server that had already
    queued it (Postfix after its cleanup daemon took it) would deliver it anyway."""

    def __init__(self, port: int, keep_orphans: bool = False, **delays: float):
        self.port, self.messages, self.events, self.controller = port, [], [], None
        self.delays, self.rcpt_reply, self.keep_orphans = dict(delays), None, keep_orphans

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.events.append("RCPT")
        await asyncio.sleep(self.delays.get("rcpt", 0))
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.events.append("DATA")
        accept = self._accept(envelope.content)
        await (asyncio.shield(accept) if self.keep_orphans else accept)
        return "250 OK"

    async def _accept(self, content: bytes) -> None:
        await asyncio.sleep(self.delays.get("data", 0))
        self.messages.append(email.message_from_bytes(content))

    async def handle_QUIT(self, server, session, envelope):
        self.events.append("QUIT")
        await asyncio.sleep(self.delays.get("quit", 0))
        return "221 Bye"

    def start(self):
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


def stored_timer_times(services, instance_id: int) -> list[datetime]:
    """When the stored workflow's waiting timers fire, read from the database (not the engine's
    cache) and restored through the public WorkflowStore."""
    store = services.runtime.store
    with services.sessions() as session:
        inst = session.get(ProcessInstance, instance_id)
        version = session.get(ProcessVersion, inst.version_id)
        workflow = store.workflow_from_dict(inst.state, *store.spec_from_dict(version.spec))
    return [as_utc(datetime.fromisoformat(e.value)) for e in workflow.waiting_events()]
