"""Reading and validating a process folder before it may be deployed.

A process folder holds `process.bpmn`, `sop.json` and the JSON Schema forms its user
tasks name. Everything that can be known without the database is checked here, before
anything is stored; what needs the office (its groups) is checked in deploy.py. Every
refusal says which file, which element and which line, in a sentence a process owner
understands. The rules are listed in the README ("How a process folder is written").
"""
from __future__ import annotations

import functools
import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree

from .bpmnspec import BPMN_NS, normalise_timer_expression, parse_xml as _parse_xml, spiff_parser, spiff_specs
from .calendar import parse_iso_minutes
from .config import DeployLimits
from .errors import DeployError, DeployProblems
from . import classification
from .expressions import ExpressionError, check
from .flowgraph import FlowGraph
from .reminders import parse_policy
from . import requirements
from .sopcard import check_card, check_steps_match, office_code

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
BPMN_FILE = "process.bpmn"
SOP_FILE = "sop.json"
MAX_FORM_BYTES = 256 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)

# Elements Lajur cannot run: an instance reaching one would wait forever or fail.
UNSUPPORTED = {
    "serviceTask": "service tasks are not supported (Lajur calls no outside services from a process)",
    "businessRuleTask": "business rule (DMN) tasks are not supported",
    "callActivity": "call activities are not supported: put the steps in this process",
    "receiveTask": "receive tasks wait for a message Lajur never sends; use a user task",
}
# Process variables the engine itself writes (documented in the README).
ENGINE_VARIABLES = ("paraf_<step id>", "nomor_<register> (a step with a register property)")
# Step properties that name where a register takes a number (engine/registers.py).
REGISTER_PROPERTIES = {"registerField": "field", "registerTitle": "title", "registerKind": "kind",
                       "registerDate": "date", "registerLocation": "location",
                       "registerClassification": "classification"}
# Step properties that record where an item was published (engine/published.py).
PUBLISHED_PROPERTIES = {"publishedUrl": "url", "publishedTitle": "title", "socialLinks": "social"}
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


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
    facts: dict
    spec: object
    subprocess_specs: dict = field(default_factory=dict)
    supervisor_lanes: list[str] = field(default_factory=list)
    bpmn_file: str = BPMN_FILE

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(self.bpmn_xml.encode())
        h.update(json.dumps([self.sop, self.forms], sort_keys=True).encode())
        return h.hexdigest()

    @property
    def lanes(self) -> list[str]:
        return self.facts["lanes"]


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


def _properties(node) -> dict[str, str]:
    return {p.get("name"): p.get("value", "")
            for p in node.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}


class FolderFiles:
    """A process folder on disk, as `lajur deploy` reads it: a name that leads out of the folder
    (`..`, a symlink) is no file of it."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.name = self.folder.name
        self._real = self.folder.resolve()

    def _path(self, name: str) -> Path | None:
        path = (self._real / name).resolve()
        return path if self._real in path.parents and path.is_file() else None

    def size(self, name: str) -> int | None:
        """The file's size in bytes; None if the folder has no such file."""
        path = self._path(name)
        return None if path is None else path.stat().st_size

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()


class DraftFiles:
    """A process folder held in memory (a studio draft: file name -> text), read as `FolderFiles`
    reads one on disk, so the studio checks with deploy's rules without writing files."""

    def __init__(self, name: str, files: dict[str, str]):
        self.name, self._files = name, files

    def _key(self, name: str) -> str | None:
        key = posixpath.normpath(name)
        return key if key in self._files and not key.startswith(("/", "../")) else None

    def size(self, name: str) -> int | None:
        key = self._key(name)
        return None if key is None else len(self.read(key))

    def read(self, name: str) -> bytes:
        return self._files[self._key(name)].encode("utf-8", "surrogatepass")


def load_process_folder(folder: str | Path, limits: DeployLimits | None = None) -> ProcessPackage:
    """Read and validate everything in `folder` (see `load_process`)."""
    return load_process(FolderFiles(folder), limits)


