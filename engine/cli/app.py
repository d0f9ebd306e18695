"""The `lajur` command group and what its command modules share (services, user lookup, times).

Every engine error is one line on stderr and a non-zero exit (1; 2 for usage errors).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import DBAPIError
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..accounts import user_by_name
from ..config import Settings
from ..errors import FormInvalid, LajurError
from ..services import Services

WIB = ZoneInfo("Asia/Jakarta")


def fmt(dt: datetime | None) -> str:
    return dt.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB") if dt else "-"


class LajurGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FormInvalid as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except LajurError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except SpiffWorkflowException as exc:  # a process error outside a guarded run: one line
            click.echo(f"error: the process failed: {' '.join(str(exc).split())[:300]}", err=True)
            ctx.exit(1)
        except DBAPIError as exc:  # e.g. no schema yet: one line, not a traceback
            first = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
            click.echo(f"error: database: {first} (is the schema current? run `lajur migrate`)", err=True)
            ctx.exit(1)


@click.group(cls=LajurGroup)
@click.pass_context
def main(ctx):
    """Lajur: SOPs of Kabupaten Bantul as BPMN processes."""
    ctx.ensure_object(dict)


def services(ctx) -> Services:
    obj = ctx.ensure_object(dict)
    if "services" not in obj:
        obj["services"] = Services.from_settings(Settings.from_env())
        ctx.call_on_close(obj["services"].dispose)
    return obj["services"]


def user_id(svc: Services, username: str) -> int:
    with svc.sessions() as session:
        return user_by_name(session, username).id
