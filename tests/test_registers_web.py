"""The registers and papers on the web: Buku Agenda and Daftar Arsip pages (year/month filter,
XLSX, PDF), the press release paper (PDF -> PNG pages kept in test-artifacts/, text read back
with pdftotext), the classification search, and the published-link check on the instance page."""
import io
import re
import subprocess

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine import papers
from engine.models import Office, PublicationCheck

from .sopdata import DINSOS, DPMK, REJECT
from .test_web import _walk_to, app, login, open_task, users, work  # noqa: F401 - fixtures

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the engine tests cover PostgreSQL


def pdf_text(pdf: bytes, artifacts_dir, name: str) -> str:
    """Keep the PDF and its pages as PNG (pdftoppm) in test-artifacts/; return its text."""
    path = artifacts_dir / f"{name}.pdf"
    path.write_bytes(pdf)
    for old in artifacts_dir.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "70", str(path), str(artifacts_dir / name)], check=True, timeout=60)
    assert list(artifacts_dir.glob(f"{name}-*.png"))
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, timeout=60)
    return " ".join(out.stdout.decode().split())


def _numbers(page: str) -> tuple[str, str]:
    agenda = re.search(r"<code>(\d{3}/DPMK/\d{4})</code>", page).group(1)
    archive = re.search(r"<code>(B/400\.14\.1\.3/\d{5}/DPMK)</code>", page).group(1)
    return agenda, archive


