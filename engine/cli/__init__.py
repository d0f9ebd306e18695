"""The `lajur` command: operate the service from a shell.

One module per command group; each defines its commands on `main` (engine/cli/app.py) with
`@main.command()` / `@main.group()`, and is registered by being named in COMMAND_MODULES
below (imported once here, so `lajur = engine.cli:main` sees every command). To add a
group: write `engine/cli/<name>.py` with `from .app import main, services` and add its
name to the list.
"""
from __future__ import annotations

import importlib

from .app import fmt, main, services, user_id  # re-exported: command modules elsewhere use them

COMMAND_MODULES = ("ops", "people", "processes", "work", "calendar", "notify", "sopdoc", "audit", "files", "backup",
                   "tokens", "incidents", "webhooks")

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["fmt", "main", "services", "user_id"]
