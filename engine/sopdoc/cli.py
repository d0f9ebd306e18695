"""`lajur import-sop` and `lajur export-sop`, registered on the `lajur` group by engine/cli/sopdoc.py."""
from __future__ import annotations

from pathlib import Path

import click

from ..accounts import office_by_code
from ..errors import LajurError


class SopDocumentError(LajurError):
    """An SOP document that cannot be read, or a draft that cannot be written."""


@click.command("import-sop")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--office", "office_code", required=True, help="office code the SOP belongs to")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="new (or empty) folder for the draft process")
@click.option("--key", help="process key (default: office code and SOP name)")
@click.pass_context
def import_sop_cmd(ctx, file, office_code, out, key):
    """Read an SOP document (DOCX, XLSX, HTML, text export) into a draft process folder."""
    from ..cli import services
    from .draft import PROBLEMS_FILE, import_sop
    svc = services(ctx)
    with svc.sessions() as session:
        office = office_by_code(session, office_code)
        office_name = office.name
    try:
        doc = import_sop(file, out, office_code, office_name, key)
    except ValueError as exc:
        raise SopDocumentError(f"{file.name}: {exc}") from None
    click.echo(f"draft written to {out}: {len(doc.actors)} lane(s), {len(doc.steps)} step(s), "
               f"{sum(1 for s in doc.steps if s.decision)} decision(s)")
    if doc.problems:
        click.echo(f"{len(doc.problems)} problem(s) to resolve before deploying (also in {out / PROBLEMS_FILE}):")
        for problem in doc.problems:
            click.echo(f"  {problem}")


@click.command("export-sop")
@click.argument("process_key")
@click.option("--version", "number", type=int, help="deployed version (default: the latest)")
@click.option("--office", "office_code", help="office code, when the key exists in several offices")
@click.option("--format", "fmt", type=click.Choice(["pdf", "docx"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_sop_cmd(ctx, process_key, number, office_code, fmt, out):
    """Print the SOP document of a deployed version as PDF or DOCX."""
    from ..cli import services
    from .deployed import document_from_bpmn, find_version
    svc = services(ctx)
    with svc.sessions() as session:
        version = find_version(session, process_key, number, office_code)
        doc = document_from_bpmn(version.bpmn_xml, version.sop)
        number = version.version
    if fmt == "pdf":
        from .render_pdf import to_pdf
        data = to_pdf(doc)
    else:
        from .render_docx import to_docx
        data = to_docx(doc)
    out.write_bytes(data)
    click.echo(f"{process_key} version {number}: {fmt.upper()} written to {out} ({len(data)} bytes)")


def register(group: click.Group) -> None:
    group.add_command(import_sop_cmd)
    group.add_command(export_sop_cmd)
