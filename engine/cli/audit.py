"""`lajur audit verify`: the tamper-evident audit trail (engine/audit.py)."""
from __future__ import annotations

import click

from .app import main, services
from ..errors import LajurError


@main.group()
def audit():
    """The tamper-evident audit trail (engine/audit.py)."""


@audit.command("verify")
@click.option("--instance", type=int, help="one instance (default: every chain)")
@click.pass_context
def audit_verify(ctx, instance):
    """Recompute the audit hash chains; report the first broken link (exit 1) or how many rows are intact."""
    from ..audit import verify
    with services(ctx).sessions() as session:
        result = verify(session, instance)
    if result.broken is not None:
        raise LajurError(f"audit trail broken: {result.broken}")
    click.echo(f"audit trail intact: {result.rows} rows in {result.chains} chains")
