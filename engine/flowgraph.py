"""The flow of a BPMN process as a plain graph, read from the XML without running anything.

Deploy asks static questions of a process: where does an instance first wait (the start
lanes, stored on the version so that listing what a user may start never runs a workflow),
does every path from the start reach an end, and which form fields are filled on *every*
path before a gateway. Only the process's own level is walked: a sub-process is one node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

# Elements SpiffWorkflow runs by itself when it reaches them; everything else in the flow
# (user, manual, receive and plain tasks, catch events, sub-processes) waits for someone.
PASS_THROUGH = {"startEvent", "endEvent", "exclusiveGateway", "parallelGateway", "inclusiveGateway",
                "scriptTask", "serviceTask", "businessRuleTask", "sendTask", "intermediateThrowEvent",
                "boundaryEvent"}
NODE_TAGS = PASS_THROUGH | {"userTask", "manualTask", "receiveTask", "task", "intermediateCatchEvent",
                            "eventBasedGateway", "subProcess", "callActivity", "transaction", "adHocSubProcess"}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # the BPMN tag without namespace: userTask, exclusiveGateway, ...
    name: str
    line: int
    lane: str | None


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    condition: str | None
    line: int


@dataclass
class FlowGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)
    outgoing: dict[str, list[str]] = field(default_factory=dict)  # node id -> successor ids
    incoming: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, process) -> "FlowGraph":
        """The graph of an lxml `bpmn:process` element; boundary events hang off their task."""
        lanes = {ref.text.strip(): lane.get("name")
                 for lane in process.iter(f"{{{BPMN_NS}}}lane")
                 for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef") if ref.text}
        graph = cls()
        for child in process:
            if not isinstance(child.tag, str):
                continue
            kind = child.tag.rsplit("}", 1)[-1]
            if kind in NODE_TAGS and child.get("id"):
                graph.nodes[child.get("id")] = Node(child.get("id"), kind, child.get("name") or "",
                                                    child.sourceline, lanes.get(child.get("id")))
        for child in process:
            if not isinstance(child.tag, str):
                continue
            kind = child.tag.rsplit("}", 1)[-1]
            if kind == "sequenceFlow":
                cond = child.find(f"{{{BPMN_NS}}}conditionExpression")
                graph._edge(Flow(child.get("id") or "", child.get("sourceRef") or "", child.get("targetRef") or "",
                                 (cond.text or "").strip() if cond is not None else None, child.sourceline))
            elif kind == "boundaryEvent" and child.get("attachedToRef"):
                graph._edge(Flow("", child.get("attachedToRef"), child.get("id"), None, child.sourceline))
        return graph

    def _edge(self, flow: Flow) -> None:
        if flow.id:
            self.flows.append(flow)
        self.outgoing.setdefault(flow.source, []).append(flow.target)
        self.incoming.setdefault(flow.target, []).append(flow.source)

    def starts(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "startEvent"]

    def first_waits(self) -> list[Node]:
        """The nodes where a new instance first stops, in document order."""
        seen, waits, todo = set(), [], [n.id for n in self.starts()]
        while todo:
            nid = todo.pop(0)
            if nid in seen or nid not in self.nodes:
                continue
            seen.add(nid)
            node = self.nodes[nid]
            if node.kind in PASS_THROUGH:
                todo += self.outgoing.get(nid, [])
            else:
                waits.append(node)
        return sorted(waits, key=lambda n: n.line)

    def reachable(self) -> list[str]:
        """Node ids reachable from a start event, breadth first (the SOP's natural order)."""
        order, seen, todo = [], set(), [n.id for n in sorted(self.starts(), key=lambda n: n.line)]
        while todo:
            nid = todo.pop(0)
            if nid in seen:
                continue
            seen.add(nid)
            order.append(nid)
            todo += self.outgoing.get(nid, [])
        return order

    def dead_ends(self) -> list[Node]:
        """Reachable nodes from which no end event can be reached (an instance there is stranded)."""
        can_end = {n.id for n in self.nodes.values() if n.kind == "endEvent"}
        todo = list(can_end)
        while todo:
            for pred in self.incoming.get(todo.pop(), []):
                if pred not in can_end:
                    can_end.add(pred)
                    todo.append(pred)
        return [self.nodes[nid] for nid in self.reachable() if nid in self.nodes and nid not in can_end]

    def fields_on_every_path(self, fields_of: dict[str, set[str]]) -> dict[str, set[str]]:
        """node id -> the fields certainly filled when the flow arrives at it: what the user
        tasks on *every* path from the start to it wrote (`fields_of`: node id -> its form's
        fields). A must-analysis solved to its fixed point, so loops are handled."""
        order = self.reachable()
        everything = set().union(*fields_of.values()) if fields_of else set()
        starts = {n.id for n in self.starts()}
        before = {nid: (set() if nid in starts else set(everything)) for nid in order}
        changed = True
        while changed:
            changed = False
            for nid in order:
                if nid in starts:
                    continue
                preds = [p for p in self.incoming.get(nid, []) if p in before]
                new = set(everything)
                for p in preds:
                    new &= before[p] | fields_of.get(p, set())
                if not preds:
                    new = set()
                if new != before[nid]:
                    before[nid], changed = new, True
        return before
