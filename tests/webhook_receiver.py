"""A real HTTP receiver for event webhooks (threaded http.server on a free port) and the
receiver's side of the signature check, written from the Standard Webhooks spec alone (the
same code as README's snippet), so it checks engine/webhooks/signing.py independently."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: str, headers: dict, body: bytes) -> dict:
    """README's verification snippet: the event if the signature is Lajur's, else ValueError."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if not any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split()):
        raise ValueError("bad signature")
    return json.loads(body)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        if srv.delay:
            time.sleep(srv.delay)
        with srv.lock:
            srv.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
            status = srv.statuses.pop(0) if srv.statuses else 200
        if 300 <= status < 400:
            self.send_response(status)
            self.send_header("Location", srv.url + "/elsewhere")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if srv.answer_bytes:
            self.send_header("Content-Length", str(srv.answer_bytes))
        self.end_headers()
        try:
            if srv.answer_bytes:  # an endless-looking answer: the sender must stop reading
                chunk = b" " * 65536
                for _ in range(srv.answer_bytes // len(chunk)):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(b"{}")
        except (BrokenPipeError, ConnectionResetError):
            srv.cut_off = True

    def log_message(self, *args):
        pass


@contextmanager
def receiver(statuses=(), delay: float = 0.0, answer_bytes: int = 0):
    """`.url`, `.requests` ([(headers lower-cased, body, path)]); answers each POST with the
    next of `statuses`, then 200; `delay` seconds late; with an answer of `answer_bytes`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests, server.statuses, server.lock = [], list(statuses), threading.Lock()
    server.delay, server.answer_bytes, server.cut_off = delay, answer_bytes, False
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/lajur"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
