"""Logging of the worker and beat processes: quiet ticks, and JSON lines when configured.

- The deadline tick runs every second. Celery logs each one at INFO three times (beat:
  "Sending due task lajur-tick"; the worker: "received", "succeeded"), which made beat's log
  grow 180 KB in 11 minutes of an idle installation. Those lines are dropped unless the
  logger is set to DEBUG; a tick that did something is logged by workers/tasks.py itself.
- `LAJUR_LOG_FORMAT=json`: every line is one JSON object (engine/logformat.py, shared with
  the web process), with the time, level, logger name and message, for a log shipper.

`install()` connects both to Celery's `after_setup_logger` / `after_setup_task_logger` signals.
"""
from __future__ import annotations

import logging

from celery.signals import after_setup_logger, after_setup_task_logger

from engine.logformat import json_formatter, wants_json  # the one format, the web's too

TICK_NAMES = ("workers.tasks.tick", "lajur-tick")
# the loggers that write a line per tick at INFO (celery/beat.py, celery/worker/strategy.py, celery/app/trace.py)
TICK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class QuietTicks(logging.Filter):
    """Drops the per-tick INFO lines of Celery's own loggers unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        if not any(name in message for name in TICK_NAMES):
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _use_json(logger: logging.Logger) -> None:
    if wants_json():
        for handler in logger.handlers:
            handler.setFormatter(json_formatter())


def install() -> None:
    after_setup_logger.connect(_setup, weak=False, dispatch_uid="lajur-logs")
    after_setup_task_logger.connect(_setup_task, weak=False, dispatch_uid="lajur-task-logs")


def _setup(logger, **_):
    quiet = QuietTicks()
    for name in TICK_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, QuietTicks) for f in target.filters):
            target.addFilter(quiet)
    _use_json(logger)


def _setup_task(logger, **_):
    _use_json(logger)
