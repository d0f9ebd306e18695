"""Process owners' commands: `lajur deploy [--check]`, `lajur versions`, `lajur diff`, `lajur migrate-instances`."""
from __future__ import annotations

from pathlib import Path

import click

from .app import fmt, main, services, user_id
from ..accounts import user_by_name
from ..errors import LajurError


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--as", "as_user", help="deploy as this process owner (default: the operator at the console)")
@click.option("--check", is_flag=True, help="validate and run every path in memory; store nothing")
@click.option("--create-groups", is_flag=True, help="create the office groups the lanes name that do not exist yet")
@click.pass_context
def deploy(ctx, folder, as_user, check, create_groups):
    """Validate a process folder and deploy it as a new version."""
    from ..bpmn import graph_of, load_process_folder
    from ..deploy import deploy_folder
    svc = services(ctx)
    limits = svc.settings.deploy_limits
    if check:
        from ..dryrun import check_paths
        package = load_process_folder(folder, limits)
        report = check_paths(package, graph_of(package.bpmn_xml, package.process_id), svc.runtime.store)
        taken = sum(report.branches.values())
        click.echo(f"{package.key}: {len(package.steps)} step(s), {report.runs} run(s), "
                   f"{report.completed_runs} reached an end, {taken}/{len(report.branches)} branch(es) taken")
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        if not report.ok:
            ctx.exit(1)
        return
    with svc.sessions.begin() as session:
        user = user_by_name(session, as_user) if as_user else None
        result = deploy_folder(session, folder, svc.runtime.store, deployed_by=user, limits=limits,
                               create_groups=create_groups)
        v = result.version
        state = "deployed" if result.created else "unchanged, already"
        click.echo(f"{v.definition.key}: {state} version {v.version} ({v.content_hash[:12]})")
        if result.created_groups:
            click.echo(f"groups created: {', '.join(result.created_groups)}")


@main.command()
@click.argument("office_code")
@click.argument("process_key")
@click.pass_context
def versions(ctx, office_code, process_key):
    """The versions of an SOP: who deployed each, when, and its instances."""
    from ..versions import list_versions
    with services(ctx).sessions() as session:
        for row in list_versions(session, office_code, process_key):
            click.echo(f"v{row.version:<4} {fmt(row.deployed_at)}  by {row.deployed_by or 'console':16} "
                       f"{row.content_hash[:12]}  running {row.running}, done {row.done}, incident {row.incident}"
                       f"{'  (latest)' if row.latest else ''}{'  note: ' + ' '.join(row.note.split()) if row.note else ''}")


@main.command()
@click.argument("office_code")
@click.argument("process_key")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.pass_context
def diff(ctx, office_code, process_key, a, b):
    """What changed from version A to B: steps, lanes, timers, conditions, form fields."""
    from ..versions import diff as version_diff
    if a == b:
        raise LajurError("give two different versions")
    with services(ctx).sessions() as session:
        lines = version_diff(session, office_code, process_key, a, b)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no differences in steps, lanes, timers, conditions or form fields")


@main.command("migrate-instances")
@click.argument("process_key")
@click.option("--office", "office_code", required=True, help="the office whose SOP it is")
@click.option("--from", "frm", type=int, required=True, help="the version the instances run on")
@click.option("--to", "to", type=int, required=True, help="the version to move them to")
@click.option("--dry-run", is_flag=True, help="only say, per instance, whether it can move and why not")
@click.option("--as", "as_user", help="act as this process owner (default: the operator at the console)")
@click.option("--batch", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="instances read per batch (each moves in its own transaction)")
@click.pass_context
def migrate_instances(ctx, process_key, office_code, frm, to, dry_run, as_user, batch):
    """Move the running instances of an SOP from version FROM to TO (see README)."""
    from .. import migration
    svc = services(ctx)
    actor = user_id(svc, as_user) if as_user else None
    if dry_run:
        report = migration.plan(svc.runtime, actor, office_code, process_key, frm, to)
    else:
        report = migration.apply(svc.runtime, actor, office_code, process_key, frm, to, batch=batch)
    for line in report_lines(report, dry_run):
        click.echo(line)
    if report.count("failed"):
        ctx.exit(1)


def report_lines(report, dry_run: bool) -> list[str]:
    """The per-instance report, one instance per line and one indented line per open step."""
    lines = []
    for inst in report.instances:
        subject = " ".join(inst.subject.split())[:60]
        if inst.refusal is not None:
            verdict = "FAILED" if inst.outcome == "failed" else "stays"
            lines.append(f"#{inst.id} {subject!r} [{inst.status}]: {verdict}: {inst.refusal}")
            continue
        verdict = "moved" if inst.outcome == "moved" else "can move"
        lines.append(f"#{inst.id} {subject!r} [{inst.status}]: {verdict}")
        for s in inst.steps:
            parts = [s.step if s.step == s.step_before else f"{s.step_before} -> {s.step}"]
            parts.append(f"held by {s.holder} (kept)" if s.holder else "unclaimed")
            if s.lane != s.lane_before:
                parts.append(f"lane {s.lane_before} -> {s.lane}")
            if s.minutes != s.minutes_before:
                parts.append(f"Mutu Baku {s.minutes_before or 0:g} -> {s.minutes or 0:g} min, "
                             f"due {fmt(s.due_before)} -> {fmt(s.due)}")
            elif s.reminders_changed:
                parts.append("reminders replaced")
            if s.form_changed:
                parts.append("form changed")
            lines.append("    " + "; ".join(parts))
    head = f"{report.key} v{report.from_version} -> v{report.to_version}: "
    if dry_run:
        lines.append(head + f"{len(report.instances)} instance(s), {report.movable} can move, "
                     f"{len(report.instances) - report.movable} stay (dry run: nothing changed)")
    else:
        lines.append(head + f"moved {report.count('moved')}, stayed {report.count('stayed')}, "
                     f"failed {report.count('failed')}")
    return lines
