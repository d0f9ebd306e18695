"""Issue 14 in Chromium: the instance list with its filters and export, the inbox and the
instance page on a 390 px phone (cards, no sideways scrolling: the page's scroll width equals
its viewport width), and the pause request flow (staff asks, the supervisor approves, the
step shows its new due time after the resume). Screenshots at 1,280 and 390 px go to
test-artifacts/instances-*.png, inbox-phone.png and pause-*.png.
"""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from .sopdata import DINSOS, DPMK, STEP_DATA
from .test_browser import browser, server, sign_in  # noqa: F401  (fixtures)
from .test_sla import wib

pytestmark = pytest.mark.browser

WIDTHS = """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                   client: document.documentElement.clientWidth})"""


@pytest.fixture(scope="module")
def worked(server):  # noqa: F811
    """Instances of both SOPs: three DPMK at step 1, two at step 2, one of Dinas Sosial."""
    _base, services, _tmp = server
    from engine.models import HumanTask, User
    rt = services.runtime
    with services.sessions() as s:
        ids = {u.username: u.id for u in s.scalars(select(User))}

    def step(iid, user, data):
        with services.sessions() as s:
            task = s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))
        rt.claim(ids[user], task.id)
        rt.complete(ids[user], task.id, data)
    for n in range(5):
        iid = rt.start(ids["dpmk.penerima"], DPMK, f"Berita kegiatan kalurahan nomor {n} dengan judul yang panjang")
        if n >= 3:
            step(iid, "dpmk.penerima", STEP_DATA[(DPMK, "step1")])
    rt.start(ids["dinsos.petugas"], DINSOS, "Rilis bansos dinsos")
    return ids


def _context(browser, width):  # noqa: F811
    return browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID",
                               is_mobile=width < 500, has_touch=width < 500, accept_downloads=True)


def _fits(page, width):
    w = page.evaluate(WIDTHS)
    assert w["scroll"] == w["inner"] == width, w


@pytest.mark.parametrize("width", [1280, 390])
def test_instance_list_with_filters_and_export(server, browser, worked, artifacts_dir, width):  # noqa: F811
    base = server[0]
    context = _context(browser, width)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "dpmk.kasubbag")
    page.click("nav >> text=Daftar instans") if width > 500 else page.goto(f"{base}/instances")
    page.wait_for_selector("#instances")
    rows = page.locator("#instances tbody tr")
    assert rows.count() == 5 and "Rilis bansos" not in page.inner_text("#instances")  # own office only
    # filter by a step picked by name (not its code): the two instances waiting at step 2
    step2 = page.locator("select[name=step] option", has_text="2. ").first
    page.select_option("select[name=step]", value=step2.get_attribute("value"))
    page.select_option("select[name=sort]", value="old")
    page.click("button:has-text('Terapkan')")
    page.wait_for_url("**step=*")
    shown = [t.strip() for t in page.locator("#instances a.step-link").all_inner_texts()]
    assert len(shown) == 2 and all("nomor 3" in t or "nomor 4" in t for t in shown)
    assert shown[0].find("nomor 3") >= 0  # oldest first
    if width < 500:
        _fits(page, width)
        assert page.evaluate("getComputedStyle(document.querySelector('#instances tr')).display") == "block"
    page.screenshot(path=str(artifacts_dir / f"instances-{width}.png"), full_page=True)
    # the export carries the same filters and rows
    with page.expect_download() as info:
        page.click("a:has-text('CSV')")
    text = open(info.value.path(), encoding="utf-8-sig").read()
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert lines[0][2] == "Perihal" and [line[2] for line in lines[1:]] == shown
    # subject text and status filters, and an empty result that says so
    page.goto(f"{base}/instances?q=nomor+0&status=running")
    assert [t.strip() for t in page.locator("#instances a.step-link").all_inner_texts()] == \
        ["Berita kegiatan kalurahan nomor 0 dengan judul yang panjang"]
    page.goto(f"{base}/instances?status=completed")
    assert page.locator("text=Tidak ada instans yang cocok").count() == 1
    context.close()
    assert not errors, errors


def test_dashboard_count_links_to_the_filtered_list(server, browser, worked):  # noqa: F811
    base = server[0]
    context = _context(browser, 1280)
    page = context.new_page()
    sign_in(page, base, "dpmk.kasubbag")
    page.goto(f"{base}/dashboard")
    link = page.locator("#overview a[href^='/instances?']").first
    link.click()
    page.wait_for_selector("#instances")
    assert "step=" in page.url and page.locator("select[name=step] option:checked").inner_text().startswith("1.")
    assert page.locator("#instances tbody tr").count() == 3
    context.close()


def test_phone_inbox_and_instance_page_are_cards(server, browser, worked, artifacts_dir):  # noqa: F811
    base = server[0]
    context = _context(browser, 390)
    page = context.new_page()
    sign_in(page, base, "dpmk.penerima")
    page.goto(f"{base}/inbox?tab=mine")  # the starter holds step 1 (issue 14, finding 8)
    page.wait_for_selector("table.tasks tbody tr")
    _fits(page, 390)
    assert page.evaluate("getComputedStyle(document.querySelector('table.tasks tbody tr')).display") == "block"
    assert page.locator("table.tasks td[data-label]").count() >= 3
    page.screenshot(path=str(artifacts_dir / "inbox-phone.png"), full_page=True)
    page.locator("table.tasks a[href^='/instances/']").first.click()
    page.wait_for_selector("#steps")
    page.wait_for_timeout(500)  # the diagram draws itself
    _fits(page, 390)
    page.screenshot(path=str(artifacts_dir / "instance-phone.png"), full_page=True)
    context.close()