def load_process(files: FolderFiles | DraftFiles, limits: DeployLimits | None = None) -> ProcessPackage:
    """Read and validate a process folder's files.

    A file that cannot be read at all (missing, too big, not JSON, not XML) stops the check at
    once; otherwise every independent problem is collected and raised together as DeployProblems
    (which reads as the first: deploy refuses in one line, the studio marks them all)."""
    limits = limits or DeployLimits()
    rel = lambda name: f"{files.name}/{name}"  # noqa: E731
    sizes = {name: files.size(name) for name in (BPMN_FILE, SOP_FILE)}
    if sizes[BPMN_FILE] is None:
        raise DeployError("the folder has no process.bpmn", file=rel(BPMN_FILE))
    if sizes[SOP_FILE] is None:
        raise DeployError("the folder has no sop.json (the SOP card)", file=rel(SOP_FILE))
    for name, size in sizes.items():
        if size > limits.max_bytes:
            raise DeployError(f"the file is {size:,} bytes; at most {limits.max_bytes:,} are accepted", file=rel(name))
    sop_text = files.read(SOP_FILE).decode("utf-8", errors="replace")
    try:
        sop = json.loads(sop_text)
    except json.JSONDecodeError as exc:
        raise DeployError(f"invalid JSON: {exc.msg}", file=rel(SOP_FILE), line=exc.lineno) from None
    card_problems = []
    try:
        check_card(sop, sop_text, rel(SOP_FILE))
    except DeployError as exc:
        if not isinstance(sop, dict):  # nothing else can be read from a card that is not an object
            raise
        card_problems.append(exc)
    try:
        return _read_bpmn(files, sop, sop_text, limits, card_problems)
    except DeployProblems:
        raise
    except DeployError as exc:  # the BPMN cannot be read: still name the card's problems first
        if card_problems:
            raise DeployProblems(card_problems + [exc]) from None
        raise


def _read_bpmn(files, sop, sop_text, limits, card_problems) -> ProcessPackage:
    file = f"{files.name}/{BPMN_FILE}"
    raw = files.read(BPMN_FILE)
    match = _DOCTYPE.search(raw)
    if match:
        raise DeployError("a DOCTYPE is not allowed in a BPMN file (remove the <!DOCTYPE ...> line)",
                          file=file, line=raw[:match.start()].count(b"\n") + 1)
    try:
        bpmn_xml = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeployError("the file is not UTF-8 text", file=file,
                          line=raw[:exc.start].count(b"\n") + 1) from None
    return validate_package(files, bpmn_xml, sop, file, limits, sop_text, card_problems)


def _executable_process(root, sop: dict, file: str):
    """The process to run: sop.json's process_id, else the one executable process."""
    processes = root.findall("bpmn:process", NS)
    runnable = [p for p in processes if p.get("isExecutable", "true").lower() != "false"]
    wanted = sop.get("process_id")
    if wanted:
        process = next((p for p in processes if p.get("id") == wanted), None)
        if process is None:
            raise DeployError(f"sop.json names process_id {wanted!r}, but the BPMN has no process with that id "
                              f"(it has: {', '.join(p.get('id') or '?' for p in processes) or 'none'})",
                              file=file, line=root.sourceline)
        if process not in runnable:
            raise DeployError("the process is marked isExecutable=\"false\"; mark it executable in the modeler",
                              file=file, element_id=wanted, line=process.sourceline)
        return process
    if len(runnable) == 1:
        return runnable[0]
    if not runnable:
        first = processes[0] if processes else root
        raise DeployError("the file has no executable process (isExecutable=\"false\" or no process at all); "
                          "mark the process executable in the modeler", file=file,
                          element_id=first.get("id") or "", line=first.sourceline)
    raise DeployError(f"the file has {len(runnable)} executable processes; name the one to run with "
                      "\"process_id\" in sop.json", file=file, element_id=runnable[1].get("id") or "",
                      line=runnable[1].sourceline)


