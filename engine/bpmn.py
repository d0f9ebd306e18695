"""Reading and validating a process folder before it may be deployed.

A process folder holds `process.bpmn`, `sop.json` and the JSON Schema forms its user
tasks name. Everything is checked here, before anything is stored: a refused file says
which file, which element and which line.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .calendar import parse_iso_minutes
from .errors import DeployError
from .reminders import parse_policy

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
BPMN_FILE = "process.bpmn"
SOP_FILE = "sop.json"

_BARE_ISO = re.compile(r"^\s*(R\d*/)?P(?=\d|T\d)[0-9YMWDTHS.,]*\s*$", re.IGNORECASE)


@dataclass
class ProcessPackage:
    """A validated process folder, ready to be stored as a version."""

    key: str
    process_id: str
    name: str
    office_code: str
    bpmn_xml: str
    sop: dict
    forms: dict[str, dict]
    steps: dict[str, dict]
    spec: object
    subprocess_specs: dict = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(self.bpmn_xml.encode())
        h.update(json.dumps([self.sop, self.forms], sort_keys=True).encode())
        return h.hexdigest()


def entry_step(spec, steps: dict) -> str | None:
    """The first user task reached from the start event (breadth first), whatever its id."""
    seen, queue = set(), [spec.start]
    while queue:
        task_spec = queue.pop(0)
        if task_spec.name in seen:
            continue
        seen.add(task_spec.name)
        if task_spec.name in steps:
            return task_spec.name
        queue.extend(task_spec.outputs)
    return None


def normalise_timer_expression(expression: str) -> str:
    """Quote a bare ISO-8601 timer (`PT120M`, as bpmn.io and Camunda write it).

    SpiffWorkflow evaluates timer text as Python, so a bare duration is a NameError;
    a quoted string or any other expression is left as it is.
    """
    if _BARE_ISO.match(expression or ""):
        return repr(expression.strip())
    return expression


def _properties(node) -> dict[str, str]:
    return {p.get("name"): p.get("value", "")
            for p in node.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}


def load_process_folder(folder: str | Path) -> ProcessPackage:
    """Read and validate everything in `folder`; raise DeployError at the first problem."""
    folder = Path(folder)
    bpmn_path, sop_path = folder / BPMN_FILE, folder / SOP_FILE
    rel = lambda p: f"{folder.name}/{p.relative_to(folder).as_posix()}"  # noqa: E731
    if not bpmn_path.is_file():
        raise DeployError("missing BPMN file", file=rel(bpmn_path))
    if not sop_path.is_file():
        raise DeployError("missing SOP metadata file", file=rel(sop_path))
    try:
        sop = json.loads(sop_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeployError(f"invalid JSON: {exc.msg}", file=rel(sop_path), line=exc.lineno) from None
    for required in ("key", "office", "name", "steps"):
        if required not in sop:
            raise DeployError(f"missing field {required!r}", file=rel(sop_path))
    bpmn_xml = bpmn_path.read_text(encoding="utf-8")
    return validate_package(folder, bpmn_xml, sop, rel(bpmn_path))


def _parse_xml(bpmn_xml: str, file: str):
    try:
        return etree.fromstring(bpmn_xml.encode(), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise DeployError(f"XML syntax error: {exc.msg}", file=file, line=exc.lineno) from None


def _element_at_line(root, line) -> str:
    for el in root.iter():
        if isinstance(el.tag, str) and el.sourceline == line and el.get("id"):
            return el.get("id")
    return ""


def validate_package(folder: Path, bpmn_xml: str, sop: dict, file: str) -> ProcessPackage:
    root = _parse_xml(bpmn_xml, file)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(root, filename=file)
    except ValidationException as exc:
        line = exc.line_number or ""
        raise DeployError(str(exc.args[0] if exc.args else exc).splitlines()[0], file=file,
                          element_id=exc.id or _element_at_line(root, line), line=line) from None

    executable = root.findall("bpmn:process[@isExecutable='true']", NS)
    process_id = sop.get("process_id") or (executable[0].get("id") if len(executable) == 1 else None)
    process = root.find(f"bpmn:process[@id='{process_id}']", NS) if process_id else None
    if process is None:
        raise DeployError("no executable process (set process_id in sop.json)", file=file)

    steps: dict[str, dict] = {}
    lanes = {ref.text.strip(): lane.get("name") for lane in process.iter(f"{{{BPMN_NS}}}lane")
             for ref in lane.findall("bpmn:flowNodeRef", NS) if ref.text}
    boundaries = {}
    for b in process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        boundaries.setdefault(b.get("attachedToRef"), []).append(b)
    forms: dict[str, dict] = {}

    for node in process.iter(f"{{{BPMN_NS}}}userTask"):
        tid, line = node.get("id"), node.sourceline
        fail = lambda msg, _id=tid, _line=line: DeployError(msg, file=file, element_id=_id, line=_line)  # noqa: E731
        if tid not in lanes:
            raise fail("user task is in no lane: its actor (Pelaksana) is unknown")
        props = _properties(node)
        form_file = props.get("formJsonSchemaFilename")
        if not form_file:
            raise fail("user task has no formJsonSchemaFilename property")
        form_path = (folder / form_file).resolve()
        if folder.resolve() not in form_path.parents or not form_path.is_file():
            raise fail(f"form file {form_file!r} not found in the process folder")
        if form_file not in forms:
            try:
                schema = json.loads(form_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DeployError(f"invalid JSON: {exc.msg}", file=f"{folder.name}/{form_file}",
                                  line=exc.lineno) from None
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise DeployError(f"invalid JSON Schema: {exc.message}", file=f"{folder.name}/{form_file}") from None
            forms[form_file] = schema
        timers = [b for b in boundaries.get(tid, [])
                  if b.find("bpmn:timerEventDefinition", NS) is not None]
        if len(timers) != 1:
            raise fail(f"user task needs exactly one timer boundary event (its Mutu Baku), found {len(timers)}")
        timer = timers[0]
        if timer.get("cancelActivity", "true") != "false":
            raise DeployError("the Mutu Baku timer must be non-interrupting (cancelActivity=\"false\")",
                              file=file, element_id=timer.get("id"), line=timer.sourceline)
        duration = timer.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
        if duration is None or not (duration.text or "").strip():
            raise DeployError("the Mutu Baku timer needs a timeDuration", file=file,
                              element_id=timer.get("id"), line=timer.sourceline)
        try:
            minutes = parse_iso_minutes(duration.text.strip())
        except ValueError as exc:
            raise DeployError(f"timer duration {duration.text.strip()!r}: {exc}", file=file,
                              element_id=timer.get("id"), line=duration.sourceline) from None
        try:
            policy = parse_policy(props.get("reminders"))
        except ValueError as exc:
            raise fail(f"reminders property: {exc}") from None
        sop_step = sop.get("steps", {}).get(tid, {})
        steps[tid] = {
            "name": node.get("name") or tid,
            "lane": lanes[tid],
            "form": form_file,
            "mutu_baku_minutes": minutes,
            "timer_id": timer.get("id"),
            "paraf": props.get("paraf", "").lower() == "true",
            "reminders": policy,
            "no": sop_step.get("no"),
        }

    if not steps:
        raise DeployError("the process has no user task", file=file, element_id=process_id)
    unknown = set(sop.get("steps", {})) - set(steps)
    if unknown:
        raise DeployError(f"sop.json describes steps that are not user tasks: {sorted(unknown)}",
                          file=f"{folder.name}/{SOP_FILE}")

    for kind in ("conditionExpression",):
        for expr in process.iter(f"{{{BPMN_NS}}}{kind}"):
            flow = expr.getparent()
            try:
                compile(expr.text or "", f"{flow.get('id')}", "eval")
            except SyntaxError as exc:
                raise DeployError(f"condition is not a valid Python expression: {exc.msg}", file=file,
                                  element_id=flow.get("id"), line=expr.sourceline) from None
    for script in process.iter(f"{{{BPMN_NS}}}script"):
        task = script.getparent()
        try:
            compile(script.text or "", f"{task.get('id')}", "exec")
        except SyntaxError as exc:
            raise DeployError(f"script is not valid Python: {exc.msg}", file=file,
                              element_id=task.get("id"), line=script.sourceline + (exc.lineno or 1) - 1) from None

    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except (ValidationException, SpiffWorkflowException) as exc:
        raise DeployError(str(exc).splitlines()[0], file=file, element_id=getattr(exc, "id", ""),
                          line=getattr(exc, "line_number", "")) from None
    for s in [spec, *subprocess_specs.values()]:
        for task_spec in s.task_specs.values():
            ev = getattr(task_spec, "event_definition", None)
            if isinstance(ev, TimerEventDefinition):
                ev.expression = normalise_timer_expression(ev.expression)

    entry = entry_step(spec, steps)
    if entry is not None:  # the step a TIDAK loop returns to; the dashboard counts its repeats as rework
        steps[entry]["entry"] = True

    return ProcessPackage(
        key=sop["key"], process_id=process_id, name=sop.get("name") or process.get("name") or process_id,
        office_code=sop["office"]["code"] if isinstance(sop["office"], dict) else sop["office"],
        bpmn_xml=bpmn_xml, sop=sop, forms=forms, steps=steps, spec=spec, subprocess_specs=subprocess_specs,
    )
