"""The registers on the web: the Buku Agenda and the Daftar Arsip of the user's office
(filter by year and month; XLSX and printable PDF), the classification code search (works
without JavaScript), the press release paper of an instance, and retrying a failed check of a
published link. The office is the signed-in user's, decided on the server (a regency admin
may name one with `?office=<code>`); the rules are engine/access.py's."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from engine import access, classification, papers, published, register_book, registers
from engine.errors import FormInvalid
from engine.models import Office

from . import current_services, flash
from .auth import login_required
from .dashboard.export import XLSX_MIME

bp = Blueprint("registers", __name__)


def _office(db) -> Office:
    if current_user.has_role("admin"):
        code = (request.values.get("office") or "")[:32]
        office = db.scalar(select(Office).where(Office.code == code)) if code else \
            db.scalar(select(Office).order_by(Office.code))
    else:
        office = db.get(Office, current_user.office_id) if current_user.office_id else None
    if office is None:
        abort(404)
    return office


def _actor() -> access.Actor:
    return access.Actor.of_view(current_user)


def column_labels() -> dict[str, str]:
    return {"seq": _("Nomor urut"), "number": _("Nomor"), "doc_date": _("Tanggal"), "kind": _("Jenis berita"),
            "title": _("Judul"), "sender": _("Pengirim"), "status": _("Status"), "classification": _("Klasifikasi"),
            "location": _("Lokasi (filing kabinet)")}


def status_labels() -> dict[str, str]:
    return {"running": _("Berjalan"), "completed": _("Selesai"), "cancelled": _("Dibatalkan")}


@bp.get("/registers")
@login_required
def index():
    with current_services().sessions() as db:
        office = _office(db)
        access.check_read_registers(_actor(), office.id)
        rows = registers.office_registers(db, office.id)
        counts = register_book.counts(db, office.id)
    return render_template("registers/index.html", office=office, registers=rows, counts=counts)


def _code(code: str) -> str:
    """A register code as the URL gives it; anything that cannot be one is a 404."""
    if not registers.CODE.match(code or ""):
        abort(404)
    return code


def _book(db, code: str):
    code = _code(code)
    office = _office(db)
    today = datetime.now(timezone.utc).astimezone(ZoneInfo(office.timezone or "Asia/Jakarta")).date()
    year, month = register_book.check_period(request.args.get("year"), request.args.get("month"))
    return register_book.book(db, _actor(), office.id, code, year, month, today)


@bp.get("/registers/<code>")
@login_required
def book(code: str):
    errors, status = {}, 200
    with current_services().sessions() as db:  # read, then render after the session ends
        try:
            bk = _book(db, code)
        except FormInvalid as exc:
            office = _office(db)
            access.check_read_registers(_actor(), office.id)
            register = registers.register_by_code(db, office.id, _code(code))
            today = datetime.now(timezone.utc).date()
            bk = register_book.Book(office, register, today.year, None, [], [today.year])
            errors, status = exc.errors, 400
    return render_template("registers/book.html", bk=bk, labels=column_labels(), statuses=status_labels(),
                           errors=errors), status


def _file_name(bk, ext: str) -> str:
    period = f"{bk.year}-{bk.month:02d}" if bk.month else str(bk.year)
    return f"{bk.register.code}-{bk.office.code}-{period}.{ext}"


@bp.get("/registers/<code>.xlsx")
@login_required
def book_xlsx(code: str):
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    with current_services().sessions() as db:
        bk = _book(db, code)
    labels, statuses = column_labels(), status_labels()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(bk.register.name[:31])

    def cell(value):
        if value is None or isinstance(value, int):
            return value
        c = WriteOnlyCell(ws, value=str(value))
        c.data_type = "s"  # text stays text: "=..." is never a formula (OWASP CSV/XLSX injection)
        return c
    ws.append([cell(labels[c]) for c in bk.columns] + [cell(_("Tautan"))])
    base = request.host_url.rstrip("/")
    for r in bk.rows:
        values = [statuses.get(r.status, r.status) if c == "status" else
                  (r.value(c).isoformat() if c == "doc_date" and r.value(c) else r.value(c)) for c in bk.columns]
        link = f"{base}{url_for('instances.detail', instance_id=r.instance_id)}" if r.instance_id else None
        ws.append([cell(v) for v in values] + [cell(link)])
    buf = io.BytesIO()
    wb.save(buf)
    return send_file(io.BytesIO(buf.getvalue()), mimetype=XLSX_MIME, as_attachment=True,
                     download_name=_file_name(bk, "xlsx"))


@bp.get("/registers/<code>.pdf")
@login_required
def book_pdf(code: str):
    with current_services().sessions() as db:
        bk = _book(db, code)
        pdf = papers.book_pdf(db, bk)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=_file_name(bk, "pdf"))


@bp.get("/klasifikasi")
@login_required
def classification_search():
    query = (request.args.get("q") or "")[:classification.MAX_QUERY]
    return render_template("registers/classification.html", q=query, rows=classification.search(query),
                           source=classification.source())


@bp.get("/instances/<int:instance_id>/paper.pdf")
@login_required
def paper(instance_id: int):
    services = current_services()
    with services.sessions() as db:
        pdf = papers.paper_pdf(db, _actor(), instance_id, services.settings.data_dir)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=f"press-release-{instance_id}.pdf")


@bp.post("/instances/<int:instance_id>/publication/<int:check_id>/retry")
@login_required
def retry_publication(instance_id: int, check_id: int):
    """Fetch the link again now: before any transaction, then record the outcome."""
    services = current_services()
    with services.sessions() as db:
        check = db.get(published.PublicationCheck, check_id)
        if check is None or check.instance_id != instance_id:
            abort(404)
    outcome = published.run_check(services.sessions, check_id, published.Policy.of(services.settings),
                                  services.runtime.clock, actor=_actor())
    if outcome.status == "ok":
        flash(_("Tautan diperiksa: halaman tayang."), "info")
    else:
        flash(_("Tautan diperiksa: %(why)s", why=outcome.detail), "error")
    return redirect(url_for("instances.detail", instance_id=instance_id) + "#publikasi")
