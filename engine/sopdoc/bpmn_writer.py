"""Writing an SOP document as BPMN, with its diagram (DI) so bpmn-js draws it.

The shape follows "How a process folder is written" (README): one lane per actor, one user
task per step, a non-interrupting Mutu Baku timer on each, YA/TIDAK decisions as exclusive
gateways over the step's `stepN_keputusan` field, and a merge gateway before a step a TIDAK
branch returns to. A step whose actor is unknown is put in no lane and a step without a
readable time gets no timer: deploy validation then refuses the draft until a person has
resolved it. A TIDAK branch whose target is unknown ends at an end event named so.
"""
from __future__ import annotations

from lxml import etree

from .model import SopDocument, minutes_text

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NSMAP = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "xsi": XSI, "spiffworkflow": SPIFF}

LANE_H, POOL_X, POOL_Y, LABEL_W = 180, 160, 80, 30
TASK_W, TASK_H, NODE_GAP = 150, 80, 90
SIZES = {"task": (TASK_W, TASK_H), "gateway": (50, 50), "event": (36, 36)}
UNRESOLVED_TIDAK = "TIDAK: tujuan belum ditentukan"


def decision_field(step_id: str) -> str:
    return f"{step_id}_keputusan"


def lane_id(index: int) -> str:
    return f"lane_{index + 1}"


def _el(parent, tag: str, ns: str = BPMN, **attrs):
    el = etree.SubElement(parent, f"{{{ns}}}{tag}")
    for k, v in attrs.items():
        if v is not None:
            el.set(k.rstrip("_"), str(v))
    return el


def write_bpmn(doc: SopDocument, process_id: str, pool_name: str) -> str:
    steps = {f"step{s.no}": s for s in doc.steps}
    order = list(steps)
    lane_of = {sid: doc.actors.index(s.actor) if s.actor in doc.actors else None for sid, s in steps.items()}
    returns_to = {f"step{s.decision.tidak_to}" for s in doc.steps if s.decision and s.decision.tidak_to}

    # Nodes in drawing order: (id, kind, bpmn tag, name, lane index or None)
    nodes: list[tuple[str, str, str, str | None, int | None]] = [
        ("start", "event", "startEvent", "Mulai", lane_of[order[0]])]
    flows: list[tuple[str, str, str, str | None, str | None]] = []  # id, source, target, name, condition
    entry = {sid: (f"{sid}_merge" if sid in returns_to else sid) for sid in order}
    prev, prev_name, prev_cond = "start", None, None
    for sid in order:
        step, lane = steps[sid], lane_of[sid]
        target = entry[sid]
        flows.append((f"flow_{prev}_ya" if prev_name else f"flow_{prev}_{target}", prev, target, prev_name, prev_cond))
        if sid in returns_to:
            nodes.append((target, "gateway", "exclusiveGateway", None, lane))
            flows.append((f"flow_{target}_{sid}", target, sid, None, None))
        nodes.append((sid, "task", "userTask", step.text[:200], lane))
        prev, prev_name, prev_cond = sid, None, None
        if step.decision:
            gw, field = f"{sid}_decision", decision_field(sid)
            nodes.append((gw, "gateway", "exclusiveGateway", f"Keputusan langkah {step.no}?", lane))
            flows.append((f"flow_{sid}_{gw}", sid, gw, None, None))
            tidak = entry.get(f"step{step.decision.tidak_to}") if step.decision.tidak_to else None
            if tidak is None:
                tidak = f"{sid}_tidak_end"
                nodes.append((tidak, "event", "endEvent", UNRESOLVED_TIDAK, lane))
            flows.append((f"flow_{gw}_tidak", gw, tidak, "TIDAK", f'{field} == "TIDAK"'))
            prev, prev_name, prev_cond = gw, "YA", f'{field} == "YA"'
    nodes.append(("end", "event", "endEvent", "Selesai", lane_of[order[-1]]))
    flows.append((f"flow_{prev}_ya" if prev_name else f"flow_{prev}_end", prev, "end", prev_name, prev_cond))
    return _serialise(doc, process_id, pool_name, steps, nodes, flows)