def _load_form(files, form_file: str, fail) -> dict:
    """A step's form schema, a file of the process folder."""
    size = files.size(form_file)
    if size is None:
        raise fail(f"form file {form_file!r} not found in the process folder")
    where = f"{files.name}/{form_file}"
    if size > MAX_FORM_BYTES:
        raise DeployError(f"a form schema may have at most {MAX_FORM_BYTES:,} bytes", file=where)
    try:
        text = files.read(form_file).decode("utf-8")
        schema = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeployError(f"invalid JSON: {getattr(exc, 'msg', 'not UTF-8')}", file=where,
                          line=getattr(exc, "lineno", "")) from None
    problem = _schema_problem(text)
    if problem:
        raise DeployError(f"invalid JSON Schema: {problem}", file=where) from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise DeployError("a step's form must be a JSON Schema of \"type\": \"object\"", file=where)
    return schema


@functools.lru_cache(maxsize=512)
def _schema_problem(text: str) -> str | None:
    """The metaschema check of a form (its JSON text, already parsed once by the caller),
    remembered: checking the 2020-12 metaschema costs ~17 ms a form, and the studio checks the
    whole folder on every save while most forms are unchanged. A pure function of the text, so
    remembering it changes no answer; bounded (512 forms, each at most MAX_FORM_BYTES)."""
    try:
        Draft202012Validator.check_schema(json.loads(text))
    except SchemaError as exc:
        return exc.message
    return None


def form_fields(schema: dict) -> set[str]:
    """The top-level field names a form can fill (also those of its if/then/allOf parts)."""
    names = set(schema.get("properties", {}))
    for part in ("then", "else"):
        names |= set(schema.get(part, {}).get("properties", {}))
    for sub in schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", []):
        names |= set(sub.get("properties", {}))
    return names


def _user_task(node, files, file, lanes, boundaries, forms, limits) -> dict:
    """Check one user task (lane, form, its Mutu Baku timer); return its step metadata."""
    tid, line = node.get("id"), node.sourceline
    fail = lambda msg, _id=tid, _line=line: DeployError(msg, file=file, element_id=_id, line=_line)  # noqa: E731
    if tid not in lanes:
        raise fail("the user task is in no lane, so nobody could work it: put it in the lane of its actor")
    props = _properties(node)
    form_file = props.get("formJsonSchemaFilename")
    if not form_file:
        raise fail("the user task names no form (spiffworkflow property formJsonSchemaFilename)")
    if form_file not in forms:
        forms[form_file] = _load_form(files, form_file, fail)
    timers = [b for b in boundaries.get(tid, []) if b.find("bpmn:timerEventDefinition", NS) is not None]
    if len(timers) != 1:
        raise fail(f"the user task needs exactly one timer boundary event (its Mutu Baku); it has {len(timers)}")
    timer = timers[0]
    tfail = lambda msg, _line=timer.sourceline: DeployError(  # noqa: E731
        msg, file=file, element_id=timer.get("id"), line=_line)
    if timer.get("cancelActivity", "true") != "false":
        raise tfail("the Mutu Baku timer must be non-interrupting (cancelActivity=\"false\"): "
                    "a late step is still done by its actor")
    duration = timer.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
    if duration is None or not (duration.text or "").strip():
        raise tfail("the Mutu Baku timer needs a duration (timeDuration, e.g. PT120M)")
    text = duration.text.strip()
    try:
        minutes = parse_iso_minutes(text)
    except ValueError as exc:
        raise DeployError(f"timer duration {text!r}: {exc}", file=file, element_id=timer.get("id"),
                          line=duration.sourceline) from None
    if minutes < 1:
        raise DeployError(f"the Mutu Baku {text!r} is under 1 minute: the step would be late at once",
                          file=file, element_id=timer.get("id"), line=duration.sourceline)
    if minutes > limits.max_mutu_baku_minutes:
        raise DeployError(f"the Mutu Baku {text!r} is longer than the ceiling of "
                          f"{limits.max_mutu_baku_minutes / 450:g} working days", file=file,
                          element_id=timer.get("id"), line=duration.sourceline)
    try:
        policy = parse_policy(props.get("reminders"))
    except ValueError as exc:
        raise fail(f"reminders property: {exc}") from None
    step = {"name": node.get("name") or tid, "lane": lanes[tid], "form": form_file, "mutu_baku_minutes": minutes,
            "timer_id": timer.get("id"), "paraf": props.get("paraf", "").lower() == "true", "reminders": policy}
    register = _register_property(props, forms[form_file], fail)
    if register is not None:
        step["register"] = register
    published = {}
    for prop, key in PUBLISHED_PROPERTIES.items():
        value = props.get(prop, "").strip()
        if value and not _FIELD_NAME.match(value):
            raise fail(f"property {prop}: {value!r} is not a field name")
        if value:
            published[key] = value
    if published:
        if "url" not in published and "social" not in published:
            raise fail("property publishedTitle needs publishedUrl (the field with the website URL)")
        step["published"] = published
    return step


