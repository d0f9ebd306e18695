"""Reading a deployed version back into the SOP document model, for printing it.

The document is generated from what runs: lanes are the actor columns (in lane order),
user tasks are the steps (ordered by the SOP number in sop.json, else by the flow), each
timer is the Waktu, and an exclusive gateway after a step with YA/TIDAK flows is its
decision, its TIDAK target being the first step reached along the TIDAK flow.
"""
from __future__ import annotations

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts import office_by_code
from ..bpmn import BPMN_NS, NS
from ..calendar import parse_iso_minutes
from ..errors import NotFound
from ..models import ProcessDefinition, ProcessVersion
from .model import Decision, SopDocument, Step, minutes_text


def find_version(session: Session, key: str, version: int | None = None,
                 office_code: str | None = None) -> ProcessVersion:
    """The deployed version `version` (default: the latest) of the SOP `key`."""
    query = select(ProcessDefinition).where(ProcessDefinition.key == key)
    if office_code:
        query = query.where(ProcessDefinition.office_id == office_by_code(session, office_code).id)
    definitions = session.scalars(query).all()
    if not definitions:
        raise NotFound(f"process {key!r} is not deployed")
    if len(definitions) > 1:
        raise NotFound(f"process {key!r} exists in several offices: give --office")
    definition = definitions[0]
    if version is None:
        found = session.get(ProcessVersion, definition.latest_version_id) if definition.latest_version_id else None
    else:
        found = session.scalar(select(ProcessVersion).where(ProcessVersion.definition_id == definition.id,
                                                            ProcessVersion.version == version))
    if found is None:
        raise NotFound(f"process {key!r} has no version {version}")
    return found


def _tag(el) -> str:
    return etree.QName(el).localname


def document_from_bpmn(bpmn_xml: str, sop: dict) -> SopDocument:
    root = etree.fromstring(bpmn_xml.encode(), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    process = root.find(f"bpmn:process[@id='{sop.get('process_id')}']", NS) if sop.get("process_id") else None
    if process is None:
        process = root.find("bpmn:process[@isExecutable='true']", NS)
    nodes = {el.get("id"): el for el in process if isinstance(el.tag, str) and el.get("id")}
    flows = {fid: el for fid, el in nodes.items() if _tag(el) == "sequenceFlow"}
    out: dict[str, list] = {}
    for f in flows.values():
        out.setdefault(f.get("sourceRef"), []).append(f)
    actors, lane_of = [], {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        actors.append(lane.get("name") or lane.get("id"))
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            lane_of[(ref.text or "").strip()] = actors[-1]
    tasks = [nid for nid, el in nodes.items() if _tag(el) == "userTask"]
    minutes = {}
    for el in nodes.values():
        if _tag(el) == "boundaryEvent" and el.get("attachedToRef") in tasks:
            duration = el.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
            if duration is not None and duration.text:
                minutes[el.get("attachedToRef")] = round(parse_iso_minutes(duration.text))

    flow_order = []
    starts = [nid for nid, el in nodes.items() if _tag(el) == "startEvent"]
    queue, seen = list(starts), set()
    while queue:
        nid = queue.pop(0)
        if nid in seen:
            continue
        seen.add(nid)
        if nid in tasks:
            flow_order.append(nid)
        queue.extend(f.get("targetRef") for f in out.get(nid, []))
    sop_steps = sop.get("steps", {})
    ordered = sorted(tasks, key=lambda t: (sop_steps.get(t, {}).get("no") or 10_000,
                                           flow_order.index(t) if t in flow_order else len(tasks)))
    number = {tid: i + 1 for i, tid in enumerate(ordered)}

    def first_task(nid: str, visited=()) -> str | None:
        if nid in tasks:
            return nid
        if nid in visited or _tag(nodes.get(nid, process)) not in ("exclusiveGateway", "inclusiveGateway"):
            return None
        targets = [first_task(f.get("targetRef"), (*visited, nid)) for f in out.get(nid, [])]
        return targets[0] if len(targets) == 1 else None

    steps = []
    for tid in ordered:
        card = sop_steps.get(tid, {})
        step = Step(no=number[tid], text=card.get("text") or nodes[tid].get("name") or tid,
                    actor=lane_of.get(tid), requirements=card.get("requirements_text") or "",
                    minutes=minutes.get(tid), output=card.get("output") or "", note=card.get("note") or "")
        step.time_text = minutes_text(step.minutes) if step.minutes else ""
        for f in out.get(tid, []):
            gw = nodes.get(f.get("targetRef"))
            if gw is None or _tag(gw) != "exclusiveGateway" or len(out.get(gw.get("id"), [])) < 2:
                continue
            for branch in out[gw.get("id")]:
                label = (branch.get("name") or "").strip().upper()
                cond = branch.find("bpmn:conditionExpression", NS)
                text = (cond.text or "") if cond is not None else ""
                if label == "TIDAK" or text.rstrip().endswith('"TIDAK"'):
                    target = first_task(branch.get("targetRef"))
                    step.decision = Decision(tidak_to=number.get(target))
        steps.append(step)
    header = {k: sop.get(k) for k in ("number", "name", "created", "revised", "approved", "approved_by",
                                      "legal_basis", "related_sops", "warning", "qualifications", "equipment",
                                      "records")}
    header["office"] = sop.get("office", {})
    return SopDocument(header=header, actors=actors, steps=steps)
