"""Each processes/<key>/process.bpmn opens and saves in bpmn.io (the vendored bpmn-js
modeler, run in Debian chromium through Playwright) without losing anything the engine
reads: semantic elements and ids, names, refs, timer and condition texts, documentation,
and the spiffworkflow:properties extension elements. The saved XML must still parse in
SpiffWorkflow with XSD validation.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
VENDOR = ROOT / "webui" / "static" / "vendor" / "bpmn-js"
MODELER_JS = VENDOR / "bpmn-modeler.production.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
KEYS = ["dpmk-pemutakhiran-website", "dinsos-website-medsos"]
PROCESS_IDS = {"dpmk-pemutakhiran-website": "dpmk_pemutakhiran_website",
               "dinsos-website-medsos": "dinsos_website_medsos"}

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "spiffworkflow": SPIFF}
ATTRS = ("name", "cancelActivity", "attachedToRef", "sourceRef", "targetRef",
         "processRef", "isExecutable")
TEXT_TAGS = {f"{{{BPMN}}}{t}" for t in (
    "timeDuration", "conditionExpression", "documentation", "flowNodeRef", "incoming", "outgoing")}

pytestmark = pytest.mark.browser


def _require_chromium():
    if not os.path.exists(CHROMIUM):
        msg = f"{CHROMIUM} not found (apt-get install chromium) - cannot run the bpmn-js round trip"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    if not MODELER_JS.is_file():
        pytest.fail(f"{MODELER_JS} missing: run scripts/vendor.sh")


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


ROUND_TRIP_JS = """
async (xml) => {
  const modeler = new BpmnJS({ container: '#canvas' });
  const imported = await modeler.importXML(xml);
  const elements = modeler.get('elementRegistry').getAll().map(e => e.id);
  const saved = await modeler.saveXML({ format: true });
  return { warnings: imported.warnings.map(w => String(w.message || w)), xml: saved.xml, elements };
}
"""


def _round_trip(browser, xml: str) -> dict:
    page = browser.new_page()
    try:
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_content('<!doctype html><html><body>'
                         '<div id="canvas" style="width:1800px;height:900px"></div></body></html>')
        page.add_script_tag(path=str(MODELER_JS))
        result = page.evaluate(ROUND_TRIP_JS, xml)
        assert not errors, errors
        return result
    finally:
        page.close()


def _semantic(root):
    """Everything under bpmn:definitions except the BPMNDI diagram."""
    out = []
    for child in root:
        if not isinstance(child.tag, str) or child.tag == f"{{{BPMNDI}}}BPMNDiagram":
            continue
        out.extend(el for el in child.iter() if isinstance(el.tag, str))
    return out


def _owner(el):
    while el is not None and el.get("id") is None:
        el = el.getparent()
    return None if el is None else el.get("id")


def _summary(root):
    els = _semantic(root)
    ids = Counter((el.tag, el.get("id")) for el in els if el.get("id"))
    anon = Counter((el.tag, _owner(el.getparent())) for el in els if not el.get("id"))
    attrs = {el.get("id"): {a: el.get(a) for a in ATTRS if el.get(a) is not None}
             for el in els if el.get("id")}
    texts = Counter((el.tag, _owner(el), (el.text or "").strip()) for el in els if el.tag in TEXT_TAGS)
    props = {_owner(p): sorted((q.get("name"), q.get("value"))
                               for q in p.iterfind("spiffworkflow:property", NS))
             for p in root.iterfind(".//spiffworkflow:properties", NS)}
    di = Counter(d.get("bpmnElement") for d in root.iterfind(".//bpmndi:BPMNDiagram//*[@bpmnElement]", NS))
    return {"ids": ids, "anon": anon, "attrs": attrs, "texts": texts, "props": props, "di": di}


@pytest.mark.parametrize("key", KEYS)
def test_bpmn_io_round_trip_keeps_everything(browser, key, tmp_path):
    src = PROCESSES / key / "process.bpmn"
    original_xml = src.read_text(encoding="utf-8")
    result = _round_trip(browser, original_xml)
    assert result["warnings"] == []
    saved_xml = result["xml"]
    (tmp_path / "saved.bpmn").write_text(saved_xml, encoding="utf-8")

    before = _summary(etree.fromstring(original_xml.encode("utf-8")))
    after = _summary(etree.fromstring(saved_xml.encode("utf-8")))
    for part in ("ids", "anon", "attrs", "texts", "props", "di"):
        assert after[part] == before[part], f"{key}: bpmn-js changed {part}"
    # sanity: the parts we care about were actually compared
    assert len(before["props"]) >= 4
    assert any(tag.endswith("timeDuration") for tag, _, _ in before["texts"])
    assert any(tag.endswith("conditionExpression") for tag, _, _ in before["texts"])
    # every semantic flow element was imported into the canvas
    assert {"step1", "step1_mutu_baku", "step3_decision", "end"} <= set(result["elements"])

    from SpiffWorkflow.spiff.parser import VALIDATOR
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(tmp_path / "saved.bpmn"))
    spec = parser.get_spec(PROCESS_IDS[key])
    assert spec.task_specs["step1"].extensions["properties"]["formJsonSchemaFilename"] == "forms/step1.schema.json"
    assert spec.task_specs["step1_mutu_baku"].cancel_activity is False