def _register_property(props: dict, form: dict, fail) -> dict | None:
    """A step's `register` property: the register (of the office, checked at deploy) whose next
    number the step takes, written into the field `nomor_<register>` (or `registerField`);
    the other register* properties name the fields its entry is described from."""
    code = props.get("register", "").strip()
    extra = sorted(k for k in props if k in REGISTER_PROPERTIES)
    if not code:
        if extra:
            raise fail(f"property {extra[0]} needs the property register (which register takes a number)")
        return None
    if not re.match(r"^[a-z][a-z0-9-]{0,31}$", code):
        raise fail(f"register {code!r}: a register code is lowercase letters, digits or -")
    spec = {"code": code, "field": "nomor_" + code.replace("-", "_")}
    for prop, key in REGISTER_PROPERTIES.items():
        value = props.get(prop, "").strip()
        if value:
            if not _FIELD_NAME.match(value):
                raise fail(f"property {prop}: {value!r} is not a field name")
            spec[key] = value
    if spec["field"] in form_fields(form):
        raise fail(f"the form has the field {spec['field']!r}, which the register {code!r} fills: "
                   "remove it from the form (the number is issued, not typed)")
    return spec


def _check_expressions(process, graph: FlowGraph, fields_of: dict | None, file: str, report) -> None:
    """Every condition and timer in the restricted language; every name a condition reads is a
    field filled on every path before its gateway, or an engine variable. `fields_of` (step id ->
    the fields it fills) is None when a step's fields are unknown (its form could not be read): then
    names are not checked, so a broken step is not also reported as a missing field elsewhere."""
    before = graph.fields_on_every_path(fields_of) if fields_of is not None else None
    for flow in graph.flows:
        if flow.condition is None:
            continue
        cond_el = process.find(f"bpmn:sequenceFlow[@id='{flow.id}']/bpmn:conditionExpression", NS)
        line = cond_el.sourceline if cond_el is not None else flow.line
        try:
            names = check(flow.condition)
        except ExpressionError as exc:
            report(DeployError(f"condition {flow.condition!r}: {exc}", file=file, element_id=flow.id,
                               line=line + exc.line - 1))
            continue
        if before is None:
            continue
        known = before.get(flow.source, set())
        for name in sorted(names - known)[:1]:  # one problem per flow
            anywhere = any(name in f for f in fields_of.values())
            why = ("is not filled on every path before the gateway" if anywhere
                   else "is not a field of any form of this process")
            report(DeployError(f"condition {flow.condition!r}: {name!r} {why}; the instance would stop at "
                               f"{flow.source!r}", file=file, element_id=flow.id, line=line))
    # timers, and the other places BPMN holds an expression (multi-instance, message payloads)
    others = [(f"{{{BPMN_NS}}}{k}", 2) for k in ("timeDuration", "timeDate", "timeCycle")]
    others += [(f"{{{BPMN_NS}}}{k}", 2) for k in ("loopCardinality", "completionCondition")]
    others += [(f"{{{SPIFF_NS}}}messagePayload", 3)]
    for tag, up in others:
        for el in process.iter(tag):
            owner = el
            for _ in range(up):
                owner = owner.getparent() if owner.getparent() is not None else owner
            text = (el.text or "").strip()
            try:
                check(normalise_timer_expression(text))
            except ExpressionError as exc:
                kind = tag.rsplit("}", 1)[-1]
                report(DeployError(f"{kind} {text!r}: {exc}", file=file, element_id=owner.get("id") or "",
                                   line=el.sourceline + exc.line - 1))


