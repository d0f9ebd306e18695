"""SpiffWorkflow's reading of a BPMN document, for the validator (engine/bpmn.py).

SpiffWorkflow's parser (its BPMN schema check, then the workflow specs) is most of the time
deploy's validator takes, and the studio runs the validator on every save, most of which leave
process.bpmn as it was. Both stages are pure functions of the document's text, so they are
remembered per text in bounded LRUs: the same text gives the same answer without the work, a
changed text is read afresh, and a refusal is never remembered.
"""
from __future__ import annotations

import functools
import re

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR

from .errors import DeployError

_BARE_ISO = re.compile(r"^\s*(R\d*/)?P(?=\d|T\d)[0-9YMWDTHS.,]*\s*$", re.IGNORECASE)


def normalise_timer_expression(expression: str) -> str:
    """Quote a bare ISO-8601 timer (`PT120M`, as bpmn.io and Camunda write it).

    SpiffWorkflow evaluates timer text as an expression, so a bare duration is an unknown
    name; a quoted string or any other expression is left as it is.
    """
    if _BARE_ISO.match(expression or ""):
        return repr(expression.strip())
    return expression


def parse_xml(bpmn_xml: str, file: str):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(bpmn_xml.encode(), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise DeployError(f"XML syntax error: {exc.msg}", file=file, line=exc.lineno) from None


def _element_at_line(root, line) -> str:
    for el in root.iter():
        if isinstance(el.tag, str) and el.sourceline == line and el.get("id"):
            return el.get("id")
    return ""


@functools.lru_cache(maxsize=16)
def spiff_parser(bpmn_xml: str, file: str) -> SpiffBpmnParser:
    """SpiffWorkflow's reading of the document (its BPMN schema check), remembered per document.

    The studio checks the whole folder on every save, and most saves leave process.bpmn as it was
    (a form, the SOP card). A pure function of the text (the parser is only read afterwards:
    `spiff_specs` builds specs from it), so remembering it changes no answer; a refusal is not
    remembered (lru_cache keeps no exception). Bounded: 16 documents of at most max_bytes."""
    root = parse_xml(bpmn_xml, file)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(root, filename=file)
    except ValidationException as exc:
        line = exc.line_number or ""
        raise DeployError(str(exc.args[0] if exc.args else exc).splitlines()[0], file=file,
                          element_id=exc.id or _element_at_line(root, line), line=line) from None
    return parser


BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"


class Meaning:
    """A BPMN document compared by what SpiffWorkflow's specs are made of, not by its layout.

    SpiffWorkflow 3.2 reads the diagram (BPMNDI) for one thing only: a node with several
    outgoing flows gets its children sorted by their shapes' y coordinate
    (`TaskParser.parse_node`). So two documents whose process parts are the same text and whose
    multi-outgoing nodes order their flows the same give the same specs: dragging a shape in the
    studio does not need SpiffWorkflow's parse again. The key is exact, not a heuristic:
    tests/test_bpmnspec.py serialises the specs of a re-laid-out document and of a fresh parse
    and compares them, and fails if a SpiffWorkflow upgrade starts to read more of the diagram.
    """

    __slots__ = ("text", "key")

    def __init__(self, text: str, root=None):
        """`root`: the document already parsed from `text` (read, not changed), if the caller has it."""
        self.text = text
        try:
            self.key = _layout_free(parse_xml(text, "") if root is None else root)
        except (DeployError, ValueError):  # unreadable XML or a non-number y: not shared, its text is its key
            self.key = text

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Meaning) and self.key == other.key


def _layout_free(root) -> tuple:
    y = {}
    for shape in root.iter(f"{{{DI_NS}}}BPMNShape"):  # as BpmnParser._add_processes reads them: the last wins
        bounds = next(shape.iter(f"{{{DC_NS}}}Bounds"), None)
        if shape.get("bpmnElement") is not None and bounds is not None:
            y[shape.get("bpmnElement")] = float(bounds.get("y", 0))
    outgoing: dict[str, list] = {}
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow)
    order = tuple((source, tuple(f.get("id") for f in sorted(flows, key=lambda f: y.get(f.get("targetRef"), 0.0))))
                  for source, flows in outgoing.items() if len(flows) > 1)
    diagram = f"{{{DI_NS}}}BPMNDiagram"
    process_part = b"".join(etree.tostring(child) for child in root if child.tag != diagram)
    return tuple(sorted(root.attrib.items())), process_part, order


def spiff_specs(bpmn_xml: str, file: str, process_id: str, root=None) -> tuple:
    """The workflow spec and subprocess specs of a process (timers normalised), remembered per
    document meaning (`Meaning`: a moved shape reuses them; building them is most of the
    validator's time). The document's own parse (`spiff_parser`, with its schema check) always runs
    first. Specs are read, never changed, after this: deploy serialises them and workflows are
    made from them."""
    spiff_parser(bpmn_xml, file)
    return _specs(Meaning(bpmn_xml, root), file, process_id)


@functools.lru_cache(maxsize=16)
def _specs(meaning: Meaning, file: str, process_id: str) -> tuple:
    parser = spiff_parser(meaning.text, file)
    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except (ValidationException, SpiffWorkflowException) as exc:
        raise DeployError(str(exc).splitlines()[0], file=file, element_id=getattr(exc, "id", "") or "",
                          line=getattr(exc, "line_number", "") or "") from None
    for s in [spec, *subprocess_specs.values()]:
        for task_spec in s.task_specs.values():
            ev = getattr(task_spec, "event_definition", None)
            if isinstance(ev, TimerEventDefinition):
                ev.expression = normalise_timer_expression(ev.expression)
    return spec, subprocess_specs
