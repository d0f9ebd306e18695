"""Notification channels: `lajur notify test|status`."""
from __future__ import annotations

import click

from .app import main, services
from ..accounts import office_by_code, user_by_name


@main.group()
def notify():
    """Notification channels."""


@notify.command("test")
@click.argument("username")
@click.pass_context
def notify_test(ctx, username):
    """Send a test message to USERNAME over each of their channels, now, and report each result."""
    from .. import outbox
    svc = services(ctx)
    with svc.sessions.begin() as session:
        ids = outbox.create_test_notification(session, svc.settings, user_by_name(session, username),
                                                 svc.runtime.clock())
    result = outbox.send_many(svc.sessions, svc.settings, ids, svc.runtime.clock)
    from ..models import Delivery
    with svc.sessions() as session:
        for delivery_id in ids:
            d = session.get(Delivery, delivery_id)
            click.echo(f"{d.channel:8} {result.get(delivery_id, d.status):8} {d.last_error or ''}")
    click.echo("in-app notification written")


@notify.command("status")
@click.option("--office", help="office code (default: all offices)")
@click.pass_context
def notify_status(ctx, office):
    """Deliveries by status, and those that gave up after their retries (the failed state)."""
    from ..notifications import delivery_counts, failed_deliveries
    svc = services(ctx)
    with svc.sessions() as session:
        office_id = office_by_code(session, office).id if office else None
        counts = delivery_counts(session)
        click.echo("deliveries: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        failed = failed_deliveries(session, office_id)
        click.echo(f"failed: {len(failed)}")
        for d in failed:
            what = (f"event {d.event} to webhook #{d.subscription_id}" if d.subscription_id is not None
                    else f"task {d.human_task_id} {d.level}/{d.seq} {d.channel:8} to user {d.recipient_id}")
            click.echo(f"  #{d.id:<6} {what} after {d.attempts} attempt(s): {(d.last_error or '')[:120]}")