def _serialise(doc, process_id, pool_name, steps, nodes, flows) -> str:
    root = etree.Element(f"{{{BPMN}}}definitions", nsmap=NSMAP)
    root.set("id", f"{process_id}_definitions")
    root.set("targetNamespace", f"urn:lajur:process:{process_id}")
    root.set("exporter", "Lajur import-sop")
    root.set("exporterVersion", "1")
    collab = _el(root, "collaboration", id=f"{process_id}_collaboration")
    _el(collab, "participant", id=f"{process_id}_pool", name=pool_name, processRef=process_id)
    process = _el(root, "process", id=process_id, name=doc.header.get("name") or process_id, isExecutable="true")
    lane_set = _el(process, "laneSet", id=f"{process_id}_lanes")
    lanes = [_el(lane_set, "lane", id=lane_id(i), name=actor) for i, actor in enumerate(doc.actors)]

    incoming, outgoing = {}, {}
    for fid, src, tgt, _, _ in flows:
        outgoing.setdefault(src, []).append(fid)
        incoming.setdefault(tgt, []).append(fid)
    timers = []
    for nid, kind, tag, name, lane in nodes:
        el = _el(process, tag, id=nid, name=name)
        if lane is not None:
            etree.SubElement(lanes[lane], f"{{{BPMN}}}flowNodeRef").text = nid
        if tag == "userTask":
            ext = _el(_el(el, "extensionElements"), "properties", ns=SPIFF)
            _el(ext, "property", ns=SPIFF, name="formJsonSchemaFilename", value=f"forms/{nid}.schema.json")
        for fid in incoming.get(nid, []):
            etree.SubElement(el, f"{{{BPMN}}}incoming").text = fid
        for fid in outgoing.get(nid, []):
            etree.SubElement(el, f"{{{BPMN}}}outgoing").text = fid
        if tag == "userTask" and steps[nid].minutes:
            minutes = steps[nid].minutes
            b = _el(process, "boundaryEvent", id=f"{nid}_mutu_baku", name=f"Mutu Baku {minutes_text(minutes)}",
                    cancelActivity="false", attachedToRef=nid)
            etree.SubElement(b, f"{{{BPMN}}}outgoing").text = f"{nid}_mutu_baku_flow"
            ted = _el(b, "timerEventDefinition", id=f"{nid}_mutu_baku_timer")
            dur = _el(ted, "timeDuration")
            dur.set(f"{{{XSI}}}type", "bpmn:tFormalExpression")
            dur.text = f"PT{minutes}M"
            end = _el(process, "endEvent", id=f"{nid}_mutu_baku_end", name="Mutu Baku terlampaui")
            etree.SubElement(end, f"{{{BPMN}}}incoming").text = f"{nid}_mutu_baku_flow"
            if lane is not None:
                for ref in (b.get("id"), end.get("id")):
                    etree.SubElement(lanes[lane], f"{{{BPMN}}}flowNodeRef").text = ref
            timers.append(nid)
    for fid, src, tgt, name, condition in flows:
        f = _el(process, "sequenceFlow", id=fid, name=name, sourceRef=src, targetRef=tgt)
        if condition:
            c = _el(f, "conditionExpression")
            c.set(f"{{{XSI}}}type", "bpmn:tFormalExpression")
            c.text = condition
    for nid in timers:
        _el(process, "sequenceFlow", id=f"{nid}_mutu_baku_flow", sourceRef=f"{nid}_mutu_baku",
            targetRef=f"{nid}_mutu_baku_end")
    _diagram(root, process_id, doc, nodes, flows, timers)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()


