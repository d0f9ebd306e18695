"""`lajur backup OUT` and `lajur restore IN`: the CLI side of engine/backup.py.

Kept beside engine/cli.py (registered there with one line) so the commands stay one small
module whatever shape the main CLI takes.
"""
from __future__ import annotations

from pathlib import Path

import click

from .backup import backup, restore
from .config import Settings


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def backup_cmd(out):
    """Write the database and evidence files to one archive OUT (.tar.gz), while the service runs."""
    result = backup(Settings.from_env(), out)
    m = result.manifest
    click.echo(f"backup {out}: {m['database']['kind']} at revision {m['schema_revision']}, "
               f"{m['counts']['process_instance']} instance(s), {m['counts']['human_task']} step(s), "
               f"{m['counts']['audit_event']} audit row(s), {m['evidence']['files']} file(s)")


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace what the target database and data directory hold")
def restore_cmd(archive, force):
    """Restore ARCHIVE into the configured database and data directory (empty unless --force)."""
    result = restore(Settings.from_env(), archive, force=force)
    m = result.manifest
    click.echo(f"restored {archive} ({m['created_at']}): {m['counts']['process_instance']} instance(s), "
               f"{m['counts']['human_task']} step(s), {m['evidence']['files']} file(s); checksums and counts match")


def register(group: click.Group) -> None:
    group.add_command(backup_cmd)
    group.add_command(restore_cmd)