def test_phone_inbox_with_a_returned_step_fits(server, browser, worked, artifacts_dir):  # noqa: F811
    """A returned row carries the most text (badge and reason): it must fit 390 px too."""
    _base, services, _tmp = server
    from engine.models import HumanTask
    from .sopdata import REJECT
    rt = services.runtime
    with services.sessions() as s:
        iid = s.scalar(select(HumanTask.instance_id).where(HumanTask.lane == "Admin Bidang/Petugas Lapangan"))
    for step, user, data in (("step1", "dinsos.petugas", STEP_DATA[(DINSOS, "step1")]),
                             ("step2", "dinsos.pengelola", STEP_DATA[(DINSOS, "step2")]),
                             ("step3", "dinsos.ketua", REJECT[(DINSOS, "step3")])):
        with services.sessions() as s:
            task = s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))
        assert task.bpmn_id == step
        if task.assignee_id is None:
            rt.claim(worked[user], task.id)
        rt.complete(worked[user], task.id, data)
    context = _context(browser, 390)
    page = context.new_page()
    sign_in(page, server[0], "dinsos.petugas")
    page.goto(f"{server[0]}/inbox?tab=mine")
    row = page.locator("table.tasks tbody tr", has_text="Dikembalikan")
    row.wait_for()
    assert REJECT[(DINSOS, "step3")]["alasan_penolakan_ketua"] in row.inner_text()
    _fits(page, 390)
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.screenshot(path=str(artifacts_dir / "inbox-phone-returned.png"), full_page=True)
    context.close()


@pytest.fixture
def clock(server):  # noqa: F811
    """Set the server's clock (its Runtime's) for one test; the real clock again afterwards."""
    services = server[1]
    real = services.runtime.clock

    def set_to(*wib_time):
        moment = wib(*wib_time)
        services.runtime.clock = lambda: moment
    yield set_to
    services.runtime.clock = real


def test_pause_request_flow(server, browser, worked, artifacts_dir, clock):  # noqa: F811
    base, services, _tmp = server
    from engine.models import HumanTask
    clock(2026, 11, 23, 8, 0)  # Monday; step 1's Mutu Baku is 120 minutes: due 10:00 WIB
    iid = services.runtime.start(worked["dpmk.penerima"], DPMK, "Berita yang menunggu foto")
    with services.sessions() as s:
        task_id = s.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
    staff = _context(browser, 390).new_page()
    sign_in(staff, base, "dpmk.penerima")
    staff.goto(f"{base}/tasks/{task_id}")
    assert staff.locator("button:has-text('Ambil langkah ini')").count() == 0  # the starter holds step 1
    assert "10.00" in staff.inner_text("#due-at")
    clock(2026, 11, 23, 9, 0)
    staff.click("summary:has-text('Jeda jam Mutu Baku')")
    staff.fill("#pause-reason", "Menunggu foto dari kalurahan")
    staff.click("button:has-text('Minta jeda')")
    staff.wait_for_selector("#pause-request")
    assert "Menunggu foto dari kalurahan" in staff.inner_text("#pause-request")
    assert staff.locator("button[name=decision]").count() == 0
    _fits(staff, 390)
    staff.screenshot(path=str(artifacts_dir / "pause-requested-390.png"), full_page=True)

    boss = _context(browser, 1280).new_page()
    sign_in(boss, base, "dpmk.kasubbag")
    boss.click("nav >> text=Notifikasi")
    boss.locator("a", has_text="Permintaan jeda").first.click() if boss.locator(
        "a", has_text="Permintaan jeda").count() else boss.goto(f"{base}/tasks/{task_id}")
    boss.wait_for_selector("#pause-request")
    boss.screenshot(path=str(artifacts_dir / "pause-decide-1280.png"), full_page=True)
    clock(2026, 11, 23, 9, 30)  # the clock stops at the approval
    boss.fill("#decision-note", "Silakan, kabari bila foto sudah ada")
    boss.click("button:has-text('Setujui jeda')")
    boss.wait_for_selector("text=Jeda disetujui")
    assert boss.locator("#pause-request").count() == 0

    staff.goto(f"{base}/notifications/")
    assert "Jeda disetujui" in staff.inner_text("main")
    staff.goto(f"{base}/tasks/{task_id}")
    assert "bergeser setelah jam berjalan lagi" in staff.inner_text(".step-facts")
    clock(2026, 11, 23, 10, 30)  # an hour paused: due 11:00 instead of 10:00
    staff.fill("#resume-reason", "Foto sudah diterima")
    staff.click("button:has-text('Jalankan lagi')")
    staff.wait_for_selector("#due-moved")
    moved = staff.inner_text("#due-moved")
    assert "batas waktu bergeser dari 23 Nov 2026 10.00 WIB ke 23 Nov 2026 11.00 WIB" in moved, moved
    assert "11.00" in staff.inner_text("#due-at") and "11.00" in staff.inner_text("main .flash-info >> nth=0")
    _fits(staff, 390)
    staff.screenshot(path=str(artifacts_dir / "pause-resumed-390.png"), full_page=True)
    boss.goto(f"{base}/tasks/{task_id}")
    boss.screenshot(path=str(artifacts_dir / "pause-resumed-1280.png"), full_page=True)
