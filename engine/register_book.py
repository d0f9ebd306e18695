"""A register as the office keeps it on paper: the Buku Agenda (nomor urut, tanggal, jenis
berita, judul, pengirim, status, the instance) and the Daftar Arsip (nomor arsip,
klasifikasi, judul, tanggal, lokasi di filing kabinet), filtered by year and month.

One `Book` feeds the register page, its XLSX and its printable PDF (engine/papers.py), so
the three never disagree. The year is the register's year (numbers restart each year); the
month is the month of the entry's date (tanggal berita / tanggal dokumen)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from . import access, classification
from .errors import FormInvalid
from .models import Office, ProcessDefinition, ProcessInstance, ProcessVersion, Register, RegisterEntry

MAX_ROWS = 5000  # one year of one register fits; the page says when it is cut

COLUMNS = {
    "agenda": ("seq", "number", "doc_date", "kind", "title", "sender", "status"),
    "arsip": ("number", "classification", "title", "doc_date", "location", "status"),
}
LABELS = {"seq": "Nomor urut", "number": "Nomor", "doc_date": "Tanggal", "kind": "Jenis berita", "title": "Judul",
          "sender": "Pengirim", "status": "Status", "classification": "Klasifikasi",
          "location": "Lokasi (filing kabinet)"}


@dataclass
class Row:
    seq: int
    number: str
    doc_date: date | None
    kind: str | None
    title: str
    sender: str | None
    status: str  # running|completed|cancelled (a cancelled instance keeps its number, marked)
    classification: str | None
    classification_name: str | None
    location: str | None
    instance_id: int | None
    sop: str | None

    def value(self, column: str):
        if column == "classification":
            return " ".join(filter(None, [self.classification, self.classification_name])) or None
        return getattr(self, column)


@dataclass
class Book:
    office: Office
    register: Register
    year: int
    month: int | None
    rows: list[Row] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    cut: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS.get(self.register.kind, COLUMNS["agenda"])


def check_period(year, month) -> tuple[int | None, int | None]:
    """The year and month filters as given on the web or the CLI; FormInvalid otherwise."""
    errors = {}
    try:
        year = int(year) if year not in (None, "") else None
        if year is not None and not 2000 <= year <= 2100:
            raise ValueError
    except (TypeError, ValueError):
        errors["year"] = ["tahun 2000-2100 / a year 2000-2100"]
    try:
        month = int(month) if month not in (None, "") else None
        if month is not None and not 1 <= month <= 12:
            raise ValueError
    except (TypeError, ValueError):
        errors["month"] = ["bulan 1-12 / a month 1-12"]
    if errors:
        raise FormInvalid(errors)
    return year, month


def book(session: Session, actor: access.Actor, office_id: int, code: str, year: int | None, month: int | None,
         today: date) -> Book:
    """The register `code` of an office for a year (default: this year), optionally one month."""
    from .registers import register_by_code
    access.check_read_registers(actor, office_id)
    register = register_by_code(session, office_id, code)
    office = session.get(Office, office_id)
    years = sorted(set(session.scalars(select(RegisterEntry.year).where(
        RegisterEntry.register_id == register.id).distinct())) | {today.year}, reverse=True)
    year = year or today.year
    q = (select(RegisterEntry, ProcessInstance.status, ProcessDefinition.name)
         .outerjoin(ProcessInstance, ProcessInstance.id == RegisterEntry.instance_id)
         .outerjoin(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
         .outerjoin(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
         .where(RegisterEntry.register_id == register.id, RegisterEntry.office_id == office_id,
                RegisterEntry.year == year))
    if month:
        q = q.where(extract("month", RegisterEntry.doc_date) == month)
    found = session.execute(q.order_by(RegisterEntry.seq).limit(MAX_ROWS + 1)).all()
    rows = []
    for entry, status, sop in found[:MAX_ROWS]:
        code_row = classification.find(entry.classification) if entry.classification else None
        rows.append(Row(entry.seq, entry.number, entry.doc_date, entry.kind, entry.title, entry.sender,
                        "cancelled" if entry.cancelled_at is not None else (status or "running"),
                        entry.classification, code_row.name if code_row else None, entry.location,
                        entry.instance_id, sop))
    return Book(office, register, year, month, rows, years, cut=len(found) > MAX_ROWS)


def counts(session: Session, office_id: int) -> dict[int, int]:
    """Entries per register of an office (for the registers' index page)."""
    return dict(session.execute(select(RegisterEntry.register_id, func.count()).where(
        RegisterEntry.office_id == office_id).group_by(RegisterEntry.register_id)).all())