def _check_scripts(process, file: str, limits: DeployLimits, report) -> None:
    scripts = [(s.getparent(), s) for s in process.iter(f"{{{BPMN_NS}}}script")]
    scripts += [(s.getparent().getparent(), s) for tag in ("preScript", "postScript")
                for s in process.iter(f"{{{SPIFF_NS}}}{tag}")]
    for task, script in scripts:
        if not limits.allow_scripts:
            report(DeployError("scripts are code and are disabled on this installation (the system administrator "
                              "may enable them: LAJUR_ALLOW_SCRIPTS=1); use a condition or a form field instead",
                               file=file, element_id=task.get("id") or "", line=script.sourceline))
            continue
        try:
            compile(script.text or "", "script", "exec")
        except SyntaxError as exc:
            report(DeployError(f"script is not valid Python: {exc.msg}", file=file, element_id=task.get("id") or "",
                               line=script.sourceline + (exc.lineno or 1) - 1))


def version_facts(graph: FlowGraph, steps: dict) -> dict:
    """What the start page and the permission check need, derived once at deploy."""
    reachable = graph.reachable()
    order = [nid for nid in reachable if nid in steps] + [t for t in steps if t not in reachable]
    return {
        "start_lanes": sorted({n.lane for n in graph.first_waits() if n.lane}),
        "steps": order,
        "lanes": list(dict.fromkeys(steps[t]["lane"] for t in order)),
        "total_mutu_baku_minutes": sum(steps[t]["mutu_baku_minutes"] for t in order),
    }


