"""An office's working calendar: `lajur calendar set|override`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .app import main, services


@main.group()
def calendar():
    """An office's working calendar (schedule, cuti bersama, extra days off / working days)."""


@calendar.command("set")
@click.argument("office")
@click.option("--schedule", "schedule_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON {"0": [["07:30","12:00"],["13:00","16:00"]], ...} (0 = Monday); omit for the default')
@click.option("--default", "use_default", is_flag=True, help="back to the Perpres 21/2023 default schedule")
@click.option("--cuti-bersama/--no-cuti-bersama", default=None, help="count cuti bersama as days off")
@click.pass_context
def calendar_set(ctx, office, schedule_file, use_default, cuti_bersama):
    """Set an office's weekly schedule; open steps get new due times."""
    svc = services(ctx)
    if schedule_file:
        schedule = json.loads(schedule_file.read_text(encoding="utf-8"))
    elif use_default:
        schedule = None
    else:
        from ..accounts import office_by_code
        with svc.sessions() as session:
            schedule = office_by_code(session, office).schedule  # keep it: only --cuti-bersama changes
    n = svc.runtime.set_schedule(None, office, schedule, include_cuti_bersama=cuti_bersama)
    click.echo(f"calendar of {office} updated; {n} open step(s) re-timed")


@calendar.command("override")
@click.argument("office")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--off", "kind", flag_value="off", help="an extra day off")
@click.option("--working", "kind", flag_value="working", help="an extra working day")
@click.option("--remove", "kind", flag_value="remove", help="remove the override")
@click.option("--note", default="")
@click.pass_context
def calendar_override(ctx, office, day, kind, note):
    """Make DAY an extra day off or working day for OFFICE (or remove that)."""
    if kind is None:
        raise click.UsageError("give --off, --working or --remove")
    working = {"off": False, "working": True, "remove": None}[kind]
    n = services(ctx).runtime.set_override(None, office, day.date(), working, note)
    click.echo(f"{office} {day.date()}: {kind}; {n} open step(s) re-timed")


@calendar.command("pause-mode")
@click.argument("office")
@click.argument("mode", type=click.Choice(["approval", "immediate"]))
@click.pass_context
def calendar_pause_mode(ctx, office, mode):
    """How staff pause a step's clock in OFFICE: "approval" (a request a supervisor approves;
    the default) or "immediate" (the clock stops at once and the supervisors are told)."""
    services(ctx).runtime.set_pause_mode(None, office, mode)
    click.echo(f"{office}: pauses are {'requests a supervisor approves' if mode == 'approval' else 'immediate'}")
