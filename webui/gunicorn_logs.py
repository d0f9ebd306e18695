"""gunicorn's logs as JSON lines (`LAJUR_LOG_FORMAT=json`, set in webui/gunicorn_conf.py).

gunicorn formats its error log and its access log itself; this logger class keeps its
handlers (stderr and stdout under `lajur web`) and gives them engine.logformat's JSON
formatter, the one the workers and beat use. An access line carries the request as fields
(`method`, `path`, `status`, `bytes`, `duration_ms`, `client`: the address nginx forwarded)
besides a short `message`. The root logger gets the same formatter on stderr, so what the
app itself logs in a gunicorn worker (an unhandled error with its traceback) is a JSON line
too.
"""
from __future__ import annotations

import logging
import sys
import traceback

from gunicorn import glogging

from engine.logformat import json_formatter


class JsonLogger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        formatter = json_formatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
        root = logging.getLogger()
        if not any(getattr(h, "_lajur_json", False) for h in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler._lajur_json = True
            handler.setFormatter(formatter)
            root.addHandler(handler)
            if root.level == logging.NOTSET or root.level > logging.INFO:
                root.setLevel(logging.INFO)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        try:
            status = int(str(atoms.get("s", "0")).split()[0])
        except ValueError:
            status = 0
        fields = {"method": atoms.get("m"), "path": atoms.get("U"), "query": atoms.get("q") or None,
                  "status": status, "bytes": atoms.get("B") if isinstance(atoms.get("B"), int) else None,
                  "duration_ms": round(request_time.total_seconds() * 1000, 2),
                  "client": atoms.get("{x-forwarded-for}i", "-") if atoms.get("{x-forwarded-for}i", "-") != "-"
                  else atoms.get("h"), "user_agent": atoms.get("a")}
        try:
            self.access_log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
        except Exception:  # noqa: BLE001 - a log line must never fail the request (gunicorn's own rule)
            self.error(traceback.format_exc())
