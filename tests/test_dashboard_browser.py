"""The dashboard in Chromium at a 1,280 px desktop and a 390 px phone (issue 14, item 6).

The overview must fit: no sideways scrolling of the page (its scroll width equals the
viewport's) and none inside the overview table either at 1,280 px; on the phone every table
becomes cards. The filters name steps and offices, not their codes. Screenshots go to
test-artifacts/dashboard-*.png.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from .sopdata import DINSOS, DPMK, REJECT, STEP_DATA
from .test_browser import browser, server, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

FITS = """() => {
  const doc = document.documentElement, table = document.querySelector('#overview');
  const wrap = table && table.closest('.table-wrap');
  return {page: doc.scrollWidth, viewport: doc.clientWidth,
          table: table ? table.scrollWidth : 0, wrap: wrap ? wrap.clientWidth : 0};
}"""


@pytest.fixture(scope="module")
def worked(server):  # noqa: F811
    """A few instances of both SOPs worked through the engine, one with a TIDAK return."""
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
    for n in range(2):
        iid = rt.start(ids["dpmk.penerima"], DPMK, f"Berita dasbor {n}")
        step(iid, "dpmk.penerima", STEP_DATA[(DPMK, "step1")])
        step(iid, "dpmk.kasubbag", STEP_DATA[(DPMK, "step2")])
        step(iid, "dpmk.sekdin", REJECT[(DPMK, "step3")] if n == 0 else STEP_DATA[(DPMK, "step3")])
        iid = rt.start(ids["dinsos.petugas"], DINSOS, f"Rilis dasbor {n}")
        step(iid, "dinsos.petugas", STEP_DATA[(DINSOS, "step1")])
    return ids


def _context(browser, width):  # noqa: F811
    return browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID",
                               is_mobile=width < 500, has_touch=width < 500)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("user", ["admin", "dpmk.kasubbag"])
def test_overview_fits_the_screen(server, browser, worked, artifacts_dir, width, user):  # noqa: F811
    base = server[0]
    context = _context(browser, width)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, base, user)
        page.goto(f"{base}/dashboard")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(artifacts_dir / f"dashboard-{user.replace('.', '-')}-{width}.png"), full_page=True)
        size = page.evaluate(FITS)
        assert size["page"] == size["viewport"], size  # no sideways scrolling of the page
        assert size["table"] <= size["wrap"], size  # nor inside the overview table
        # the filters name steps and offices, not their codes
        steps = page.locator("select[name=step] option").all_inner_texts()
        assert "1. Menerima berita beserta bukti otentik multimedia" in steps
        assert not any(t.strip().startswith("step") for t in steps), steps
        if user == "admin":
            offices = page.locator("select[name=office] option").all_inner_texts()
            assert "Dinas Pemberdayaan Masyarakat dan Kalurahan" in offices and "dpmk" not in offices
        # XLSX is the first download offered
        first = page.locator(".dash-exports a").first
        assert first.get_attribute("href").split("?")[0].endswith(".xlsx")
        for path in ("/dashboard/officers", "/dashboard/trends", "/dashboard/drill?figure=completed"):
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            size = page.evaluate(FITS)
            assert size["page"] == size["viewport"], (path, size)
        if width == 390:
            page.goto(f"{base}/dashboard/trends")
            page.screenshot(path=str(artifacts_dir / f"dashboard-trends-{user.replace('.', '-')}-{width}.png"),
                            full_page=True)
    finally:
        context.close()
    assert not errors, errors


def test_a_step_picked_by_name_filters_its_sop(server, browser, worked, artifacts_dir):  # noqa: F811
    base = server[0]
    context = _context(browser, 1280)
    page = context.new_page()
    try:
        sign_in(page, base, "admin")
        page.goto(f"{base}/dashboard")
        page.select_option("select[name=step]", label="3. Memilah Press Release yang disetujui dan tidak disetujui")
        page.click("button:has-text('Terapkan')")
        page.wait_for_load_state("networkidle")
        assert page.locator("select[name=process]").input_value() == DPMK  # the step names its SOP
        assert page.locator("select[name=step]").input_value() == f"{DPMK}:step3"
        rows = page.locator("#overview tbody tr")
        assert rows.count() == 1 and "Memilah Press Release" in rows.first.inner_text()
        # a bad date is a field error on the page, not a 500
        response = page.goto(f"{base}/dashboard?start=0001-01-01")
        assert response.status == 400
        assert page.locator("#err-start").is_visible()
        page.screenshot(path=str(artifacts_dir / "dashboard-field-error-1280.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_sop_evaluation_page_fits_the_screen(server, browser, worked, artifacts_dir, width):  # noqa: F811
    """The monitoring and evaluation forms (issue 16) as a supervisor reads them."""
    base = server[0]
    context = _context(browser, width)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, base, "dpmk.kasubbag")
        page.goto(f"{base}/dashboard")
        page.get_by_role("link", name="Evaluasi SOP").click()
        page.wait_for_load_state("networkidle")
        assert page.get_by_role("heading", name="Monitoring dan evaluasi SOP").is_visible()
        assert page.locator("#monitoring-1 tbody tr").count() == 5  # DPMK's five steps
        page.screenshot(path=str(artifacts_dir / f"dashboard-evaluation-{width}.png"), full_page=True)
        size = page.evaluate("() => ({page: document.documentElement.scrollWidth,"
                             " viewport: document.documentElement.clientWidth})")
        assert size["page"] == size["viewport"], size
        assert not errors, errors
    finally:
        context.close()
