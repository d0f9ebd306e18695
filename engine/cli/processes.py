"""Process owners' commands: `lajur deploy [--check]`, `lajur versions`, `lajur diff`."""
from __future__ import annotations

from pathlib import Path

import click

from .app import fmt, main, services
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
            counts = ", ".join(f"{k} {v}" for k, v in sorted(row.counts.items())) or "no instances"
            click.echo(f"v{row.version:<4} {fmt(row.deployed_at)}  by {row.deployed_by or 'console':16} "
                       f"{row.content_hash[:12]}  {counts}{'  (latest)' if row.latest else ''}")


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
