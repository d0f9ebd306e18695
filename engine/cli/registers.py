"""Registers and papers from the shell: `lajur register list|set|show`, `lajur letterhead set`,
`lajur paper`, `lajur cancel` (engine/registers.py, engine/register_book.py, engine/papers.py).
The console acts as the office's administrator (like `lajur group create`)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from .. import access, papers, register_book, registers
from ..accounts import office_by_code
from .app import main, services, user_id


@main.group()
def register():
    """An office's registers (Buku Agenda, Daftar Arsip) and their number templates."""


@register.command("list")
@click.argument("office")
@click.pass_context
def register_list(ctx, office):
    """The registers of OFFICE with their templates."""
    with services(ctx).sessions() as session:
        found = office_by_code(session, office)
        counts = register_book.counts(session, found.id)
        for r in registers.office_registers(session, found.id):
            click.echo(f"{r.code}\t{r.name}\t{r.kind}\t{r.template}\tunit={r.unit}\tkeamanan={r.security}\t"
                       f"{counts.get(r.id, 0)} issued")


@register.command("set")
@click.argument("office")
@click.argument("code")
@click.option("--name", help='e.g. "Buku Agenda"')
@click.option("--template", help='e.g. "{keamanan}/{klasifikasi}/{nomor:5}/{unit}"')
@click.option("--unit", help="the unit code in numbers, e.g. DPMK")
@click.option("--security", help="kode keamanan: B, T, R or SR")
@click.option("--kind", type=click.Choice(["agenda", "arsip"]), help="the columns of its book")
@click.pass_context
def register_set(ctx, office, code, name, template, unit, security, kind):
    """Create the register CODE of OFFICE, or change it (issued numbers keep their text)."""
    with services(ctx).sessions.begin() as session:
        found = office_by_code(session, office)
        access.check_define_registers(None, found.id)
        r = registers.define(session, found.id, code, name=name, template=template, unit=unit, security=security,
                             kind=kind)
        example = registers.render(r.template, seq=22, day=datetime.now(timezone.utc).date(), unit=r.unit,
                                   security=r.security, classification="400.14.1.3")
        click.echo(f"register {r.code} of {office}: {r.template} (e.g. {example})")


@register.command("show")
@click.argument("office")
@click.argument("code")
@click.option("--year", default=None)
@click.option("--month", default=None)
@click.option("--pdf", "pdf_out", type=click.Path(dir_okay=False, path_type=Path), help="also print it to a PDF")
@click.pass_context
def register_show(ctx, office, code, year, month, pdf_out):
    """The lines of a register for a year (and month)."""
    year, month = register_book.check_period(year, month)
    with services(ctx).sessions() as session:
        found = office_by_code(session, office)
        today = datetime.now(timezone.utc).astimezone(ZoneInfo(found.timezone or "Asia/Jakarta")).date()
        console = access.Actor(0, found.id, frozenset({"staff"}))
        bk = register_book.book(session, console, found.id, code, year, month, today)
        for r in bk.rows:
            click.echo("\t".join(str(r.value(c) if r.value(c) is not None else "-") for c in bk.columns))
        if pdf_out:
            pdf_out.write_bytes(papers.book_pdf(session, bk))
            click.echo(f"written {pdf_out}")


@main.group()
def letterhead():
    """An office's letterhead (kop surat) on the papers Lajur prints."""


@letterhead.command("set")
@click.argument("office")
@click.option("--line", "lines", multiple=True, required=True, help="one line of the kop, top first (repeat)")
@click.option("--address", default="", help="the address line under the kop")
@click.pass_context
def letterhead_set(ctx, office, lines, address):
    with services(ctx).sessions.begin() as session:
        papers.set_letterhead(session, None, office_by_code(session, office), list(lines), address)
    click.echo(f"letterhead of {office} set ({len(lines)} line(s))")


@main.command()
@click.argument("username")
@click.argument("instance_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def paper(ctx, username, instance_id, out):
    """Print the press release (or published material record) of an instance to a PDF."""
    svc = services(ctx)
    uid = user_id(svc, username)
    with svc.sessions() as session:
        pdf = papers.paper_pdf(session, access.load_actor(session, uid), instance_id, svc.settings.data_dir)
    out.write_bytes(pdf)
    click.echo(f"written {out}")


@main.command()
@click.argument("username")
@click.argument("instance_id", type=int)
@click.option("--reason", required=True)
@click.pass_context
def cancel(ctx, username, instance_id, reason):
    """(Supervisor) cancel a running instance; its register numbers stay, marked cancelled."""
    svc = services(ctx)
    svc.runtime.cancel(user_id(svc, username), instance_id, reason)
    click.echo(f"instance {instance_id} cancelled")
