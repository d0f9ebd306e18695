"""Both SOPs end to end in headless Chromium (Debian's package, driven by Playwright).

A real server (werkzeug, threaded) runs on a free port over a fresh SQLite database with
the demo data. Each actor signs in, works their step through the UI, and signs out;
one TIDAK return and one evidence upload are included. Screenshots of the inbox, a step
form and the instance diagram go to test-artifacts/.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from werkzeug.security import generate_password_hash

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "sandi-uji-123"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _need_chromium():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The web app over a seeded SQLite database, served on a free port in a thread."""
    _need_chromium()
    from sqlalchemy import select
    from werkzeug.serving import make_server

    from engine.config import Settings
    from engine.demo import seed_demo
    from engine.migrate import upgrade
    from engine.models import User
    from engine.services import Services
    from webui import create_app

    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'lajur.sqlite3'}"
    upgrade(url)
    settings = Settings(database_url=url, broker_url=f"sqla+sqlite:///{tmp / 'broker.sqlite3'}",
                        data_dir=tmp / "data", base_url="http://127.0.0.1")
    services = Services.from_settings(settings)
    fast = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    with services.sessions.begin() as session:
        seed_demo(session, services.runtime.store, tmp / "logins.json")
        for user in session.scalars(select(User)):
            user.password_hash = fast
    app = create_app(services=services)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", services, tmp
    httpd.shutdown()
    services.dispose()


@pytest.fixture(scope="module")
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def photo(tmp: Path) -> Path:
    img = Image.new("RGB", (640, 420), (70, 130, 180))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 260, 600, 400), fill=(60, 150, 70))
    draw.ellipse((440, 40, 560, 160), fill=(250, 210, 60))
    path = tmp / "musrenbang.png"
    img.save(path)
    return path


def sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox")


def sign_out(page):
    page.click("header button:has-text('Keluar')")
    page.wait_for_selector("text=Anda sudah keluar.")


def open_group_task(page, base, subject, shot=None):
    """From the inbox: the groups' tab, claim in place (htmx), then open the step."""
    page.goto(f"{base}/inbox?tab=group")
    row = page.locator("tr", has_text=subject).first
    row.locator("button:has-text('Ambil')").click()
    row = page.locator("tr", has_text=subject).first
    row.locator("text=Lepas").wait_for()  # the row was redrawn in place
    if shot:
        page.screenshot(path=str(shot), full_page=True)
    row.locator("a:has-text('Kerjakan')").click()
    page.wait_for_selector("#step-form")


def complete(page):
    for box in page.locator("input[name=_persyaratan]").all():  # the Persyaratan at hand
        box.check()
    page.click("button[value=complete]")
    page.wait_for_selector("text=Langkah selesai.")


