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


@functools.lru_cache(maxsize=16)
def spiff_specs(bpmn_xml: str, file: str, process_id: str) -> tuple:
    """The workflow spec and subprocess specs of a process (timers normalised), remembered per
    document like `spiff_parser` (building them is most of the validator's time). Specs are read,
    never changed, after this: deploy serialises them and workflows are made from them."""
    parser = spiff_parser(bpmn_xml, file)
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
