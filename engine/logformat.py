"""The one log format of every Lajur process: plain text, or JSON lines when
`LAJUR_LOG_FORMAT=json` (python-json-logger), for a log shipper.

Each line is one JSON object with `time`, `level`, `logger`, `process` and `message`, plus
whatever fields the caller adds (`extra=`): the web's access lines add the request's
method, path, status and duration. Workers and beat (workers/logs.py) and the web process
(webui/gunicorn_logs.py, under `lajur web`) all use `json_formatter()`.
"""
from __future__ import annotations

import logging
import os

from pythonjsonlogger.json import JsonFormatter


def json_formatter() -> logging.Formatter:
    return JsonFormatter("{asctime}{levelname}{name}{processName}{message}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                                        "processName": "process"})


def wants_json() -> bool:
    return os.environ.get("LAJUR_LOG_FORMAT", "").strip().lower() == "json"