def test_both_sops_end_to_end_as_every_role(server, page, artifacts_dir):
    base, services, tmp = server
    picture = photo(tmp)

    # --- DPMK: Petugas Penerima starts and fills step 1 with evidence
    sign_in(page, base, "dpmk.penerima")
    page.click("nav >> text=Mulai SOP")
    card = page.locator("#sop-dpmk-pemutakhiran-website")
    assert "Peraturan Bupati Bantul Nomor 51 Tahun 2012" in card.inner_text() or card.locator("summary").count()
    card.locator("input[name=subject]").fill("Musrenbang Kalurahan Sabdodadi")
    card.locator("button[type=submit]").click()
    page.wait_for_selector("#step-form")
    assert "Press Release diberi disposisi/form" in page.inner_text(".checklist")
    # an invalid post first: errors next to the fields, entered data kept
    page.fill("#f-nomor_agenda", "abc")
    page.fill("#f-judul_berita", "Musrenbang Kalurahan Sabdodadi 2026")
    page.click("button[value=complete]")
    page.wait_for_selector("#field-nomor_agenda .field-errors")
    assert page.input_value("#f-judul_berita") == "Musrenbang Kalurahan Sabdodadi 2026"
    page.fill("#f-nomor_agenda", "012/2026")
    page.fill("#f-tanggal_berita", "2026-11-20")
    page.select_option("#f-jenis_berita", "Kalurahan")
    page.fill("#f-isi_berita", "Musyawarah perencanaan pembangunan kalurahan dihadiri lurah dan warga.")
    page.set_input_files("#f-bukti_multimedia-upload", str(picture))
    for box in page.locator(".checklist input[type=checkbox]").all():
        box.check()
    page.click("button[value=draft]")
    page.wait_for_selector("text=Draf disimpan.")
    page.wait_for_selector("#field-bukti_multimedia img")
    page.screenshot(path=str(artifacts_dir / "step-form.png"), full_page=True)
    complete(page)
    sign_out(page)

    # --- Kasubbag (supervisor): inbox, claim in place, paraf and classification
    sign_in(page, base, "dpmk.kasubbag")
    open_group_task(page, base, "Musrenbang Kalurahan Sabdodadi", shot=artifacts_dir / "inbox.png")
    assert page.locator(".evidence-inline img, .evidence img").count() >= 1  # evidence of step 1 shown
    page.check("#f-paraf_kabid_ada")
    page.fill("#f-klasifikasi_arsip", "400.14.1.3")
    complete(page)
    sign_out(page)

    # --- Sekdin: TIDAK with a reason, the release goes back to step 1
    sign_in(page, base, "dpmk.sekdin")
    open_group_task(page, base, "Musrenbang Kalurahan Sabdodadi")
    assert "Jejak paraf" in page.inner_text("body")
    page.check("input[name=persetujuan_sekdin][value=TIDAK]")
    page.fill("#f-alasan_penolakan", "Foto kurang jelas, mohon diganti.")
    complete(page)
    sign_out(page)

    # --- Penerima again: the returned step is back in her own inbox, prefilled; resubmit
    sign_in(page, base, "dpmk.penerima")
    page.locator("tr", has_text="Musrenbang Kalurahan Sabdodadi").first.locator("a:has-text('Kerjakan')").click()
    page.wait_for_selector("#step-form")
    assert "Foto kurang jelas" in page.inner_text("body")
    assert page.input_value("#f-nomor_agenda") == "012/2026"
    complete(page)
    sign_out(page)

    for user, fill in [
        ("dpmk.kasubbag", lambda: (page.check("#f-paraf_kabid_ada"), page.fill("#f-klasifikasi_arsip", "400.14.1.3"))),
        ("dpmk.sekdin", lambda: page.check("input[name=persetujuan_sekdin][value=YA]")),
    ]:
        sign_in(page, base, user)
        open_group_task(page, base, "Musrenbang Kalurahan Sabdodadi")
        fill()
        complete(page)
        sign_out(page)

    # --- instance page mid-way, as the operator whose step is current
    sign_in(page, base, "dpmk.operator")
    page.goto(f"{base}/inbox?tab=group")
    page.locator("tr", has_text="Musrenbang").locator("a", has_text="Musrenbang").first.click()
    page.wait_for_selector("#diagram[data-ready='1']")
    assert page.locator(".djs-element.lajur-current").count() == 1
    assert page.locator(".djs-element.lajur-ontime").count() >= 3
    assert page.locator(".lajur-note", has_text="Tepat waktu").count() >= 3
    page.screenshot(path=str(artifacts_dir / "instance-diagram.png"), full_page=True)
    open_group_task(page, base, "Musrenbang Kalurahan Sabdodadi")
    page.fill("#f-url_berita", "https://dpmk.bantulkab.go.id/berita/musrenbang")
    page.fill("#f-tanggal_tayang", "2026-11-21")
    complete(page)
    sign_out(page)

    sign_in(page, base, "dpmk.penerima")
    open_group_task(page, base, "Musrenbang Kalurahan Sabdodadi")
    page.fill("#f-nomor_arsip", "ARS-2026-0012")
    page.fill("#f-lokasi_filing", "Filing kabinet A, laci 2")
    complete(page)
    page.goto(f"{base}/inbox?tab=completed")
    page.locator("tr", has_text="Musrenbang").first.locator("a", has_text="Lihat").click()
    page.wait_for_selector("text=SOP selesai")
    sign_out(page)

    # --- process owner and regency admin can sign in; the admin reads any office's instance
    sign_in(page, base, "dpmk.pemilik")
    assert "Tidak ada tugas di sini." in page.inner_text("body")
    sign_out(page)

    # --- Dinsos: field officer -> website manager -> team lead (TIDAK not needed twice) -> publish
    sign_in(page, base, "dinsos.petugas")
    page.goto(f"{base}/start")
    card = page.locator("#sop-dinsos-website-medsos")
    card.locator("input[name=subject]").fill("Penyaluran bansos pangan")
    card.locator("button[type=submit]").click()
    page.wait_for_selector("#step-form")
    for name, value in [("judul", "Penyaluran bantuan sosial"), ("apa", "Penyaluran bansos"), ("siapa", "Dinas Sosial"),
                        ("kapan", "2026-11-19"), ("dimana", "Kalurahan Trirenggo"), ("mengapa", "Program bantuan pangan"),
                        ("bagaimana", "Dibagikan langsung kepada penerima"),
                        ("narasi_singkat", "Dinas Sosial menyalurkan bantuan pangan kepada 120 keluarga.")]:
        page.fill(f"#f-{name}", value)
    page.set_input_files("#f-foto_video-upload", str(picture))
    complete(page)
    sign_out(page)

    sign_in(page, base, "dinsos.pengelola")
    open_group_task(page, base, "Penyaluran bansos pangan")
    page.locator("input[name=materi_terpilih]").first.check()
    page.check("input[name=kanal][value=Website]")
    page.check("input[name=kanal][value=Instagram]")
    page.fill("#f-judul_rilis", "Bansos pangan tersalurkan")
    page.fill("#f-naskah_rilis", "Sebanyak 120 keluarga menerima bantuan pangan hari ini.")
    complete(page)
    sign_out(page)

    sign_in(page, base, "dinsos.ketua")
    open_group_task(page, base, "Penyaluran bansos pangan")
    page.check("input[name=persetujuan_ketua][value=YA]")
    complete(page)
    sign_out(page)

    sign_in(page, base, "dinsos.pengelola")
    open_group_task(page, base, "Penyaluran bansos pangan")
    page.fill("#f-url_website", "https://sosial.bantulkab.go.id/berita/bansos")
    page.fill("#f-tautan_medsos", "https://instagram.com/p/abc\nhttps://facebook.com/dinsos/posts/1")
    page.fill("#f-tanggal_tayang", "2026-11-21")
    complete(page)
    sign_out(page)

    sign_in(page, base, "admin")
    from sqlalchemy import select
    from engine.models import ProcessInstance
    with services.sessions() as session:
        instances = {i.subject: i for i in session.scalars(select(ProcessInstance))}
    assert {i.status for i in instances.values()} == {"completed"}
    page.goto(f"{base}/instances/{instances['Penyaluran bansos pangan'].id}")
    page.wait_for_selector("#diagram[data-ready='1']")
    assert page.locator(".djs-element.lajur-ontime").count() == 4
    assert "SOP selesai" in page.inner_text(".timeline")
    sign_out(page)

    for name in ("inbox.png", "step-form.png", "instance-diagram.png"):
        assert (artifacts_dir / name).stat().st_size > 10_000


