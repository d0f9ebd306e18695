"""Incidents from a shell: `lajur incidents list [--office CODE] [--all]`, `lajur incidents retry ID`."""
from __future__ import annotations

import click

from .app import fmt, main, services, user_id
from ..errors import LajurError
from ..incident_retry import coerce, form_fields


@main.group()
def incidents():
    """Run-time errors that stopped an instance (Camunda-style incidents)."""


@incidents.command("list")
@click.option("--office", "office_code", default=None, help="one office (default: every office)")
@click.option("--all", "show_all", is_flag=True, help="resolved ones too")
@click.option("--as", "as_user", default=None, help="as this user (default: the operator at the console)")
@click.pass_context
def list_(ctx, office_code, show_all, as_user):
    """List open incidents, newest first."""
    svc = services(ctx)
    uid = user_id(svc, as_user) if as_user else None
    rows = svc.runtime.list_incidents(uid, office_code, open_only=not show_all)
    click.echo(f"{len(rows)} incident(s)")
    for r in rows:
        state = "OPEN" if r.open else f"resolved {fmt(r.resolved_at)} by {r.resolved_by or 'console'}"
        click.echo(f"  #{r.id:<5} {r.office_code:14} inst {r.instance_id:<6} {r.sop[:28]:28} at {r.element_id[:24]:24} "
                   f"{r.kind:10} tries {r.attempts}  opened {fmt(r.opened_at)}  {state}")
        click.echo(f"         {r.message}")


@incidents.command()
@click.argument("incident_id", type=int)
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="correct a form field before retrying (VALUE as JSON for numbers, yes/no, lists)")
@click.option("--as", "as_user", default=None, help="as this process owner (default: the operator at the console)")
@click.pass_context
def retry(ctx, incident_id, assignments, as_user):
    """Rerun the failed element, after correcting data or migrating to a fixed version."""
    svc = services(ctx)
    uid = user_id(svc, as_user) if as_user else None
    changes = {}
    if assignments:
        fields = _fields(svc, incident_id)
        for item in assignments:
            name, sep, text = item.partition("=")
            if not sep or not name.strip():
                raise LajurError(f"--set {item!r}: write FIELD=VALUE")
            changes[name.strip()] = coerce(fields.get(name.strip(), {}), text)
    result = svc.runtime.retry_incident(uid, incident_id, changes)
    if result.resolved and result.new_incident:
        click.echo(f"error: incident {incident_id} resolved, but the instance stopped again further on "
                   f"(incident {result.new_incident}): {result.message}", err=True)
        ctx.exit(3)
    if not result.resolved:
        click.echo(f"error: retry of incident {incident_id} failed again: {result.message}", err=True)
        ctx.exit(3)
    click.echo(f"incident {incident_id} resolved; the instance runs on")


def _fields(svc, incident_id: int) -> dict:
    from sqlalchemy import select
    from ..models import Incident, ProcessInstance
    with svc.sessions() as session:
        version_id = session.scalar(select(ProcessInstance.version_id).join(
            Incident, Incident.instance_id == ProcessInstance.id).where(Incident.id == incident_id))
        if version_id is None:
            return {}
        return form_fields(svc.runtime.instances.form_version(session, version_id).forms)


def report_incident(ctx, svc, instance_id: int, what: str) -> None:
    """After a command that moved an instance: if it stopped at an incident, ONE line and exit 3."""
    from ..incident_list import of_instance
    with svc.sessions() as session:
        rows = of_instance(session, instance_id)
    if rows:
        r = rows[-1]
        click.echo(f"error: {what}, but the SOP stopped at '{r.element_name or r.element_id}' (incident {r.id}): "
                   f"{r.message} The process owner and supervisors were notified.", err=True)
        ctx.exit(3)

