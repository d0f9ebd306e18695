"""Working SOP instances from a shell: start, tasks, claim, complete, show, the step clock."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .app import main, services, user_id, fmt
from ..errors import LajurError
from .incidents import report_incident


def _instance_of(svc, task_id: int) -> int:
    from sqlalchemy import select
    from ..models import HumanTask
    with svc.sessions() as session:
        return session.scalar(select(HumanTask.instance_id).where(HumanTask.id == task_id))


@main.command()
@click.argument("username")
@click.option("--view", type=click.Choice(["mine", "group", "overdue", "completed", "office"]), default=None,
              help="one list; default: mine and group")
@click.pass_context
def tasks(ctx, username, view):
    """List a user's tasks."""
    svc = services(ctx)
    uid = user_id(svc, username)
    now = svc.runtime.clock()
    for v in [view] if view else ["mine", "group"]:
        rows = svc.runtime.list_tasks(uid, v)
        click.echo(f"[{v}] {len(rows)} task(s)")
        for r in rows:
            flag = " TERLAMBAT" if r.overdue(now) else ""
            click.echo(f"  #{r.id:<6} {r.process_key:28} inst {r.instance_id:<6} {r.name[:40]:40} "
                       f"holder={r.assignee or '-':16} due {fmt(r.due_at)}{flag}  | {r.subject[:40]}")


@main.command()
@click.argument("username")
@click.argument("process_key")
@click.option("--subject", required=True)
@click.pass_context
def start(ctx, username, process_key, subject):
    """Start an SOP instance."""
    svc = services(ctx)
    iid = svc.runtime.start(user_id(svc, username), process_key, subject)
    report_incident(ctx, svc, iid, f"instance {iid} started")
    click.echo(f"instance {iid} started")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.pass_context
def claim(ctx, username, task_id):
    """Claim a task."""
    svc = services(ctx)
    svc.runtime.claim(user_id(svc, username), task_id)
    click.echo(f"task {task_id} claimed by {username}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.pass_context
def unclaim(ctx, username, task_id):
    """Release a claimed task back to its group."""
    svc = services(ctx)
    svc.runtime.unclaim(user_id(svc, username), task_id)
    click.echo(f"task {task_id} released")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.argument("to_username")
@click.pass_context
def reassign(ctx, username, task_id, to_username):
    """(Supervisor) give a task to another member of its lane."""
    svc = services(ctx)
    svc.runtime.reassign(user_id(svc, username), task_id, to_username)
    click.echo(f"task {task_id} reassigned to {to_username}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--data", "data_text", required=True, help="JSON object, or @file.json")
@click.option("--claim", is_flag=True, help="claim the step first if nobody holds it (claim and complete)")
@click.option("--check", "checklist", multiple=True, help="a Persyaratan item ticked (repeat for each)")
@click.pass_context
def complete(ctx, username, task_id, data_text, claim, checklist):
    """Complete a task with its form data (JSON)."""
    if data_text.startswith("@"):
        data_text = Path(data_text[1:]).read_text(encoding="utf-8")
    try:
        data = json.loads(data_text)
    except json.JSONDecodeError as exc:
        raise LajurError(f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    svc = services(ctx)
    opened = svc.runtime.complete(user_id(svc, username), task_id, data, claim=claim,
                                  checklist=list(checklist) or None)
    if getattr(opened, "incident", None) is not None:
        report_incident(ctx, svc, _instance_of(svc, task_id), f"task {task_id} completed")
    click.echo(f"task {task_id} completed")


@main.command()
@click.argument("username")
@click.argument("instance_id", type=int)
@click.pass_context
def show(ctx, username, instance_id):
    """Show an instance with its steps and history."""
    svc = services(ctx)
    d = svc.runtime.instance_detail(user_id(svc, username), instance_id)
    inst, version = d["instance"], d["version"]
    click.echo(f"instance {inst.id}: {inst.subject}")
    click.echo(f"  SOP {version.definition.name} v{version.version}  status {inst.status}  "
               f"started {fmt(inst.started_at)}")
    click.echo("  steps:")
    for t in d["tasks"]:
        click.echo(f"    #{t.id:<6} {t.name[:45]:45} {t.state:9} ready {fmt(t.ready_at)}  due {fmt(t.due_at)}"
                   f"  done {fmt(t.completed_at)}")
    click.echo("  history:")
    for e in d["events"]:
        who = e.user.username if e.user else "system"
        click.echo(f"    {fmt(e.at)}  {e.kind:18} {e.step or '':10} {who:16} "
                   f"{json.dumps(e.data, ensure_ascii=False)[:100] if e.data else ''}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="why the clock stops (recorded in the audit trail)")
@click.pass_context
def pause(ctx, username, task_id, reason):
    """Pause a step's SLA clock (e.g. waiting for a revised press release); for staff of an
    office whose pauses need approval, this asks the supervisors instead."""
    svc = services(ctx)
    outcome = svc.runtime.pause(user_id(svc, username), task_id, reason)
    click.echo(f"task {task_id}: " + ("clock paused" if outcome == "paused" else
                                      "pause requested; a supervisor approves or refuses it"))


@main.command("decide-pause")
@click.argument("username")
@click.argument("request_id", type=int)
@click.option("--approve/--refuse", required=True, help="approve (the clock stops now) or refuse")
@click.option("--note", default="")
@click.pass_context
def decide_pause(ctx, username, request_id, approve, note):
    """(Supervisor) approve or refuse a pause request."""
    svc = services(ctx)
    outcome = svc.runtime.decide_pause(user_id(svc, username), request_id, approve, note)
    click.echo(f"pause request {request_id}: {outcome}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--reason", default="")
@click.pass_context
def resume(ctx, username, task_id, reason):
    """Resume a paused step's SLA clock; prints the new due time."""
    svc = services(ctx)
    due = svc.runtime.resume(user_id(svc, username), task_id, reason)
    click.echo(f"task {task_id}: clock resumed, due {fmt(due)}")
