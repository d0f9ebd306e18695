"""A test run before publishing (`lajur deploy --check`): every path of a process, in memory.

The validated process runs in SpiffWorkflow with the same restricted script engine as
production, nothing stored. Each step gets form data generated from its JSON Schema
(checked against that schema, as a real completion is); enum and boolean answers rotate
between runs, so every gateway branch is taken at least once when the forms allow it.
Reported: a form the generator cannot satisfy, a condition or timer that fails, a path that
does not reach an end, a branch never taken.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import rstr
from jsonschema import Draft202012Validator, FormatChecker
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from .bpmn import ProcessPackage
from .flowgraph import FlowGraph
from .serialization import WorkflowStore

MAX_STEPS_PER_RUN = 200
FORMAT_SAMPLES = {"date": "2026-01-05", "date-time": "2026-01-05T08:00:00+07:00", "email": "warga@example.org",
                  "uri": "https://example.org/berita/1", "time": "08:00:00"}


@dataclass
class CheckReport:
    runs: int = 0
    completed_runs: int = 0
    problems: list[str] = field(default_factory=list)
    branches: dict[str, bool] = field(default_factory=dict)  # gateway flow id -> taken

    @property
    def ok(self) -> bool:
        return not self.problems


class _Answers:
    """Chooses values for one run: enum/boolean answers rotate with the run and the visit."""

    def __init__(self, run: int):
        self.run, self.rng, self.visits = run, random.Random(run), {}

    def pick(self, key: str, options: list):
        n = self.visits.get(key, 0)
        self.visits[key] = n + 1
        return options[(self.run + n) % len(options)]

    def string(self, schema: dict) -> list[str]:
        low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
        out = []
        if schema.get("format") in FORMAT_SAMPLES:
            out.append(FORMAT_SAMPLES[schema["format"]])
        if schema.get("pattern"):
            gen = rstr.Rstr(self.rng)
            for pattern in (_short_repeats(schema["pattern"]), schema["pattern"]):
                try:
                    out += [gen.xeger(pattern) for _ in range(5)]
                except (re.error, ValueError):
                    continue
        out.append(("contoh isian " * (1 + low // 13))[:max(low, min(12, high))])
        return out


def _short_repeats(pattern: str) -> str:
    """The pattern with `*` and `+` bounded to two repeats, so generated text stays within a maxLength."""
    return re.sub(r"(?<!\\)\+", "{1,2}", re.sub(r"(?<!\\)\*", "{0,2}", pattern))


def sample(schema: dict, answers: _Answers, key: str = ""):
    """A value for `schema` (best effort; the caller validates it)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return answers.pick(key, schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = dict(schema.get("properties", {}))
        return {name: sample(sub, answers, f"{key}.{name}") for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        return [sample(items, answers, key) for _ in range(max(1, schema.get("minItems", 1)))][
            :schema.get("maxItems", 10)]
    if kind == "boolean":
        return answers.pick(key, [True, False])
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "string":
        sub_validator = Draft202012Validator(schema, format_checker=FormatChecker())
        candidates = answers.string(schema)
        return next((c for c in candidates if sub_validator.is_valid(c)), candidates[-1])
    return None


def form_data(schema: dict, answers: _Answers, step: str) -> tuple[dict, list[str]]:
    """Data for a step's form, then trimmed to what validates: optional fields that break a
    rule are dropped; what still fails is returned as errors."""
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    data = sample(schema, answers, step) or {}
    required = set(schema.get("required", []))
    for _ in range(len(data) + 1):
        errors = list(validator.iter_errors(data))
        if not errors:
            return data, []
        bad = {e.absolute_path[0] for e in errors if e.absolute_path} - required
        if not bad:
            break
        for name in bad:
            data.pop(name, None)
    then = schema.get("then", {})
    for name in then.get("required", []):  # a conditional requirement: fill it and try again
        data.setdefault(name, sample({**schema.get("properties", {}).get(name, {}),
                                      **then.get("properties", {}).get(name, {})}, answers, name))
    errors = [e.message for e in validator.iter_errors(data)]
    return data, errors


def check_paths(package: ProcessPackage, graph: FlowGraph, store: WorkflowStore, max_runs: int = 24) -> CheckReport:
    gateway_flows = {(f.source, f.target): f.id for f in graph.flows
                     if graph.nodes.get(f.source) and graph.nodes[f.source].kind.endswith("Gateway")
                     and len(graph.outgoing.get(f.source, [])) > 1}
    report = CheckReport(branches={fid: False for fid in gateway_flows.values()})
    for run in range(max_runs):
        report.runs += 1
        problem = _one_run(package, store, _Answers(run), gateway_flows, report)
        if problem and problem not in report.problems:
            report.problems.append(problem)
        if run >= 1 and all(report.branches.values()):
            break
    for fid, taken in report.branches.items():
        if not taken:
            report.problems.append(f"flow {fid!r}: this branch was never taken in {report.runs} runs with "
                                   "generated form data; can any answer lead there?")
    return report


def _one_run(package, store, answers, gateway_flows, report) -> str | None:
    workflow = store.new_workflow(package.spec, package.subprocess_specs)
    where = "the start"
    try:
        workflow.do_engine_steps()
        for _ in range(MAX_STEPS_PER_RUN):
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                break
            task = ready[0]
            tid = task.task_spec.bpmn_id
            where = f"step {tid!r}"
            step = package.steps.get(tid)
            if step is None:
                return f"{where}: a manual task that is not an SOP step; nobody can complete it"
            data, errors = form_data(package.forms[step["form"]], answers, tid)
            if errors:
                return f"{where}: its form cannot be satisfied by any generated data ({errors[0]})"
            if step.get("paraf"):
                data[f"paraf_{tid}"] = {"user": "check", "name": "check", "at": "2026-01-05T08:00:00+07:00"}
            if step.get("register"):  # the number a real completion is issued (engine/registers.py)
                data[step["register"]["field"]] = "001/CHECK/2026"
            task.set_data(**data)
            task.run()
            workflow.do_engine_steps()
        else:
            return f"a run did not end within {MAX_STEPS_PER_RUN} steps (last at {where}): a loop without exit?"
    except (WorkflowException, ValueError, RuntimeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"after {where}: {message}"
    finally:
        for t in workflow.get_tasks(state=TaskState.COMPLETED):
            if t.task_spec.bpmn_id:
                for child in t.children:
                    while child.task_spec.bpmn_id is None and child.children:  # a task's boundary-event split
                        child = child.children[0]
                    fid = gateway_flows.get((t.task_spec.bpmn_id, child.task_spec.bpmn_id))
                    if fid and child.state & (TaskState.COMPLETED | TaskState.READY | TaskState.WAITING
                                              | TaskState.STARTED):
                        report.branches[fid] = True
    if not workflow.is_completed():
        return f"a path does not reach an end: it stops after {where}"
    report.completed_runs += 1
    return None
