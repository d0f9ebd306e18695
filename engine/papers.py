"""The papers Lajur prints: the press release (or published material record) of an instance,
and a register (Buku Agenda, Daftar Arsip) for the cabinet. HTML printed by WeasyPrint, like
the SOP document (engine/sopdoc/render_pdf.py).

The press release paper carries what the SOP asks of it: the office's letterhead (kop surat,
`office_paper`, set by the office's administrator), the Buku Agenda number, date and kind
(the disposition form), the text and the photos, the notes of the disposition, the paraf
trail (who, which step, when; YA or TIDAK with its reason), and the classification and
archive numbers. Everything is read from what the steps stored; nothing of the process runs.

No resource is fetched while printing except the office's own evidence images, by their
SHA-256 (`evidence:<sha>`), read from the data directory (thumbnails where they exist).
"""
from __future__ import annotations

from datetime import date, datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import access, classification, published, registers
from .attachments import IMAGE_MIME, file_path, thumb_path
from .errors import FormInvalid, NotFound
from .models import Attachment, HumanTask, Office, OfficePaper, ProcessInstance, User
from .register_book import LABELS, Book

MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember")
STATUS = {"running": "Berjalan", "completed": "Selesai", "cancelled": "DIBATALKAN"}
MAX_KOP_LINES, MAX_KOP_LINE, MAX_ADDRESS = 5, 120, 300

CSS = """
@page { size: A4; margin: 18mm 18mm 16mm 22mm;
  @bottom-right { content: "Halaman " counter(page) " dari " counter(pages); font: 7pt 'DejaVu Sans'; } }
@page wide { size: A4 landscape; margin: 14mm; }
body { font-family: 'DejaVu Sans', sans-serif; font-size: 9pt; line-height: 1.35; margin: 0; }
.kop { text-align: center; border-bottom: 1.2mm double #000; padding-bottom: 2mm; margin-bottom: 5mm; }
.kop .l0 { font-size: 12pt; font-weight: bold; } .kop .l1 { font-size: 14pt; font-weight: bold; }
.kop .addr { font-size: 8pt; }
h1 { font-size: 12pt; text-align: center; margin: 0 0 4mm 0; text-decoration: underline; }
h2 { font-size: 10pt; margin: 5mm 0 2mm 0; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 0.3mm solid #000; padding: 1.2mm; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eee; font-weight: bold; text-align: left; }
td.k { width: 42mm; font-weight: bold; }
.text { white-space: pre-wrap; border: 0.3mm solid #000; padding: 2mm; }
.photos img { max-width: 75mm; max-height: 60mm; margin: 1mm 2mm 1mm 0; border: 0.2mm solid #777; }
.cancelled { color: #900; font-weight: bold; }
.book { page: wide; }
.book thead { display: table-header-group; } .book tr { page-break-inside: avoid; }
.muted { color: #555; }
table.trail { table-layout: fixed; } table.trail tr { page-break-inside: avoid; }
table.trail thead { display: table-header-group; }
"""


# ---- letterhead -----------------------------------------------------------------------------

def kop_of(session: Session, office: Office) -> tuple[list[str], str]:
    """The office's letterhead lines and address (a plain default until its administrator sets one)."""
    paper = session.get(OfficePaper, office.id)
    if paper is None:
        return ["PEMERINTAH KABUPATEN BANTUL", office.name.upper()], ""
    return list(paper.kop), paper.address


def set_letterhead(session: Session, actor: access.Actor | None, office: Office, lines: list[str],
                   address: str) -> None:
    from .uow import UnitOfWork
    access.check_define_registers(actor, office.id)
    lines = [line.strip() for line in lines if line.strip()]
    errors = {}
    if not 1 <= len(lines) <= MAX_KOP_LINES or any(len(x) > MAX_KOP_LINE or not x.isprintable() for x in lines):
        errors["kop"] = [f"1-{MAX_KOP_LINES} baris, masing-masing maks. {MAX_KOP_LINE} karakter / "
                         f"1-{MAX_KOP_LINES} lines of at most {MAX_KOP_LINE} characters"]
    address = (address or "").strip()
    if len(address) > MAX_ADDRESS or not address.replace("\n", " ").isprintable():
        errors["address"] = [f"maks. {MAX_ADDRESS} karakter / at most {MAX_ADDRESS} characters"]
    if errors:
        raise FormInvalid(errors)
    uow = UnitOfWork.on(session)
    uow.office_paper(office.id, lines, address)
    uow.flush()