def graph_of(bpmn_xml: str, process_id: str) -> FlowGraph:
    """The flow graph of a validated or stored BPMN document's process."""
    root = etree.fromstring(bpmn_xml.encode(), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    return FlowGraph.of(root.find(f"bpmn:process[@id='{process_id}']", NS))


def facts_from_xml(bpmn_xml: str, process_id: str, steps: dict) -> dict:
    """The facts of a stored version, read statically from its BPMN (versions from before 0008)."""
    return version_facts(graph_of(bpmn_xml, process_id), steps)


def _fill_fields(fields_of: dict, tid: str, step: dict | None, props: dict, forms: dict) -> dict | None:
    """Add the fields step `tid` fills (its form, its paraf, its register number); None when they
    cannot be known because the step's form could not be read."""
    if step is not None:
        fields_of[tid] = (form_fields(forms[step["form"]]) | ({f"paraf_{tid}"} if step["paraf"] else set())
                          | ({step["register"]["field"]} if step.get("register") else set()))
        return fields_of
    form = forms.get(props.get("formJsonSchemaFilename") or "")
    if form is None:
        return None
    code = props.get("register", "").strip()  # a broken step: assume the most it could fill
    fields_of[tid] = (form_fields(form) | {f"paraf_{tid}"}
                      | ({"nomor_" + code.replace("-", "_"), props.get("registerField", "").strip()} if code else set()))
    return fields_of


def validate_package(files: FolderFiles | DraftFiles, bpmn_xml: str, sop: dict, file: str, limits: DeployLimits | None = None,
                     sop_text: str = "", card_problems: list | None = None) -> ProcessPackage:
    """Check a read folder; raise DeployProblems with every independent problem found.

    XML that cannot be parsed, or a document SpiffWorkflow refuses, or no process to run stops at
    once; the per-element rules (unsupported elements, lanes, each step's form and Mutu Baku,
    the flow, conditions, scripts, sop.json against the steps) each report and go on, in the order
    they always ran, so the first problem is the one deploy has always named."""
    limits = limits or DeployLimits()
    problems: list[DeployError] = list(card_problems or [])
    report = problems.append
    root = _parse_xml(bpmn_xml, file)
    spiff_parser(bpmn_xml, file)
    process = _executable_process(root, sop, file)
    process_id = process.get("id")
    graph = FlowGraph.of(process)

    for kind, why in UNSUPPORTED.items():
        for node in process.iter(f"{{{BPMN_NS}}}{kind}"):
            report(DeployError(why, file=file, element_id=node.get("id") or "", line=node.sourceline))
    lanes = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        name = (lane.get("name") or "").strip()
        if not name:  # its steps still count as in a lane: one problem, on the lane
            report(DeployError("the lane has no name; name it after the office group that works it", file=file,
                               element_id=lane.get("id") or "", line=lane.sourceline))
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            if ref.text:
                lanes[ref.text.strip()] = name
    boundaries: dict[str, list] = {}
    for b in process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        boundaries.setdefault(b.get("attachedToRef"), []).append(b)
    forms: dict[str, dict] = {}
    steps: dict[str, dict] = {}
    fields_of: dict | None = {}
    task_ids = []
    for node in process.iter(f"{{{BPMN_NS}}}userTask"):
        tid = node.get("id")
        task_ids.append(tid)
        try:
            steps[tid] = _user_task(node, files, file, lanes, boundaries, forms, limits)
        except DeployError as exc:
            report(exc)
        if fields_of is not None:
            fields_of = _fill_fields(fields_of, tid, steps.get(tid), _properties(node), forms)
    if not task_ids:
        report(DeployError("the process has no user task: an SOP needs at least one step", file=file,
                           element_id=process_id, line=process.sourceline))

    if not graph.starts():
        report(DeployError("the process has no start event", file=file, element_id=process_id,
                           line=process.sourceline))
    else:
        for node in graph.first_waits():
            if node.kind != "userTask":
                report(DeployError(f"the process must begin with a user task in a lane, but its first step is a "
                                   f"{node.kind} that no one can start", file=file, element_id=node.id,
                                   line=node.line))
        if not graph.first_waits():
            report(DeployError("no user task follows the start event: nobody could start this SOP", file=file,
                               element_id=graph.starts()[0].id, line=graph.starts()[0].line))
    for node in graph.dead_ends():
        report(DeployError("no path from here reaches an end event: an instance arriving here would be stuck",
                           file=file, element_id=node.id, line=node.line))

    if sop.get("classification") and classification.find(sop["classification"]) is None:
        report(DeployError(f"classification {sop['classification']!r} is not a code of the archive classification "
                           "list (engine/data/klasifikasi_arsip.json, Permendagri 83/2022)",
                           file=f"{files.name}/{SOP_FILE}"))
    for step in steps.values():  # the SOP's default classification code, for a register that needs one
        if step.get("register") and sop.get("classification"):
            step["register"]["default_classification"] = sop["classification"]
    _check_expressions(process, graph, fields_of, file, report)
    _check_scripts(process, file, limits, report)
    if not card_problems:  # a card that does not match its schema says nothing reliable about steps
        for check_sop in (lambda: check_steps_match(sop, task_ids, sop_text, f"{files.name}/{SOP_FILE}"),
                          lambda: requirements.check_no_repeats(sop, steps, forms, f"{files.name}/{SOP_FILE}")):
            try:
                check_sop()
            except DeployError as exc:
                report(exc)
    if problems:
        raise DeployProblems(problems)

    spec, subprocess_specs = spiff_specs(bpmn_xml, file, process_id, root)

    entry = entry_step(spec, steps)
    if entry is not None:  # the step a TIDAK loop returns to; the dashboard counts its repeats as rework
        steps[entry]["entry"] = True

    facts = version_facts(graph, steps)
    for no, tid in enumerate(facts["steps"], 1):
        steps[tid]["no"] = no
    return ProcessPackage(
        key=sop["key"], process_id=process_id, name=sop.get("name") or process.get("name") or process_id,
        office_code=office_code(sop), bpmn_xml=bpmn_xml, sop=sop, forms=forms, steps=steps, facts=facts,
        spec=spec, subprocess_specs=subprocess_specs, supervisor_lanes=list(sop.get("supervisor_lanes", [])),
        bpmn_file=file,
    )
