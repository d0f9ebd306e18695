"""An imported draft carries its diagram (DI): the vendored bpmn-js draws it in Chromium
without warnings, with every lane, step, timer and the decision in place. Screenshots of
a clean draft and of one with open problems land in test-artifacts/.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.sopdoc.bpmn_writer import write_bpmn
from engine.sopdoc.layout import read_layout
from engine.sopdoc.read_docx import read_docx
from engine.sopdoc.read_text import read_text

from . import sopdocs
from .test_browser import browser  # noqa: F401 (fixture)

VIEWER = Path(__file__).resolve().parent.parent / "webui/static/vendor/bpmn-js/bpmn-viewer.production.min.js"
SHARED_DPMK = Path(__file__).resolve().parent.parent.parent / "shared/sop/sop-dpmk-pemutakhiran-website.txt"


def _draw(browser, xml: str, shot: Path) -> dict:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_content('<html><body style="margin:0"><div id="c" style="width:1400px;height:800px"></div></body></html>')
    page.add_script_tag(path=str(VIEWER))
    result = page.evaluate("""async (xml) => {
        const viewer = new BpmnJS({ container: '#c' });
        const { warnings } = await viewer.importXML(xml);
        viewer.get('canvas').zoom('fit-viewport');
        const shapes = viewer.get('elementRegistry').getAll().filter(e => e.type !== 'label');
        const count = {};
        shapes.forEach(e => { count[e.type] = (count[e.type] || 0) + 1; });
        return { warnings: warnings.map(w => w.message), count };
    }""", xml)
    page.screenshot(path=str(shot))
    page.close()
    assert not errors, errors
    return result


@pytest.mark.browser
def test_bpmn_js_draws_an_imported_draft(browser, artifacts_dir):  # noqa: F811
    doc = read_layout(read_docx(sopdocs.build_docx(marks="shapes")))
    drawn = _draw(browser, write_bpmn(doc, "sop_test_surat_masuk", "Dinas Kominfo"),
                  artifacts_dir / "sop-import-draft-diagram.png")
    assert drawn["warnings"] == []
    count = drawn["count"]
    assert count["bpmn:Lane"] == 3 and count["bpmn:UserTask"] == 5 and count["bpmn:BoundaryEvent"] == 5
    assert count["bpmn:ExclusiveGateway"] == 2          # the decision and the merge before step 2
    assert count["bpmn:SequenceFlow"] >= 5 + 1 + 2 + 5


@pytest.mark.browser
def test_bpmn_js_draws_a_draft_with_open_problems(browser, artifacts_dir):  # noqa: F811
    if not SHARED_DPMK.exists():
        pytest.skip(f"{SHARED_DPMK} is not here")
    doc = read_layout(read_text(SHARED_DPMK.read_bytes()))
    drawn = _draw(browser, write_bpmn(doc, "sop_dpmk", "DPMK"), artifacts_dir / "sop-import-draft-problems.png")
    assert drawn["warnings"] == []
    assert drawn["count"]["bpmn:UserTask"] == 5 and drawn["count"]["bpmn:EndEvent"] == 5 + 1 + 1
