"""Issue 14, finding 9, in Chromium: the instance diagram is drawn at a readable scale (not fitted
down to about half size; it scrolls to the current step instead) and an overdue current step is
red in the diagram, as the step table says. Screenshots at 1,280 and 390 px go to
test-artifacts/diagram-overdue-*.png.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from .sopdata import DPMK
from .test_browser import browser, server, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

LATE_RGB = "rgb(161, 29, 29)"  # --late (#a11d1d) in webui/static/lajur.css

FACTS = """(id) => {
  const holder = document.getElementById('diagram');
  const el = holder.querySelector(`.djs-element[data-element-id="${id}"]`);
  const shape = el.querySelector('.djs-visual > :nth-child(1)');
  const label = el.querySelector('.djs-visual text');
  const box = holder.getBoundingClientRect(), at = el.getBoundingClientRect();
  const note = holder.querySelector('.lajur-note.is-current');
  return {classes: el.getAttribute('class'), stroke: getComputedStyle(shape).stroke,
          scale: parseFloat(holder.dataset.scale),
          labelPx: label.getBoundingClientRect().height / label.querySelectorAll('tspan').length,
          visible: at.left >= box.left - 1 && at.right <= box.right + 1 && at.top >= box.top - 1 && at.bottom <= box.bottom + 1,
          box: [box.left, box.top, box.right, box.bottom], at: [at.left, at.top, at.right, at.bottom],
          note: note && note.textContent, noteBg: note && getComputedStyle(note).backgroundColor,
          scroll: document.documentElement.scrollWidth, inner: window.innerWidth};
}"""


@pytest.fixture(scope="module")
def overdue(server):  # noqa: F811
    """A DPMK instance whose current step (step 1) is an hour past its due time."""
    _base, services, _tmp = server
    from engine.models import HumanTask, User
    with services.sessions() as s:
        penerima = s.scalar(select(User.id).where(User.username == "dpmk.penerima"))
    iid = services.runtime.start(penerima, DPMK, "Berita yang terlambat")
    with services.sessions.begin() as s:
        task = s.scalar(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.state == "ready"))
        task.ready_at = datetime.now(timezone.utc) - timedelta(days=3)
        task.due_at = datetime.now(timezone.utc) - timedelta(hours=1)
        return iid, task.bpmn_id


@pytest.mark.parametrize("width", [1280, 390])
def test_overdue_current_step_is_red_and_the_diagram_readable(server, browser, overdue, artifacts_dir,  # noqa: F811
                                                              width):
    base = server[0]
    iid, step = overdue
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="id-ID",
                                  is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "dpmk.kasubbag")
    page.goto(f"{base}/instances/{iid}")
    page.wait_for_selector("#diagram[data-ready='1']")
    facts = page.evaluate(FACTS, step)
    assert "lajur-current" in facts["classes"] and "lajur-late" in facts["classes"], facts
    assert facts["stroke"] == LATE_RGB, facts  # red like the table, not the current step's blue
    assert facts["noteBg"] == LATE_RGB and facts["note"], facts
    assert page.locator("#steps tr.st-current-late").count() == 1  # the table says late too
    assert facts["scale"] >= 0.8, facts  # not fitted down to about half size
    assert facts["labelPx"] >= 0.8 * 12, facts  # bpmn-js draws labels at 12 px at full scale
    assert facts["visible"], facts  # scrolled to the current step
    assert facts["scroll"] == facts["inner"] == width, facts
    page.locator("#diagram").scroll_into_view_if_needed()
    page.mouse.wheel(0, 0)
    page.screenshot(path=str(artifacts_dir / f"diagram-overdue-{width}.png"), full_page=width < 500)
    context.close()
    assert not errors, errors
