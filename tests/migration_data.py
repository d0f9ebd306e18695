"""Version 2 of DPMK's SOP, as a process owner would change it, for the migration tests.

From the deployed folder: step 2's Mutu Baku 15 -> 20 minutes; a new step `step1b` (Kasubbag
records the news in the Buku Agenda) between step 1 and step 2; step 5 (archiving) removed,
so step 4 ends the process. Edited as XML (lxml), with the diagram kept in step.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from lxml import etree

from engine.demo import PROCESSES

DPMK = "dpmk-pemutakhiran-website"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _by_id(root, element_id: str):
    found = root.xpath("//*[@id=$i]", i=element_id)
    assert found, element_id
    return found[0]


def _remove(root, *ids: str) -> None:
    for element_id in ids:
        element = _by_id(root, element_id)
        element.getparent().remove(element)
        for ref in root.xpath("//*[local-name()='flowNodeRef'][text()=$i]", i=element_id):
            ref.getparent().remove(ref)
        for shape in root.xpath("//*[@bpmnElement=$i]", i=element_id):
            shape.getparent().remove(shape)


def _shape(plane, element_id: str, x: int, y: int, w: int, h: int) -> None:
    shape = etree.SubElement(plane, _q(DI, "BPMNShape"), id=f"{element_id}_di", bpmnElement=element_id)
    etree.SubElement(shape, _q(DC, "Bounds"), x=str(x), y=str(y), width=str(w), height=str(h))


def write_v2(target: Path, mutu_baku_step2: str = "PT20M", add_step: bool = True, remove_step5: bool = True) -> Path:
    """A copy of DPMK's process folder changed as the module docstring says; returns the folder."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PROCESSES / DPMK, target)
    path = target / "process.bpmn"
    root = etree.fromstring(path.read_bytes())
    duration = _by_id(root, "step2_mutu_baku").find(f".//{_q(BPMN, 'timeDuration')}")
    duration.text = mutu_baku_step2
    _by_id(root, "step2_mutu_baku").set("name", f"Mutu Baku {mutu_baku_step2[2:-1]} menit")
    process = _by_id(root, "dpmk_pemutakhiran_website")
    plane = root.find(f".//{_q(DI, 'BPMNPlane')}")
    sop = json.loads((target / "sop.json").read_text(encoding="utf-8"))
    if add_step:
        flow = _by_id(root, "flow_step1_step2")
        flow.set("targetRef", "step1b")
        _by_id(root, "step2").find(_q(BPMN, "incoming")).text = "flow_step1b_step2"
        task = etree.SubElement(process, _q(BPMN, "userTask"), id="step1b", name="Mencatat berita dalam Buku Agenda")
        props = etree.SubElement(etree.SubElement(task, _q(BPMN, "extensionElements")), _q(SPIFF, "properties"))
        etree.SubElement(props, _q(SPIFF, "property"), name="formJsonSchemaFilename",
                         value="forms/step1b.schema.json")
        etree.SubElement(task, _q(BPMN, "incoming")).text = "flow_step1_step2"
        etree.SubElement(task, _q(BPMN, "outgoing")).text = "flow_step1b_step2"
        boundary = etree.SubElement(process, _q(BPMN, "boundaryEvent"), id="step1b_mutu_baku",
                                    name="Mutu Baku 10 menit", cancelActivity="false", attachedToRef="step1b")
        etree.SubElement(boundary, _q(BPMN, "outgoing")).text = "step1b_mutu_baku_flow"
        timer = etree.SubElement(boundary, _q(BPMN, "timerEventDefinition"), id="step1b_mutu_baku_timer")
        etree.SubElement(timer, _q(BPMN, "timeDuration")).text = "PT10M"
        end = etree.SubElement(process, _q(BPMN, "endEvent"), id="step1b_mutu_baku_end", name="Mutu Baku terlampaui")
        etree.SubElement(end, _q(BPMN, "incoming")).text = "step1b_mutu_baku_flow"
        etree.SubElement(process, _q(BPMN, "sequenceFlow"), id="flow_step1b_step2", sourceRef="step1b",
                         targetRef="step2")
        etree.SubElement(process, _q(BPMN, "sequenceFlow"), id="step1b_mutu_baku_flow",
                         sourceRef="step1b_mutu_baku", targetRef="step1b_mutu_baku_end")
        lane = _by_id(root, "lane_kasubbag")
        for element_id in ("step1b", "step1b_mutu_baku", "step1b_mutu_baku_end"):
            etree.SubElement(lane, _q(BPMN, "flowNodeRef")).text = element_id
        _shape(plane, "step1b", 330, 420, 100, 80)
        _shape(plane, "step1b_mutu_baku", 362, 482, 36, 36)
        _shape(plane, "step1b_mutu_baku_end", 362, 560, 36, 36)
        (target / "forms" / "step1b.schema.json").write_text(json.dumps({
            "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Buku Agenda", "type": "object",
            "properties": {"nomor_buku_agenda": {"type": "string", "title": "Nomor Buku Agenda", "minLength": 1,
                                                 "maxLength": 50}},
            "required": ["nomor_buku_agenda"], "additionalProperties": False}, indent=1), encoding="utf-8")
        steps = {}
        for key, value in sop["steps"].items():
            steps[key] = value
            if key == "step1":
                steps["step1b"] = {"text": "Mencatat berita dalam Buku Agenda", "output": "Buku Agenda terisi"}
        sop["steps"] = steps
    if remove_step5:
        _by_id(root, "flow_step4_step5").set("targetRef", "end")
        _by_id(root, "end").find(_q(BPMN, "incoming")).text = "flow_step4_step5"
        _remove(root, "step5", "step5_mutu_baku", "step5_mutu_baku_end", "flow_step5_end", "step5_mutu_baku_flow")
        (target / "forms" / "step5.schema.json").unlink()
        del sop["steps"]["step5"]
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    (target / "sop.json").write_text(json.dumps(sop, indent=2, ensure_ascii=False), encoding="utf-8")
    return target