def set_letterhead_for(session: Session, user, office_code: str, text: str, address: str) -> None:
    """`set_letterhead` from the web form: one line of the kop per line of `text`."""
    from .accounts import office_by_code
    office = office_by_code(session, office_code)
    set_letterhead(session, access.Actor.of_user(user) if user is not None else None, office,
                   (text or "").splitlines(), address)


def _kop_html(lines: list[str], address: str) -> str:
    out = [f'<div class="l{min(i, 1)}">{escape(line)}</div>' for i, line in enumerate(lines)]
    if address:
        out.append(f'<div class="addr">{escape(address)}</div>')
    return '<div class="kop">' + "".join(out) + "</div>"


def long_date(d: date | None) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}" if d else "–"


def _when(at: datetime | None, tz: ZoneInfo) -> str:
    if at is None:
        return "–"
    local = at.astimezone(tz)
    return f"{long_date(local.date())} {local:%H.%M} {local.tzname()}"


def _fetcher(images: dict[str, tuple[Path, str]]):
    def fetch(url: str, *args, **kwargs):
        if url.startswith("evidence:") and url[9:] in images:
            path, mime = images[url[9:]]
            try:  # WeasyPrint >= 66 wants its response object; older ones a dict
                from weasyprint.urls import URLFetcherResponse
            except ImportError:
                return {"string": path.read_bytes(), "mime_type": mime}
            return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": mime})
        raise ValueError(f"external resource refused while printing: {url[:80]}")
    return fetch


def _pdf(html: str, images: dict[str, tuple[Path, str]] | None = None) -> bytes:
    from weasyprint import HTML
    return HTML(string=html, url_fetcher=_fetcher(images or {})).write_pdf()


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>")


# ---- the register -----------------------------------------------------------------------------