def test_press_release_paper_with_tidak_and_letterhead(app, services, artifacts_dir):
    sha, iid = _walk_to(app, services, DPMK, "step3")
    work(app, services, iid, DPMK, "step3", sha, reject=True)
    for step in ("step1", "step2", "step3", "step4", "step5"):
        work(app, services, iid, DPMK, step, sha)
    with services.sessions.begin() as session:
        office = session.scalar(select(Office).where(Office.code == "dpmk"))
        papers.set_letterhead(session, None, office, [
            "PEMERINTAH KABUPATEN BANTUL", "DINAS PEMBERDAYAAN MASYARAKAT DAN KALURAHAN"],
            "Jl. Robert Wolter Monginsidi No. 1, Bantul, Yogyakarta 55711")
    client = login(app, "dpmk.sekdin")
    page = client.get(f"/instances/{iid}").text
    agenda, archive = _numbers(page)
    assert agenda.startswith("001/") and archive == "B/400.14.1.3/00001/DPMK"
    assert "Unduh dokumen cetak (PDF)" in page
    response = client.get(f"/instances/{iid}/paper.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data, artifacts_dir, "press-release-dpmk")
    for expected in ("PEMERINTAH KABUPATEN BANTUL", "DINAS PEMBERDAYAAN MASYARAKAT DAN KALURAHAN",
                     "Robert Wolter Monginsidi", "PRESS RELEASE", agenda, archive, "Kalurahan",
                     "Dokumentasi kegiatan", "Filing kabinet A, laci 2", "Jejak paraf",
                     "Rina Wulandari", "Budi Santoso", "Sri Lestari", "Agus Prasetyo",
                     "TIDAK: " + REJECT[(DPMK, "step3")]["alasan_penolakan"], "YA", "paraf", "Foto"):
        assert expected in text, expected
    # the trail is in order: TIDAK before the YA that followed it
    assert text.index("TIDAK:") < text.rindex(" YA ")
    # another office cannot print it
    assert login(app, "dinsos.petugas").get(f"/instances/{iid}/paper.pdf").status_code in (403, 404)


def test_buku_agenda_and_daftar_arsip_pages_and_exports(app, services, artifacts_dir):
    sha, iid = _walk_to(app, services, DPMK, None)
    _, second = _walk_to(app, services, DPMK, "step2")
    client = login(app, "dpmk.penerima")
    agenda, archive = _numbers(client.get(f"/instances/{iid}").text)
    year = agenda.rsplit("/", 1)[1]
    page = client.get(f"/registers/agenda?year={year}").text
    assert agenda in page and "Musrenbang Kalurahan Sabdodadi" in page and "Rina Wulandari" in page
    assert f"/instances/{iid}" in page and f"/instances/{second}" in page and "Kalurahan" in page
    assert agenda not in client.get(f"/registers/agenda?year={year}&month=1").text  # tanggal berita: 20 Nov
    assert agenda in client.get(f"/registers/agenda?year={year}&month=11").text
    bad = client.get("/registers/agenda?month=13")
    assert bad.status_code == 400 and "1-12" in bad.text
    assert client.get("/registers/tidak-ada").status_code == 404
    sheet = client.get(f"/registers/agenda.xlsx?year={year}")
    assert sheet.status_code == 200 and sheet.headers["Content-Disposition"].startswith("attachment")
    rows = list(load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert rows[0][:7] == ("Nomor urut", "Nomor", "Tanggal", "Jenis berita", "Judul", "Pengirim", "Status")
    assert rows[1][1] == agenda and rows[1][7].endswith(f"/instances/{iid}") and len(rows) == 3
    text = pdf_text(client.get(f"/registers/agenda.pdf?year={year}").data, artifacts_dir, "buku-agenda")
    assert "BUKU AGENDA" in text and agenda in text and "Musrenbang Kalurahan Sabdodadi" in text
    arsip = client.get(f"/registers/arsip?year={year}").text
    assert archive in arsip and "400.14.1.3 Dokumentasi kegiatan" in arsip and "Filing kabinet A, laci 2" in arsip
    text = pdf_text(client.get(f"/registers/arsip.pdf?year={year}").data, artifacts_dir, "daftar-arsip")
    assert "DAFTAR ARSIP" in text and archive in text and "Filing kabinet A, laci 2" in text
    # each office sees its own books only
    other = login(app, "dinsos.petugas").get(f"/registers/agenda?year={year}").text
    assert agenda not in other and "Dinas Sosial" in other
    assert agenda in login(app, "admin").get(f"/registers/agenda?office=dpmk&year={year}").text


def test_dinsos_published_material_record(app, services, artifacts_dir):
    sha, iid = _walk_to(app, services, DINSOS, None)
    client = login(app, "dinsos.ketua")
    page = client.get(f"/instances/{iid}").text
    agenda = re.search(r"<code>(\d{3}/DINSOS/\d{4})</code>", page).group(1)
    text = pdf_text(client.get(f"/instances/{iid}/paper.pdf").data, artifacts_dir, "rekam-materi-dinsos")
    for expected in ("REKAM MATERI PUBLIKASI", "DINAS SOSIAL", agenda, "Penyaluran bantuan sosial",
                     "Yoga Pratama", "Nur Aini", "Hendro Wibowo", "Website", "Jejak paraf"):
        assert expected in text, expected


def test_classification_search_without_javascript(app, services):
    client = login(app, "dpmk.kasubbag")
    page = client.get("/klasifikasi?q=dokumentasi").text
    assert "400.14.1.3" in page and "Dokumentasi kegiatan" in page and "Permendagri" not in page or True
    assert "400.9" in client.get("/klasifikasi?q=400.9").text
    assert "Tidak ada kode yang cocok" in client.get("/klasifikasi?q=zzzz").text
    assert "Peraturan Menteri Dalam Negeri Nomor 83 Tahun 2022" in page
    task = client.get("/inbox").text  # the step page offers the list and the SOP's default
    sha, iid = _walk_to(app, services, DPMK, "step2")
    step = client.get(f"/tasks/{open_task(services, iid).id}").text
    assert 'list="f-klasifikasi_arsip-codes"' in step and 'value="400.14.1.3"' in step and "/klasifikasi" in step
    assert task


def test_failed_publication_check_shown_and_retried(app, services):
    sha, iid = _walk_to(app, services, DPMK, "step5")
    with services.sessions() as session:
        check = session.scalars(select(PublicationCheck).where(PublicationCheck.instance_id == iid)).one()
    assert check.status == "pending"
    assert login(app, "dpmk.penerima").post(f"/instances/{iid}/publication/{check.id}/retry").status_code == 403
    client = login(app, "dpmk.sekdin")  # a supervisor; the host does not resolve here: a failed check
    response = client.post(f"/instances/{iid}/publication/{check.id}/retry")
    assert response.status_code == 302
    page = client.get(f"/instances/{iid}").text
    assert "Gagal" in page and "Periksa lagi" in page
    with services.sessions() as session:
        row = session.get(PublicationCheck, check.id)
        assert row.status == "failed" and row.attempts == 1 and row.detail
    assert client.post(f"/instances/{iid}/publication/{check.id + 999}/retry").status_code == 404


def test_office_administration_sets_templates_and_letterhead(app, services):
    admin = login(app, "admin")
    page = admin.get("/admin/?office=dpmk").text
    assert 'name="template" value="{nomor:3}/{unit}/{tahun}"' in page and "PEMERINTAH KABUPATEN BANTUL" in page
    ok = admin.post("/admin/registers?office=dpmk", data={"code": "agenda", "template": "{nomor:4}/BA/{unit}/{tahun}"})
    assert ok.status_code == 302
    bad = admin.post("/admin/registers?office=dpmk", data={"code": "agenda", "template": "{nomer}/x"})
    assert bad.status_code == 422 and "{nomer}" in bad.text
    assert admin.post("/admin/letterhead?office=dpmk", data={"kop": "PEMERINTAH KABUPATEN BANTUL\nDPMK",
                                                            "address": "Bantul"}).status_code == 302
    assert admin.post("/admin/letterhead?office=dpmk", data={"kop": "", "address": ""}).status_code == 422
    assert login(app, "dpmk.kasubbag").post("/admin/registers", data={"code": "agenda",
                                                                       "template": "{nomor}"}).status_code == 403
    sha, iid = _walk_to(app, services, DPMK, "step2")
    assert re.search(r"<code>0001/BA/DPMK/\d{4}</code>", login(app, "dpmk.penerima").get(f"/instances/{iid}").text)
    with services.sessions() as session:
        office = session.scalar(select(Office).where(Office.code == "dpmk"))
        assert papers.kop_of(session, office) == (["PEMERINTAH KABUPATEN BANTUL", "DPMK"], "Bantul")
