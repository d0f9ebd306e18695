"""Users, offices and their groups (lanes): `lajur user|office|group ...`."""
from __future__ import annotations

import click

from .app import main, services
from ..accounts import create_user, office_by_code


@main.group()
def user():
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--name", "full_name", required=True)
@click.option("--office", help="office code (none for a regency admin)")
@click.option("--role", "roles", multiple=True, default=("staff",), show_default=True)
@click.option("--group", "groups", multiple=True, help="group (lane) name; repeatable")
@click.option("--email")
@click.option("--password", envvar="LAJUR_NEW_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_context
def user_create(ctx, username, full_name, office, roles, groups, email, password):
    """Create a user."""
    svc = services(ctx)
    with svc.sessions.begin() as session:
        o = office_by_code(session, office) if office else None
        create_user(session, username, password, full_name, o, roles=tuple(roles), groups=tuple(groups), email=email)
    click.echo(f"user {username} created")


@user.command("unlock")
@click.argument("username")
@click.pass_context
def user_unlock(ctx, username):
    """Lift a sign-in lockout (too many wrong passwords) and forget the failed attempts."""
    from ..accounts import user_by_name
    from ..throttle import unlock
    with services(ctx).sessions.begin() as session:
        unlock(session, user_by_name(session, username))
    click.echo(f"user {username} unlocked")


@main.group()
def office():
    """Offices (a dinas, a kalurahan): each has its own groups, people, SOPs and calendar."""


@office.command("create")
@click.argument("code")
@click.option("--name", required=True, help="the office's full name")
@click.option("--timezone", "tz", default="Asia/Jakarta", show_default=True)
@click.pass_context
def office_create(ctx, code, name, tz):
    """Create an office with code CODE (lowercase letters, digits, -)."""
    from ..offices import create_office
    with services(ctx).sessions.begin() as session:
        create_office(session, code, name, tz)
    click.echo(f"office {code} created")


@office.command("list")
@click.pass_context
def office_list(ctx):
    """List the offices."""
    from ..offices import list_offices
    with services(ctx).sessions() as session:
        for o in list_offices(session):
            click.echo(f"{o.code:16} {o.name}")


@main.group()
def group():
    """An office's groups: each BPMN lane names one, and its members work that lane's steps."""


@group.command("create")
@click.argument("office_code")
@click.argument("name")
@click.pass_context
def group_create(ctx, office_code, name):
    """Create group NAME in office OFFICE_CODE."""
    from ..offices import create_group
    with services(ctx).sessions.begin() as session:
        create_group(session, office_code, name)
    click.echo(f"group {name!r} created in {office_code}")


@group.command("list")
@click.argument("office_code")
@click.pass_context
def group_list(ctx, office_code):
    """List an office's groups with their members."""
    from ..offices import groups_with_members
    with services(ctx).sessions() as session:
        for g, members in groups_with_members(session, office_code):
            click.echo(f"{g.name:40} {', '.join(u.username for u in members) or '-'}")


def _membership(ctx, office_code: str, name: str, username: str, member: bool) -> None:
    from ..offices import set_membership
    with services(ctx).sessions.begin() as session:
        changed = set_membership(session, office_code, name, username, member)
    said = {(True, True): "added to", (True, False): "already in", (False, True): "removed from",
            (False, False): "was not in"}[(member, changed)]
    click.echo(f"{username} {said} {name!r}")


@group.command("add-member")
@click.argument("office_code")
@click.argument("name")
@click.argument("username")
@click.pass_context
def group_add_member(ctx, office_code, name, username):
    """Add USERNAME to group NAME of OFFICE_CODE."""
    _membership(ctx, office_code, name, username, True)


@group.command("remove-member")
@click.argument("office_code")
@click.argument("name")
@click.argument("username")
@click.pass_context
def group_remove_member(ctx, office_code, name, username):
    """Remove USERNAME from group NAME of OFFICE_CODE."""
    _membership(ctx, office_code, name, username, False)
