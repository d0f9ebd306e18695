"""The `lajur` command: operate the service from a shell.

Every engine error is one line on stderr and a non-zero exit (1; 2 for usage errors).
Web, worker and beat are started as their own programs (exec), so this module never
imports the adapters.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from .accounts import create_user, office_by_code, user_by_name
from .config import Settings
from .errors import FormInvalid, LajurError
from .services import Services

WIB = ZoneInfo("Asia/Jakarta")


def _fmt(dt: datetime | None) -> str:
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


def _user_id(svc: Services, username: str) -> int:
    with svc.sessions() as session:
        return user_by_name(session, username).id


@main.command()
@click.pass_context
def migrate(ctx):
    """Create or upgrade the database schema."""
    from .migrate import upgrade
    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    click.echo("database at head")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--as", "as_user", help="deploy as this process owner (default: the operator at the console)")
@click.pass_context
def deploy(ctx, folder, as_user):
    """Validate a process folder and deploy it as a new version."""
    from .deploy import deploy_folder
    svc = services(ctx)
    with svc.sessions.begin() as session:
        user = user_by_name(session, as_user) if as_user else None
        result = deploy_folder(session, folder, svc.runtime.store, deployed_by=user)
        v = result.version
        state = "deployed" if result.created else "unchanged, already"
        click.echo(f"{v.definition.key}: {state} version {v.version} ({v.content_hash[:12]})")


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
    from .throttle import unlock
    with services(ctx).sessions.begin() as session:
        unlock(session, user_by_name(session, username))
    click.echo(f"user {username} unlocked")


@main.group()
def files():
    """Evidence files."""


@files.command("prune")
@click.option("--grace-hours", default=48.0, show_default=True, type=float,
              help="keep an upload no step refers to for this long (a draft in progress)")
@click.pass_context
def files_prune(ctx, grace_hours):
    """Remove uploaded files that no step refers to after the grace period."""
    from datetime import timedelta
    from .attachments import prune
    svc = services(ctx)
    with svc.sessions.begin() as session:
        n = prune(session, svc.settings.data_dir, svc.runtime.clock(), timedelta(hours=grace_hours))
    click.echo(f"{n} unreferenced file(s) removed")


@main.command("seed-demo")
@click.pass_context
def seed_demo_cmd(ctx):
    """Create the demo offices and users and deploy both SOPs."""
    from .demo import seed_demo
    svc = services(ctx)
    with svc.sessions.begin() as session:
        logins = seed_demo(session, svc.runtime.store, svc.settings.data_dir / "demo-logins.json")
    click.echo("demo logins (username / password):")
    for name, password in logins.items():
        click.echo(f"  {name:18} {password}")


@main.command()
@click.argument("username")
@click.option("--view", type=click.Choice(["mine", "group", "overdue", "completed", "office"]), default=None,
              help="one list; default: mine and group")
@click.pass_context
def tasks(ctx, username, view):
    """List a user's tasks."""
    svc = services(ctx)
    uid = _user_id(svc, username)
    now = svc.runtime.clock()
    for v in [view] if view else ["mine", "group"]:
        rows = svc.runtime.list_tasks(uid, v)
        click.echo(f"[{v}] {len(rows)} task(s)")
        for r in rows:
            flag = " TERLAMBAT" if r.overdue(now) else ""
            click.echo(f"  #{r.id:<6} {r.process_key:28} inst {r.instance_id:<6} {r.name[:40]:40} "
                       f"holder={r.assignee or '-':16} due {_fmt(r.due_at)}{flag}  | {r.subject[:40]}")


@main.command()
@click.argument("username")
@click.argument("process_key")
@click.option("--subject", required=True)
@click.pass_context
def start(ctx, username, process_key, subject):
    """Start an SOP instance."""
    svc = services(ctx)
    iid = svc.runtime.start(_user_id(svc, username), process_key, subject)
    click.echo(f"instance {iid} started")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.pass_context
