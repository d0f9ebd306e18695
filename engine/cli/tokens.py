"""`lajur token ...` and `lajur service-account ...`: API credentials from the console.

The operator at the console is trusted like the regency admin (as for `lajur user create`).
A token is printed once; only its hash is kept.
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from .. import tokens
from ..accounts import office_by_code, user_by_name
from .app import main, services


@main.group("token")
def token():
    """API tokens (personal access tokens and service accounts' tokens)."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="what the token is for (e.g. 'CMS website')")
@click.option("--scope", type=click.Choice(tokens.SCOPES), default="read", show_default=True)
@click.option("--days", type=int, default=90, show_default=True, help="days until it expires")
@click.pass_context
def token_create(ctx, username, name, scope, days):
    """Make a token for USERNAME and print it (shown once)."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        row, secret = tokens.create_token(session, user_by_name(session, username), name, scope, days,
                                          datetime.now(timezone.utc))
        expires = row.expires_at
    click.echo(secret)
    click.echo(f"token #{row.id} ({scope}) for {username}, expires {expires:%Y-%m-%d %H:%M} UTC", err=True)


@token.command("list")
@click.argument("username")
@click.pass_context
def token_list(ctx, username):
    """The tokens of USERNAME (never the tokens themselves)."""
    svc = services(ctx)
    with svc.sessions() as session:
        for row in tokens.list_tokens(session, user_by_name(session, username).id):
            state = "revoked" if row.revoked_at else f"expires {row.expires_at:%Y-%m-%d}"
            click.echo(f"#{row.id:<5} lajur_{row.prefix}_...  {row.scope:5}  {state:18}  {row.name}")


@token.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
@click.pass_context
def token_revoke(ctx, username, token_id):
    """Revoke USERNAME's token TOKEN_ID at once."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        tokens.revoke_token(session, user_by_name(session, username).id, token_id, datetime.now(timezone.utc))
    click.echo(f"token #{token_id} revoked")


@main.group("service-account")
def service_account():
    """Machine users of an office that reach the API with tokens only."""


@service_account.command("create")
@click.argument("username")
@click.option("--office", required=True, help="office code")
@click.option("--name", "full_name", required=True)
@click.option("--group", "groups", multiple=True, help="group (lane) it works in; repeatable")
@click.option("--role", "roles", multiple=True, default=("staff",), show_default=True)
@click.pass_context
def service_account_create(ctx, username, office, full_name, groups, roles):
    """Create a service account of an office (it cannot sign in to the web)."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        tokens.create_service_account(session, office_by_code(session, office), username, full_name,
                                      tuple(groups), tuple(roles))
    click.echo(f"service account {username} created; make its token with: lajur token create {username} ...")