def _diagram(root, process_id, doc, nodes, flows, timers) -> None:
    bands = len(doc.actors) + (1 if any(lane is None for *_, lane in nodes) else 0)
    columns, x = {}, POOL_X + LABEL_W + 40
    for nid, kind, *_ in nodes:
        columns[nid] = x
        x += SIZES[kind][0] + NODE_GAP
    width = x - POOL_X + 40
    bounds = {}
    for nid, kind, _, _, lane in nodes:
        w, h = SIZES[kind]
        band = lane if lane is not None else len(doc.actors)
        if nid.endswith("_tidak_end"):  # an unresolved TIDAK end: below the YA line, after its gateway
            gx, gy, _, _ = bounds[nid.removesuffix("_tidak_end") + "_decision"]
            bounds[nid] = (columns[nid], gy + 70, w, h)
        else:
            bounds[nid] = (columns[nid], POOL_Y + band * LANE_H + (LANE_H - 40 - h) // 2, w, h)

    diagram = _el(root, "BPMNDiagram", ns=BPMNDI, id=f"{process_id}_diagram")
    plane = _el(diagram, "BPMNPlane", ns=BPMNDI, id=f"{process_id}_plane", bpmnElement=f"{process_id}_collaboration")

    def shape(element, x, y, w, h, **extra):
        s = _el(plane, "BPMNShape", ns=BPMNDI, id=f"{element}_di", bpmnElement=element, **extra)
        _el(s, "Bounds", ns=DC, x=x, y=y, width=w, height=h)

    def edge(element, points, label=False):
        e = _el(plane, "BPMNEdge", ns=BPMNDI, id=f"{element}_di", bpmnElement=element)
        for px, py in points:
            _el(e, "waypoint", ns=DI, x=px, y=py)
        if label:  # YA/TIDAK next to where the flow leaves its gateway
            (px, py), (_, qy) = points[0], points[1]
            lx, ly = (px + 6, py - 20) if qy < py else (px + 8, qy - 16) if qy > py else (px + 6, py - 18)
            _el(_el(e, "BPMNLabel", ns=BPMNDI), "Bounds", ns=DC, x=lx, y=ly, width=40, height=14)

    shape(f"{process_id}_pool", POOL_X, POOL_Y, width, bands * LANE_H, isHorizontal="true")
    for i in range(len(doc.actors)):
        shape(lane_id(i), POOL_X + LABEL_W, POOL_Y + i * LANE_H, width - LABEL_W, LANE_H, isHorizontal="true")
    for nid, kind, *_ in nodes:
        extra = {"isMarkerVisible": "true"} if kind == "gateway" else {}
        shape(nid, *bounds[nid], **extra)
    for nid in timers:
        x, y, w, h = bounds[nid]
        shape(f"{nid}_mutu_baku", x + w - 40, y + h - 18, 36, 36)
        shape(f"{nid}_mutu_baku_end", x + w + 40, y + h + 22, 36, 36)
        edge(f"{nid}_mutu_baku_flow", [(x + w - 22, y + h + 18), (x + w - 22, y + h + 40), (x + w + 40, y + h + 40)])
    for fid, src, tgt, name, _ in flows:
        sx, sy, sw, sh = bounds[src]
        tx, ty, tw, th = bounds[tgt]
        if tgt.endswith("_tidak_end"):
            edge(fid, [(sx + sw // 2, sy + sh), (sx + sw // 2, ty + th // 2), (tx, ty + th // 2)], label=True)
        elif tx > sx:
            a, b = (sx + sw, sy + sh // 2), (tx, ty + th // 2)
            if a[1] == b[1]:
                edge(fid, [a, b], label=bool(name))
            else:
                mid = tx - NODE_GAP // 2
                edge(fid, [a, (mid, a[1]), (mid, b[1]), b], label=bool(name))
        else:  # a TIDAK branch back to an earlier merge: over the top of the pool
            top = POOL_Y + 12
            edge(fid, [(sx + sw // 2, sy), (sx + sw // 2, top), (tx + tw // 2, top), (tx + tw // 2, ty)],
                 label=bool(name))