def claim(ctx, username, task_id):
    """Claim a task."""
    svc = services(ctx)
    svc.runtime.claim(_user_id(svc, username), task_id)
    click.echo(f"task {task_id} claimed by {username}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.pass_context
def unclaim(ctx, username, task_id):
    """Release a claimed task back to its group."""
    svc = services(ctx)
    svc.runtime.unclaim(_user_id(svc, username), task_id)
    click.echo(f"task {task_id} released")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.argument("to_username")
@click.pass_context
def reassign(ctx, username, task_id, to_username):
    """(Supervisor) give a task to another member of its lane."""
    svc = services(ctx)
    svc.runtime.reassign(_user_id(svc, username), task_id, to_username)
    click.echo(f"task {task_id} reassigned to {to_username}")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--data", "data_text", required=True, help="JSON object, or @file.json")
@click.pass_context
def complete(ctx, username, task_id, data_text):
    """Complete a task with its form data (JSON)."""
    if data_text.startswith("@"):
        data_text = Path(data_text[1:]).read_text(encoding="utf-8")
    try:
        data = json.loads(data_text)
    except json.JSONDecodeError as exc:
        raise LajurError(f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    svc = services(ctx)
    svc.runtime.complete(_user_id(svc, username), task_id, data)
    click.echo(f"task {task_id} completed")


@main.command()
@click.argument("username")
@click.argument("instance_id", type=int)
@click.pass_context
def show(ctx, username, instance_id):
    """Show an instance with its steps and history."""
    svc = services(ctx)
    d = svc.runtime.instance_detail(_user_id(svc, username), instance_id)
    inst, version = d["instance"], d["version"]
    click.echo(f"instance {inst.id}: {inst.subject}")
    click.echo(f"  SOP {version.definition.name} v{version.version}  status {inst.status}  "
               f"started {_fmt(inst.started_at)}")
    click.echo("  steps:")
    for t in d["tasks"]:
        click.echo(f"    #{t.id:<6} {t.name[:45]:45} {t.state:9} ready {_fmt(t.ready_at)}  due {_fmt(t.due_at)}"
                   f"  done {_fmt(t.completed_at)}")
    click.echo("  history:")
    for e in d["events"]:
        who = e.user.username if e.user else "system"
        click.echo(f"    {_fmt(e.at)}  {e.kind:18} {e.step or '':10} {who:16} "
                   f"{json.dumps(e.data, ensure_ascii=False)[:100] if e.data else ''}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="LAJUR_HOST")
@click.option("--port", default=5000, show_default=True, type=int, envvar="LAJUR_PORT")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes")
def web(host, port, workers):
    """Serve the web app: gunicorn behind nginx (engine/webserver.py), metrics in multi-process mode."""
    from .metrics_dir import prepare_metrics_dir
    from .webserver import serve
    settings = Settings.from_env()
    prepare_metrics_dir(settings, f"web-{port}")
    sys.exit(serve(settings.data_dir, host, port, workers))


# Sends are I/O-bound (two database commits and one SMTP/HTTP exchange each): on 2 cores,
# 2 children missed the 5 s p99 reminder target in bench/bench_deadlines.py (10.2 s), 4 met it.
WORKER_CONCURRENCY = 4


@main.command()
@click.option("--concurrency", default=WORKER_CONCURRENCY, show_default=True, type=int,
              help="worker child processes")
def worker(concurrency):
    """Run a Celery worker (reminders, notifications, timers)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                               "--loglevel", "INFO", "--concurrency", str(concurrency)])


@main.command()
def beat():
    """Run Celery beat (the deadline tick)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO"])


@main.command()
@click.pass_context
def status(ctx):
    """Heartbeats of the deadline tick, beats and workers, and the outbox; exit 1 if one is silent."""
    from .heartbeat import report
    svc = services(ctx)
    with svc.engine.connect() as conn:
        lines, wrong = report(conn, svc.settings, datetime.now(ZoneInfo("UTC")))
    for line in lines:
        click.echo(line)
    if wrong:
        click.echo("error: " + "; ".join(wrong), err=True)
        ctx.exit(1)


@main.command("tick")
@click.pass_context
def tick(ctx):
    """Fire due BPMN timers once (what beat does every few seconds)."""
    svc = services(ctx)
    click.echo(f"{svc.runtime.run_due_timers()} instance(s) moved")


# ---- SLA clock and reminders (issue 3) ------------------------------------------------------

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
        from .accounts import office_by_code
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


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="why the clock stops (recorded in the audit trail)")
@click.pass_context
def pause(ctx, username, task_id, reason):
    """Pause a step's SLA clock (e.g. waiting for a revised press release)."""
    svc = services(ctx)
    svc.runtime.pause(_user_id(svc, username), task_id, reason)
    click.echo(f"task {task_id}: clock paused")


@main.command()
@click.argument("username")
@click.argument("task_id", type=int)
@click.option("--reason", default="")
@click.pass_context
def resume(ctx, username, task_id, reason):
    """Resume a paused step's SLA clock; prints the new due time."""
    svc = services(ctx)
    due = svc.runtime.resume(_user_id(svc, username), task_id, reason)
    click.echo(f"task {task_id}: clock resumed, due {_fmt(due)}")


@main.group()
def notify():
    """Notification channels."""


@notify.command("test")
@click.argument("username")
@click.pass_context
def notify_test(ctx, username):
    """Send a test message to USERNAME over each of their channels, now, and report each result."""
    from . import outbox
    svc = services(ctx)
    with svc.sessions.begin() as session:
        ids = outbox.create_test_notification(session, svc.settings, user_by_name(session, username),
                                                 svc.runtime.clock())
    result = outbox.send_many(svc.sessions, svc.settings, ids, svc.runtime.clock)
    from .models import Delivery
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
    from .notifications import delivery_counts, failed_deliveries
    svc = services(ctx)
    with svc.sessions() as session:
        office_id = office_by_code(session, office).id if office else None
        counts = delivery_counts(session)
        click.echo("deliveries: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        failed = failed_deliveries(session, office_id)
        click.echo(f"failed: {len(failed)}")
        for d in failed:
            click.echo(f"  #{d.id:<6} task {d.human_task_id} {d.level}/{d.seq} {d.channel:8} to user {d.recipient_id}"
                       f" after {d.attempts} attempt(s): {(d.last_error or '')[:120]}")


@main.group()
def audit():
    """The tamper-evident audit trail (engine/audit.py)."""


@audit.command("verify")
@click.option("--instance", type=int, help="one instance (default: every chain)")
@click.pass_context
def audit_verify(ctx, instance):
    """Recompute the audit hash chains; report the first broken link (exit 1) or how many rows are intact."""
    from .audit import verify
    with services(ctx).sessions() as session:
        result = verify(session, instance)
    if result.broken is not None:
        raise LajurError(f"audit trail broken: {result.broken}")
    click.echo(f"audit trail intact: {result.rows} rows in {result.chains} chains")


from . import cli_tokens  # noqa: E402,F401  (registers `token` and `service-account`)
from .backup_cli import register as _register_backup  # noqa: E402  (backup, restore)
_register_backup(main)
from .sopdoc.cli import register as _register_sopdoc; _register_sopdoc(main)  # noqa: E402,E702

if __name__ == "__main__":
    main()
