"""Registers an office keeps (Buku Agenda, Daftar Arsip) and the numbers Lajur issues in them.

Why Lajur issues them: typed by hand, two press releases got one number or a gap appeared,
and nothing could be printed for the cabinet. A step takes the next number of a register by
declaring it in its process folder (`spiffworkflow:property name="register" value="agenda"`,
read by engine/bpmn.py, checked against the office's registers at deploy). The number is
issued inside the step's completion transaction (engine/commands.py `complete`) through
`UnitOfWork.take_number`: one `INSERT .. ON CONFLICT DO UPDATE .. RETURNING` on the counter
row of (register, year), which stays locked until COMMIT. Two completions at once queue on
that row and get consecutive numbers; a completion that rolls back gives its number back,
so there is never a gap. SQLite serialises writers anyway (`BEGIN IMMEDIATE`).

An instance keeps its number: completing the step again (after a TIDAK) re-uses it, and a
cancelled instance's entry stays, marked `cancelled_at`.

The number's format is the register's template, in the style of the tata naskah dinas
(Permendagri 1/2023: kode keamanan / kode klasifikasi / nomor urut / unit), e.g.
`{keamanan}/{klasifikasi}/{nomor:5}/{unit}` gives `B/400.14.1.3/00022/DPMK`. The running
number restarts at 1 every year (the office's local year).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from .errors import FormInvalid, NotFound
from .models import Register, RegisterEntry
from .sqltx import SqlTx, Stmt

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
TOKENS = {"nomor", "tahun", "bulan", "bulan_romawi", "klasifikasi", "unit", "keamanan"}
_TOKEN = re.compile(r"\{([a-z_]+)(?::([1-9]))?\}")
CODE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # a register's code (also what a URL may name)
SECURITY_CODES = ("B", "T", "R", "SR")  # Biasa, Terbatas, Rahasia, Sangat Rahasia (Permendagri 1/2023)
MAX_TEMPLATE = 200

# what a new office gets; migration 0015 gave the same to the offices that existed
DEFAULT_REGISTERS = (
    {"code": "agenda", "name": "Buku Agenda", "kind": "agenda", "template": "{nomor:3}/{unit}/{tahun}"},
    {"code": "arsip", "name": "Daftar Arsip", "kind": "arsip", "template": "{keamanan}/{klasifikasi}/{nomor:5}/{unit}"},
)


class TemplateError(ValueError):
    pass


def check_template(template: str) -> str:
    """A register template: known tokens only, one running number; raise TemplateError."""
    template = (template or "").strip()
    if not template or len(template) > MAX_TEMPLATE or not template.isprintable():
        raise TemplateError(f"1-{MAX_TEMPLATE} characters on one line")
    tokens = [m.group(1) for m in _TOKEN.finditer(template)]
    unknown = sorted(set(tokens) - TOKENS)
    if unknown:
        raise TemplateError(f"unknown part {{{unknown[0]}}}; use {', '.join('{' + t + '}' for t in sorted(TOKENS))}")
    if tokens.count("nomor") != 1:
        raise TemplateError("the template needs the running number {nomor} (or {nomor:5}) exactly once")
    if "{" in _TOKEN.sub("", template) or "}" in _TOKEN.sub("", template):
        raise TemplateError("a brace that is not part of {nomor}, {tahun}, ...")
    return template


def render(template: str, *, seq: int, day: date, unit: str, security: str, classification: str | None) -> str:
    """The number as the office writes it."""
    values = {"tahun": str(day.year), "bulan": f"{day.month:02d}", "bulan_romawi": ROMAN[day.month - 1],
              "klasifikasi": classification or "", "unit": unit, "keamanan": security}

    def one(match: re.Match) -> str:
        name, width = match.group(1), match.group(2)
        if name == "nomor":
            return str(seq).zfill(int(width)) if width else str(seq)
        return values[name]
    return _TOKEN.sub(one, template)


def needs_classification(template: str) -> bool:
    return "{klasifikasi}" in template


# ---- the step's side: what engine/commands.py calls inside a completion ---------------------

_R, _E = Register.__table__, RegisterEntry.__table__
# the register a step names, with the instance's entry in it if the instance has one
STEP_REGISTER = Stmt(
    select(_R.c.id, _R.c.template, _R.c.unit, _R.c.security, _R.c.kind, _E.c.id, _E.c.number, _E.c.seq)
    .select_from(_R.outerjoin(_E, and_(_E.c.register_id == _R.c.id, _E.c.instance_id == bindparam("instance"))))
    .where(_R.c.office_id == bindparam("office"), _R.c.code == bindparam("code")))


class Issued(NamedTuple):
    field: str
    number: str
    seq: int
    new: bool


def _text(value, limit: int) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)[:limit]


def issue(tx: SqlTx, uow, *, spec: dict, office_id: int, instance_id: int, task_id: int, step: str,
          user_id: int, user_name: str | None, subject: str | None, data: dict, now: datetime,
          tz: str = "Asia/Jakarta", default_classification: str | None = None) -> Issued:
    """Take the next number of the register `spec` names (a step's "register" metadata from
    engine/bpmn.py), or the instance's number there if it has one; record its entry.

    `data` is the workflow data the step sees plus what was submitted (the classification
    and the title come from it). Runs inside the completion's transaction, with the instance
    locked; the counter row is locked from here to COMMIT."""
    row = tx.one(STEP_REGISTER, {"office": office_id, "code": spec["code"], "instance": instance_id})
    if row is None:  # deploy checked it; the register was removed since
        raise NotFound(f"register {spec['code']!r} does not exist in this office")
    register_id, template, unit, security, kind, entry_id, number, seq = row
    local = now.astimezone(ZoneInfo(tz))
    classification = _text(data.get(spec.get("classification") or ""), 40) or default_classification
    if entry_id is not None:
        return Issued(spec["field"], number, seq, False)
    if needs_classification(template) and not classification:
        raise FormInvalid({spec.get("classification") or "": [
            "kode klasifikasi belum dipilih / no classification code chosen"]})
    seq = uow.take_number(register_id, local.year)
    number = render(template, seq=seq, day=local.date(), unit=unit, security=security, classification=classification)
    raw_date = data.get(spec.get("date") or "")
    try:
        doc_date = date.fromisoformat(raw_date) if isinstance(raw_date, str) else local.date()
    except ValueError:
        doc_date = local.date()
    uow.register_entry({
        "register_id": register_id, "office_id": office_id, "year": local.year, "seq": seq, "number": number,
        "classification": classification, "instance_id": instance_id, "human_task_id": task_id, "step": step,
        "title": _text(data.get(spec.get("title") or ""), 300) or (subject or "")[:300],
        "kind": _text(data.get(spec.get("kind") or ""), 200), "sender": (user_name or "")[:200] or None,
        "location": _text(data.get(spec.get("location") or ""), 200), "doc_date": doc_date,
        "issued_at": now, "issued_by_id": user_id})
    return Issued(spec["field"], number, seq, True)


# ---- the office's side: defining registers --------------------------------------------------

def ensure_defaults(session: Session, office) -> None:
    """The Buku Agenda and the Daftar Arsip of a new office (templates editable later)."""
    from .uow import UnitOfWork
    have = set(session.scalars(select(Register.code).where(Register.office_id == office.id)))
    uow = UnitOfWork.on(session)
    for spec in DEFAULT_REGISTERS:
        if spec["code"] not in have:
            uow.register({**spec, "office_id": office.id, "unit": office.code.upper()[:32], "security": "B"})
    uow.flush()


def office_registers(session: Session, office_id: int) -> list[Register]:
    return list(session.scalars(select(Register).where(Register.office_id == office_id).order_by(Register.id)))


def codes_of(session: Session, office_id: int) -> set[str]:
    return set(session.scalars(select(Register.code).where(Register.office_id == office_id)))


def define(session: Session, office_id: int, code: str, *, name: str | None = None, template: str | None = None,
           unit: str | None = None, security: str | None = None, kind: str | None = None) -> Register:
    """Create a register or change its name, template, unit or security code. Numbers already
    issued keep their text; the next one uses the new template."""
    from .uow import UnitOfWork
    errors: dict[str, list[str]] = {}
    code = (code or "").strip().lower()
    if not CODE.match(code):
        errors["code"] = ["huruf kecil, angka atau -, maks. 32 / lowercase letters, digits or -, at most 32"]
    if template is not None:
        try:
            template = check_template(template)
        except TemplateError as exc:
            errors["template"] = [str(exc)]
    if security is not None and security not in SECURITY_CODES:
        errors["security"] = [f"one of {', '.join(SECURITY_CODES)}"]
    if unit is not None and (len(unit.strip()) > 32 or not unit.strip().isprintable() or "/" in unit):
        errors["unit"] = ["at most 32 characters, no /"]
    if name is not None and not (0 < len(name.strip()) <= 200 and name.strip().isprintable()):
        errors["name"] = ["1-200 characters"]
    if kind is not None and kind not in ("agenda", "arsip"):
        errors["kind"] = ["agenda or arsip"]
    if errors:
        raise FormInvalid(errors)
    existing = session.scalar(select(Register).where(Register.office_id == office_id, Register.code == code))
    values = {k: v.strip() if isinstance(v, str) else v for k, v in
              {"name": name, "template": template, "unit": unit, "security": security, "kind": kind}.items()
              if v is not None}
    uow = UnitOfWork.on(session)
    if existing is None:
        if "template" not in values:
            raise FormInvalid({"template": ["wajib diisi / required"]})
        uow.register({"office_id": office_id, "code": code, "name": values.get("name", code),
                      "kind": values.get("kind", "agenda"), "template": values["template"],
                      "unit": values.get("unit", ""), "security": values.get("security", "B")})
    else:
        uow.register_changed(existing.id, values)
    uow.flush()
    session.expire_all()
    return session.scalar(select(Register).where(Register.office_id == office_id, Register.code == code))


def define_for(session: Session, user, office_code: str, code: str, **values) -> Register:
    """`define`, as a signed-in user (an ORM User) on the web: the office's administrator only."""
    from . import access
    from .accounts import office_by_code
    office = office_by_code(session, office_code)
    access.check_define_registers(access.Actor.of_user(user) if user is not None else None, office.id)
    return define(session, office.id, code, **{k: v for k, v in values.items() if v not in (None, "")})


def register_by_code(session: Session, office_id: int, code: str) -> Register:
    found = session.scalar(select(Register).where(Register.office_id == office_id, Register.code == code))
    if found is None:
        raise NotFound(f"register {code!r} does not exist")
    return found


def instance_numbers(session: Session, instance_id: int) -> list[tuple[Register, RegisterEntry]]:
    """The numbers an instance holds, register by register."""
    return [(r, e) for r, e in session.execute(
        select(Register, RegisterEntry).join(RegisterEntry, RegisterEntry.register_id == Register.id)
        .where(RegisterEntry.instance_id == instance_id).order_by(Register.id))]

