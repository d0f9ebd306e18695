"""`lajur webhooks add|list|remove|pause|resume|rotate|log|resend`: an office's event webhooks
from the console.

The operator at the console is trusted like the regency admin (as for `lajur group`). The
secret is printed once, on stdout (everything else goes to stderr), so it can be piped
into the receiver's configuration.
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from ..accounts import office_by_code
from ..webhooks import subscriptions
from ..webhooks.events import EVENTS
from .app import fmt, main, services


def _now() -> datetime:
    return datetime.now(timezone.utc)


@main.group("webhooks")
def webhooks():
    """Event webhooks of an office (signed POSTs to the office's other systems)."""


@webhooks.command("add")
@click.argument("office")
@click.argument("url")
@click.option("--event", "events", multiple=True, type=click.Choice(list(EVENTS)),
              help="an event to send (repeat the option); default: all")
@click.option("--description", default="", help="what the receiver is (e.g. 'WhatsApp gateway')")
@click.pass_context
def webhooks_add(ctx, office, url, events, description):
    """Subscribe URL to events of OFFICE; print the signing secret (shown once)."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        sub, secret = subscriptions.add(session, svc.settings, office_by_code(session, office).id, url,
                                        list(events or EVENTS), description, None, _now())
        made = sub.id
    click.echo(secret)
    click.echo(f"webhook #{made} for {office}: {url} ({', '.join(events or EVENTS)}); "
               "the secret above is shown once", err=True)


@webhooks.command("list")
@click.argument("office")
@click.pass_context
def webhooks_list(ctx, office):
    """The webhooks of OFFICE (never their secrets)."""
    svc = services(ctx)
    with svc.sessions() as session:
        for s in subscriptions.list_for(session, office_by_code(session, office).id, None):
            state = "active" if s.active else "paused"
            click.echo(f"#{s.id:<5} {state:6}  {s.url}  [{','.join(subscriptions.events_of(s))}]  "
                       f"whsec_{s.secret_hint}  {s.description}")


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
@click.pass_context
def webhooks_remove(ctx, webhook_id):
    """Remove webhook WEBHOOK_ID with its queued sends and its log."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        subscriptions.remove(session, webhook_id, None, _now())
    click.echo(f"webhook #{webhook_id} removed")


@webhooks.command("pause")
@click.argument("webhook_id", type=int)
@click.pass_context
def webhooks_pause(ctx, webhook_id):
    """Stop sending to WEBHOOK_ID (its queued sends are dropped) until it is resumed."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        subscriptions.set_active(session, webhook_id, False, None, _now())
    click.echo(f"webhook #{webhook_id} paused")


@webhooks.command("resume")
@click.argument("webhook_id", type=int)
@click.pass_context
def webhooks_resume(ctx, webhook_id):
    svc = services(ctx)
    with svc.sessions.begin() as session:
        subscriptions.set_active(session, webhook_id, True, None, _now())
    click.echo(f"webhook #{webhook_id} active")


@webhooks.command("rotate")
@click.argument("webhook_id", type=int)
@click.pass_context
def webhooks_rotate(ctx, webhook_id):
    """Give WEBHOOK_ID a new signing secret and print it (shown once)."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        secret = subscriptions.rotate(session, svc.settings, webhook_id, None, _now())
    click.echo(secret)
    click.echo(f"webhook #{webhook_id}: new secret above, shown once", err=True)


@webhooks.command("log")
@click.argument("webhook_id", type=int)
@click.pass_context
def webhooks_log(ctx, webhook_id):
    """The newest deliveries of WEBHOOK_ID, one line per attempt."""
    svc = services(ctx)
    with svc.sessions() as session:
        for line in subscriptions.log(session, webhook_id, None):
            click.echo(f"{fmt(line.at or line.created_at)}  delivery #{line.delivery_id:<6} {line.event:18} "
                       f"attempt {line.attempt or '-'}  {line.status_code or '-'}  {line.status:9}  {line.error or ''}")


@webhooks.command("resend")
@click.argument("webhook_id", type=int)
@click.argument("delivery_id", type=int)
@click.pass_context
def webhooks_resend(ctx, webhook_id, delivery_id):
    """Queue delivery DELIVERY_ID of WEBHOOK_ID again (the same event, the same webhook-id)."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        subscriptions.send_again(session, webhook_id, delivery_id, None, _now())
    click.echo(f"delivery #{delivery_id} queued again")