def test_language_switch_and_wib_dates_in_the_browser(server, page):
    base, _services, _tmp = server
    sign_in(page, base, "dinsos.ketua")
    assert "WIB" in page.inner_text("footer")
    page.goto(f"{base}/profile")
    page.check("input[name=locale][value=en]")
    page.click("button:has-text('Simpan bahasa')")
    page.wait_for_selector("text=Language saved.")
    assert page.locator("nav >> text=Inbox").count() == 1
    page.check("input[name=locale][value=id]")
    page.click("button:has-text('Save language')")
    page.wait_for_selector("text=Bahasa disimpan.")


def test_dashboard_draws_its_charts(server, page, artifacts_dir):
    """The supervisor's dashboard draws every chart from the vendored Chart.js, with no JS error,
    after a few steps have been worked (some data to draw)."""
    base, services, _tmp = server
    from sqlalchemy import select
    from engine.models import HumanTask, User
    with services.sessions() as session:
        ids = {u.username: u.id for u in session.scalars(select(User))}
    rt = services.runtime
    for n in range(3):
        iid = rt.start(ids["dinsos.petugas"], "dinsos-website-medsos", f"Data dasbor {n}")
        with services.sessions() as session:
            task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
        from .sopdata import STEP_DATA
        rt.complete(ids["dinsos.petugas"], task_id, STEP_DATA[("dinsos-website-medsos", "step1")])
    sign_in(page, base, "dinsos.ketua")
    for path in ("/dashboard", "/dashboard/trends", "/dashboard/officers"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        canvases = page.locator("canvas[data-chart]")
        assert canvases.count() >= 1, path
        drawn = page.evaluate("() => Array.from(document.querySelectorAll('canvas[data-chart]'))"
                              ".map(c => !!(window.Chart && window.Chart.getChart(c)))")
        assert drawn and all(drawn), (path, drawn)
        if path == "/dashboard":
            page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
            assert page.locator("table").count() >= 1  # the text equivalent of the charts
