"""`lajur files prune`: evidence files no step refers to (engine/attachments.py)."""
from __future__ import annotations

from datetime import timedelta

import click

from .app import main, services


@main.group()
def files():
    """Evidence files."""


@files.command("prune")
@click.option("--grace-hours", default=48.0, show_default=True, type=float,
              help="keep an upload no step refers to for this long (a draft in progress)")
@click.pass_context
def files_prune(ctx, grace_hours):
    """Remove uploaded files that no step refers to after the grace period."""
    from ..attachments import prune
    svc = services(ctx)
    with svc.sessions.begin() as session:
        n = prune(session, svc.settings.data_dir, svc.runtime.clock(), timedelta(hours=grace_hours))
    click.echo(f"{n} unreferenced file(s) removed")
