"""The TIDAK loop and the review page in headless Chromium (Debian's package, via Playwright).

Rina (Petugas Penerima) starts an SOP and holds step 1; Kasubbag and Sekdin review the press
release with its photo and PDF shown inline; Sekdin answers TIDAK with a reason; Rina is
notified, finds the step back in her own inbox marked "Dikembalikan" with the reason at the top
of the page, revises it; on the second round Sekdin sees what changed. Screenshots at 1280 and
390 px go to test-artifacts/ (rework-*.png); at 390 px the pages do not scroll sideways.
"""
from __future__ import annotations

from PIL import Image

from .test_browser import browser, page, photo, server, sign_in, sign_out  # noqa: F401

SUBJECT = "Rilis Musrenbang Sabdodadi"
REASON = "Foto kurang jelas dan judul terlalu umum, mohon diganti."


def pdf(tmp):
    path = tmp / "press-release.pdf"
    Image.new("RGB", (600, 800), (255, 255, 255)).save(path, "PDF")
    return path


def both_widths(page, path_1280, path_390, check=True):
    """Screenshot at desktop and phone width; at 390 px nothing overflows sideways (`check`)."""
    page.screenshot(path=str(path_1280), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(150)
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    page.screenshot(path=str(path_390), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not check or widths[0] <= widths[1], f"{path_390.name}: page is {widths[0]} px wide in a {widths[1]} px screen"


def claim_and_open(page, base, subject):
    page.goto(f"{base}/inbox?tab=group")
    row = page.locator("tr", has_text=subject).first
    row.locator("button:has-text('Ambil')").click()
    row = page.locator("tr", has_text=subject).first
    row.locator("a:has-text('Kerjakan')").click()
    page.wait_for_selector("#step-form")


def finish(page, value="complete"):
    page.click(f"button[value={value}]")
    page.wait_for_selector("text=Langkah selesai.")
    return page.inner_text("#main .flash")


def test_the_tidak_loop_reaches_its_author_and_the_review_page_shows_the_work(server, page, artifacts_dir):
    base, services, tmp = server
    picture, document = photo(tmp), pdf(tmp)

    # --- Rina starts the SOP: she holds step 1 at once
    sign_in(page, base, "dpmk.penerima")
    page.goto(f"{base}/start")
    card = page.locator("#sop-dpmk-pemutakhiran-website")
    card.locator("input[name=subject]").fill(SUBJECT)
    card.locator("button[type=submit]").click()
    page.wait_for_selector("#step-form")
    assert "Rina Wulandari" in page.inner_text(".step-facts")
    assert "hanya menghitung jam kerja" in page.inner_text("#clock-note")
    page.fill("#f-tanggal_berita", "2026-11-20")
    page.select_option("#f-jenis_berita", "Kalurahan")
    page.fill("#f-judul_berita", "Musrenbang Kalurahan")
    page.fill("#f-isi_berita", "Musyawarah perencanaan pembangunan kalurahan dihadiri lurah dan warga.")
    page.set_input_files("#f-bukti_multimedia-upload", [str(picture), str(document)])
    page.check("input[name=_persyaratan]")
    went = finish(page)
    assert "Diteruskan ke" in went and "Kasubbag" in went
    sign_out(page)

    # --- Kasubbag reviews: the release, its photo and PDF inline, before the paraf form
    sign_in(page, base, "dpmk.kasubbag")
    claim_and_open(page, base, SUBJECT)
    page.wait_for_selector("#review-h")
    review = page.locator("section.review")
    assert "Musyawarah perencanaan pembangunan" in review.inner_text()
    review.locator("img").first.wait_for()
    assert review.locator("img").first.evaluate("i => i.complete && i.naturalWidth > 0")
    assert review.locator("iframe.pdf-inline").count() == 1
    page.check("#f-paraf_kabid_ada")
    page.fill("#f-klasifikasi_arsip", "400.14.1.3")
    finish(page)
    sign_out(page)

    # --- Sekdin: the review page, then TIDAK with a reason
    sign_in(page, base, "dpmk.sekdin")
    claim_and_open(page, base, SUBJECT)
    page.wait_for_selector("#review-h")
    box = page.locator("#review-h").bounding_box(), page.locator("#step-form").bounding_box()
    assert box[0]["y"] < box[1]["y"]  # the work first, then the decision
    both_widths(page, artifacts_dir / "rework-review-1280.png", artifacts_dir / "rework-review-390.png")
    page.check("input[name=persetujuan_sekdin][value=TIDAK]")
    page.fill("#f-alasan_penolakan", REASON)
    went = finish(page)
    assert "Rina Wulandari" in went  # back to its author, by name
    sign_out(page)

    # --- Rina: notified, the step back in her own inbox, the reason at the top
    sign_in(page, base, "dpmk.penerima")
    assert page.locator("nav .badge-count").count() == 1
    row = page.locator("tr", has_text=SUBJECT).first
    assert "Dikembalikan" in row.inner_text() and REASON in row.inner_text()
    # the inbox table's phone layout (cards) is its own change; here only the returned row matters
    both_widths(page, artifacts_dir / "rework-inbox-1280.png", artifacts_dir / "rework-inbox-390.png", check=False)
    page.goto(f"{base}/notifications/")
    message = page.locator(".notification").first
    assert REASON in message.inner_text() and "Dikembalikan untuk diperbaiki" in message.inner_text()
    assert message.locator(".notification-message").evaluate("e => getComputedStyle(e).fontFamily").find("mono") < 0
    both_widths(page, artifacts_dir / "rework-notifications-1280.png",
                artifacts_dir / "rework-notifications-390.png")
    message.locator("a:has-text('Buka tugas')").click()
    page.wait_for_selector(".returned-banner")
    banner, heading = page.locator(".returned-banner").bounding_box(), page.locator("h1").bounding_box()
    assert banner["y"] < heading["y"] and REASON in page.inner_text(".returned-banner")
    assert page.input_value("#f-judul_berita") == "Musrenbang Kalurahan"  # the earlier submission, to revise
    both_widths(page, artifacts_dir / "rework-returned-1280.png", artifacts_dir / "rework-returned-390.png")
    page.fill("#f-judul_berita", "Musrenbang Kalurahan Sabdodadi 2026")
    page.check("input[name=_persyaratan]")
    finish(page)
    sign_out(page)

    # --- second round: Kasubbag again, then Sekdin sees what changed
    sign_in(page, base, "dpmk.kasubbag")
    claim_and_open(page, base, SUBJECT)
    page.check("#f-paraf_kabid_ada")
    page.fill("#f-klasifikasi_arsip", "400.14.1.3")
    finish(page)
    sign_out(page)
    sign_in(page, base, "dpmk.sekdin")
    claim_and_open(page, base, SUBJECT)
    review = page.locator("section.review")
    assert "Putaran 2" in review.inner_text()
    changed = review.locator(".changes").first.inner_text()
    assert "Musrenbang Kalurahan" in changed and "Musrenbang Kalurahan Sabdodadi 2026" in changed
    both_widths(page, artifacts_dir / "rework-review-round2-1280.png", artifacts_dir / "rework-review-round2-390.png")
    sign_out(page)

    for width in ("1280", "390"):
        for name in ("review", "inbox", "notifications", "returned", "review-round2"):
            assert (artifacts_dir / f"rework-{name}-{width}.png").stat().st_size > 10_000
