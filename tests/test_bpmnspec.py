"""The specs SpiffWorkflow builds are remembered per document meaning (engine/bpmnspec.py's
`Meaning`): these tests hold the claim that makes that exact. SpiffWorkflow==3.2.0 is pinned in
pyproject; if an upgrade reads more of the diagram than the y order of a node's outgoing flows,
the first test fails and `Meaning` must learn what it reads."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from engine.bpmnspec import DC_NS, Meaning, _specs, spiff_specs
from engine.serialization import WorkflowStore

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
DEMO = sorted(p.name for p in PROCESSES.iterdir() if (p / "process.bpmn").is_file())


def _doc(key: str) -> tuple[str, str]:
    text = (PROCESSES / key / "process.bpmn").read_text(encoding="utf-8")
    return text, re.search(r'<bpmn:process id="([^"]+)"[^>]*isExecutable="true"', text).group(1)


def _relaid(text: str, y_of=lambda y: 2 * y + 5, dx: float = 37) -> str:
    """Every shape and edge moved and stretched, the vertical order of shapes kept."""
    root = etree.fromstring(text.encode())
    for el in root.iter(f"{{{DC_NS}}}Bounds", "{http://www.omg.org/spec/DD/20100524/DI}waypoint"):
        el.set("x", f"{float(el.get('x')) + dx:g}")
        el.set("y", f"{y_of(float(el.get('y'))):g}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def _fresh(text: str, process_id: str) -> dict:
    """SpiffWorkflow's own parse of this very text, serialised: no remembered specs."""
    spec, subprocess_specs = _specs.__wrapped__(Meaning(text), "process.bpmn", process_id)
    return WorkflowStore().spec_to_dict(spec, subprocess_specs)


@pytest.mark.parametrize("key", DEMO)
def test_a_new_layout_gives_the_same_specs(key):
    text, pid = _doc(key)
    moved = _relaid(text)
    assert moved != text and Meaning(moved) == Meaning(text)
    assert _fresh(moved, pid) == _fresh(text, pid)  # the claim: layout (but y order) is not in the specs
    assert spiff_specs(moved, "process.bpmn", pid) is spiff_specs(text, "process.bpmn", pid)  # and it is reused


@pytest.mark.parametrize("key", DEMO)
def test_the_y_order_of_a_decision_is_part_of_the_meaning(key):
    text, pid = _doc(key)
    flipped = _relaid(text, y_of=lambda y: -y)  # every shape mirrored: each decision's flows in the other order
    assert Meaning(flipped) != Meaning(text)
    assert _fresh(flipped, pid) != _fresh(text, pid)  # SpiffWorkflow does order by y, so the key must carry it
    assert spiff_specs(flipped, "process.bpmn", pid) is not spiff_specs(text, "process.bpmn", pid)


def test_any_change_to_the_process_is_a_new_meaning():
    text, pid = _doc(DEMO[0])
    renamed = text.replace('name="', 'name="X ', 1)
    assert renamed != text and Meaning(renamed) != Meaning(text)
    assert Meaning("<not xml") != Meaning("<not xml ") and Meaning("<not xml") == Meaning("<not xml")
