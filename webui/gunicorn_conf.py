"""gunicorn settings for `lajur web` (`-c python:webui.gunicorn_conf`): Prometheus multi-process
mode, and JSON-lines logs when `LAJUR_LOG_FORMAT=json` (webui/gunicorn_logs.py).

Each gunicorn worker writes its metric values to files in PROMETHEUS_MULTIPROC_DIR, and a
scrape adds them up. When a worker ends (restart, crash, kill -9) its live gauges must stop
counting: gunicorn's master calls child_exit, which marks the process dead. The directory
itself is emptied by `lajur web` before gunicorn starts (engine/cli.py), so a restarted
service never adds up files of a previous run.

Each worker freezes what loading the app made (`freeze_loaded`), so CPython's full collections
stop re-scanning those ~150,000 long-lived objects: measured with the studio's 50-step SOP,
whose checks make many short-lived cyclic objects (bench/README.md, Studio).
"""
from __future__ import annotations

import gc
import os

from engine.logformat import wants_json

if wants_json():
    logger_class = "webui.gunicorn_logs.JsonLogger"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def freeze_loaded() -> None:
    """Move every object alive now (modules, the app, its metadata) out of the cyclic GC's reach.

    Called once a worker has loaded the app: those objects live as long as the worker, and a
    full collection scanning them cost 100-300 ms on this 2-core machine, a pause that lands on
    whichever request triggers it. Garbage made later is collected as before."""
    gc.collect()
    gc.freeze()


def post_worker_init(worker):
    freeze_loaded()
