"""gunicorn settings for `lajur web` (`-c python:webui.gunicorn_conf`): Prometheus multi-process
mode, and JSON-lines logs when `LAJUR_LOG_FORMAT=json` (webui/gunicorn_logs.py).

Each gunicorn worker writes its metric values to files in PROMETHEUS_MULTIPROC_DIR, and a
scrape adds them up. When a worker ends (restart, crash, kill -9) its live gauges must stop
counting: gunicorn's master calls child_exit, which marks the process dead. The directory
itself is emptied by `lajur web` before gunicorn starts (engine/cli.py), so a restarted
service never adds up files of a previous run.
"""
from __future__ import annotations

import os

from engine.logformat import wants_json

if wants_json():
    logger_class = "webui.gunicorn_logs.JsonLogger"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