def book_pdf(session: Session, bk: Book) -> bytes:
    lines, address = kop_of(session, bk.office)
    period = f"{MONTHS[bk.month - 1]} {bk.year}" if bk.month else f"Tahun {bk.year}"
    head = "".join(f"<th>{escape(LABELS[c])}</th>" for c in bk.columns)
    body = []
    for r in bk.rows:
        cells = []
        for c in bk.columns:
            v = r.value(c)
            if c == "status":
                cells.append(f'<td class="{"cancelled" if v == "cancelled" else ""}">{escape(STATUS.get(v, v))}</td>')
            else:
                cells.append(f"<td>{escape(long_date(v) if isinstance(v, date) else str(v or '–'))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(bk.columns)}" class="muted">Belum ada nomor pada periode ini.</td></tr>')
    html = (f'<div class="book">{_kop_html(lines, address)}<h1>{escape(bk.register.name.upper())}</h1>'
            f'<p style="text-align:center">{escape(period)}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
    return _pdf(_document(f"{bk.register.name} {period}", html))


# ---- the press release ------------------------------------------------------------------------

def _label(schema: dict, name: str) -> str:
    return schema.get("properties", {}).get(name, {}).get("title", name)


def _pick(data: dict, names, prefixes=()) -> str | None:
    for n in names:
        if n and isinstance(data.get(n), str) and data[n].strip():
            return data[n]
    for key, value in data.items():
        if any(key.startswith(p) for p in prefixes) and isinstance(value, str) and value.strip():
            return value
    return None


def paper_data(session: Session, actor: access.Actor, instance_id: int) -> dict:
    """Everything the paper shows, read once (and checked: the actor sees the instance)."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} does not exist")
    access.check_see(actor, instance.office_id)
    version = instance.version
    office = session.get(Office, instance.office_id)
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                         HumanTask.state == "completed")
                                 .order_by(HumanTask.completed_at, HumanTask.id)))
    users = {u.id: u.full_name for u in session.scalars(select(User).where(
        User.id.in_({t.completed_by_id for t in tasks if t.completed_by_id} or {-1})))}
    numbers = registers.instance_numbers(session, instance_id)
    checks = published.checks_of(session, instance_id)
    return {"instance": instance, "version": version, "office": office, "tasks": tasks, "users": users,
            "numbers": numbers, "checks": checks, "kop": kop_of(session, office)}


def paper_html(d: dict, data_dir: Path) -> tuple[str, dict[str, tuple[Path, str]]]:
    instance, version, office = d["instance"], d["version"], d["office"]
    tz = ZoneInfo(office.timezone or "Asia/Jakarta")
    steps, forms = version.steps, version.forms
    data: dict = {}
    for t in d["tasks"]:
        data.update(t.data or {})
    agenda_of = next(((r, e) for r, e in d["numbers"] if r.kind == "agenda"), None)
    agenda = agenda_of[1] if agenda_of else None
    archive = next((e for r, e in d["numbers"] if r.kind == "arsip"), None)
    spec = next((s["register"] for s in steps.values()
                 if agenda_of and (s.get("register") or {}).get("code") == agenda_of[0].code), {})
    title = _pick(data, [spec.get("title")], ("judul",)) or instance.subject
    kind = _pick(data, [spec.get("kind")], ("jenis",))
    if kind is None and isinstance(data.get("kanal"), list):  # Dinas Sosial: the channels chosen
        kind = ", ".join(str(k) for k in data["kanal"])
    when = agenda.doc_date if agenda else None
    is_release = any(k.startswith("isi_berita") for k in data)
    heading = "PRESS RELEASE" if is_release else "REKAM MATERI PUBLIKASI"
    rows = [("Nomor Agenda", agenda.number if agenda else "–"),
            ("Tanggal", long_date(when) if when else "–"),
            ("Jenis berita", kind or "–"), ("Judul", title),
            ("SOP", f"{version.definition.name} (versi {version.version})"),
            ("Status", STATUS.get(instance.status, instance.status))]
    parts = [_kop_html(*d["kop"]), f"<h1>{heading}</h1>", "<h2>Disposisi</h2><table>"]
    parts += [f'<tr><td class="k">{escape(k)}</td><td class="{"cancelled" if v == "DIBATALKAN" else ""}">'
              f"{escape(str(v))}</td></tr>" for k, v in rows]
    for t in d["tasks"]:  # the notes of the disposition, in the order they were written
        schema = forms.get(steps.get(t.bpmn_id, {}).get("form"), {})
        for name, value in (t.data or {}).items():
            if name.startswith("catatan") and isinstance(value, str) and value.strip():
                parts.append(f'<tr><td class="k">{escape(_label(schema, name))}</td><td>{escape(value)}</td></tr>')
    parts.append("</table>")
    # the text: every long text field of the steps (naskah, narasi), not notes or reasons
    images: dict[str, tuple[Path, str] | None] = {}
    texts: dict[str, tuple[str, str]] = {}  # field -> (title, latest value): a step done again replaces it
    for t in d["tasks"]:
        schema = forms.get(steps.get(t.bpmn_id, {}).get("form"), {})
        for name, prop in schema.get("properties", {}).items():
            value = (t.data or {}).get(name)
            if prop.get("x-lajur-widget") == "textarea" and isinstance(value, str) and value.strip() \
                    and not name.startswith(("catatan", "alasan")):
                texts[name] = (prop.get("title", name), value)
            if prop.get("x-lajur-widget") == "files" and isinstance(value, list):
                for sha in value:
                    if isinstance(sha, str) and len(sha) == 64:
                        images.setdefault(sha, None)
    for label, value in texts.values():
        parts.append(f"<h2>{escape(label)}</h2><div class=\"text\">{escape(value)}</div>")
    shown = _images(d, data_dir, images)
    if shown:
        parts.append("<h2>Foto</h2><div class=\"photos\">" + "".join(
            f'<img src="evidence:{sha}" alt="{escape(name)}">' for sha, name in shown) + "</div>")
    # the paraf trail
    parts.append('<h2>Jejak paraf</h2><table class="trail"><colgroup><col style="width:9mm"><col style="width:55mm">'
                 '<col style="width:34mm"><col style="width:34mm"><col></colgroup><thead><tr><th>No</th>'
                 "<th>Langkah</th><th>Oleh</th><th>Waktu</th><th>Keputusan</th></tr></thead><tbody>")
    for t in d["tasks"]:
        step = steps.get(t.bpmn_id, {})
        values = t.data or {}
        decision = next((v for k, v in values.items() if k.startswith("persetujuan") and isinstance(v, str)), None)
        reason = next((v for k, v in values.items() if k.startswith("alasan") and isinstance(v, str) and v), None)
        said = decision or ("paraf" if step.get("paraf") else "selesai")
        if reason:
            said += f": {reason}"
        parts.append(f"<tr><td>{step.get('no', '')}</td><td>{escape(step.get('name', t.bpmn_id))}</td>"
                     f"<td>{escape(d['users'].get(t.completed_by_id, '–'))}</td><td>{escape(_when(t.completed_at, tz))}"
                     f"</td><td>{escape(said)}</td></tr>")
    parts.append("</tbody></table>")
    # publication and archive
    if d["checks"]:
        parts.append("<h2>Publikasi</h2><table><thead><tr><th>Kanal</th><th>Alamat</th><th>Pemeriksaan</th>"
                     "</tr></thead><tbody>")
        for c in d["checks"]:
            state = {"ok": "Tayang (judul ditemukan)" if c.title_found else "Tayang", "failed": f"GAGAL: {c.detail}",
                     "pending": "Belum diperiksa", "recorded": "Dicatat"}.get(c.status, c.status)
            parts.append(f"<tr><td>{escape(c.channel)}</td><td>{escape(c.url)}</td><td>{escape(state)}</td></tr>")
        parts.append("</tbody></table>")
    code = archive.classification if archive else _pick(data, [], ("klasifikasi",))
    named = classification.find(code) if code else None
    parts.append("<h2>Arsip</h2><table>")
    parts += [f'<tr><td class="k">{k}</td><td>{escape(v)}</td></tr>' for k, v in (
        ("Kode klasifikasi", " ".join(filter(None, [code, named.name if named else None])) or "–"),
        ("Nomor arsip", archive.number if archive else "–"),
        ("Lokasi", (archive.location if archive else None) or "–"))]
    parts.append("</table>")
    return _document(f"{heading} {title}", "".join(parts)), {sha: p for sha, p in images.items() if p is not None}


def _images(d: dict, data_dir: Path, images: dict) -> list[tuple[str, str]]:
    """The instance's image evidence of its office, as files to embed (thumbnails first)."""
    if not images:
        return []
    shown = []
    with_rows = d.get("attachments") or []
    for a in with_rows:
        if a.sha256 in images and a.mime in IMAGE_MIME:
            thumb = a.has_thumbnail and thumb_path(data_dir, a.sha256).is_file()
            path = thumb_path(data_dir, a.sha256) if thumb else file_path(data_dir, a.sha256)
            if path.is_file():
                images[a.sha256] = (path, "image/jpeg" if thumb else a.mime)
                shown.append((a.sha256, a.original_name))
    return shown


def paper_pdf(session: Session, actor: access.Actor, instance_id: int, data_dir: Path) -> bytes:
    d = paper_data(session, actor, instance_id)
    shas = set()
    for t in d["tasks"]:
        for value in (t.data or {}).values():
            if isinstance(value, list):
                shas |= {v for v in value if isinstance(v, str) and len(v) == 64}
    d["attachments"] = list(session.scalars(select(Attachment).where(
        Attachment.office_id == d["instance"].office_id, Attachment.sha256.in_(shas or {""}))))
    html, images = paper_html(d, data_dir)
    return _pdf(html, images)
