"""Moving one running workflow onto another version's spec, in memory.

SpiffWorkflow 3 does the mechanics (`SpiffWorkflow.bpmn.util.diff`): `SpecDiff` aligns the old
spec's task specs with the new one's (by BPMN id, then by structure), `WorkflowDiff` applies
that to one workflow's tasks, and `migrate_workflow` swaps the spec and resets the READY and
WAITING tasks so what follows them is predicted again from the new version. It leaves the
deciding to its caller; Lajur's rules, checked here, are:

- an open step (a ready user task) whose element is gone from the new version stays where it
  is (`step_removed`), and so does one that is no longer a user task (`not_user_task`);
- every element the instance already passed must still exist: a finished task keeps its spec
  by name, and a record pointing at nothing could not be restored (`passed_removed`);
- after the move the instance has exactly the open steps it had (same tasks, so their claims,
  drafts and ready times carry over) and nothing automatic waiting to run.

Nothing here writes: engine/migration.py runs this for the dry run and again, under the
instance's lock, for the real move. The reset timers get their due times back there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState

TEXTS = {
    "step_removed": "step {step} is open and no longer exists in version {to}",
    "not_user_task": "step {step} is no longer a user task in version {to}",
    "passed_removed": "{element}, already passed, no longer exists in version {to} (its record would be lost)",
    "open_steps_change": "moving would change the open steps ({steps})",
    "automatic": "moving would leave automatic elements to run ({elements})",
    "subprocess_removed": "sub-process {name} no longer exists in version {to}",
    "holder_not_in_lane": "step {step} is held by {holder}, who is not in lane {lane} of version {to}",
    "moved_meanwhile": "the instance is no longer a running instance of version {frm}",
    "failed": "moving failed: {error}",
}


@dataclass(frozen=True)
class Refusal:
    """Why an instance stays on its version: a code (the web words it in the user's language)
    and its facts; `str()` is the English sentence the CLI prints."""

    code: str
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return TEXTS[self.code].format(**self.params)


class Refused(Exception):
    def __init__(self, refusal: Refusal):
        super().__init__(str(refusal))
        self.refusal = refusal


class SpecPair:
    """The old and new specs of a move, compared once for every instance of the old version."""

    def __init__(self, registry, old: tuple, new: tuple, to_version: int):
        (self.old_spec, self.old_subs), (self.new_spec, self.new_subs) = old, new
        self.registry, self.to_version = registry, to_version
        self.top = SpecDiff(registry, self.old_spec, self.new_spec)
        self._subs: dict[str, SpecDiff] = {}

    def sub(self, spec) -> SpecDiff | None:
        if spec.name not in self.new_subs:
            return None
        if spec.name not in self._subs:
            self._subs[spec.name] = SpecDiff(self.registry, spec, self.new_subs[spec.name])
        return self._subs[spec.name]


def _label(task) -> str:
    return task.task_spec.bpmn_id or task.task_spec.name


def _open_steps(workflow) -> dict[str, str]:
    return {str(t.id): t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY, manual=True)}


def move(pair: SpecPair, workflow) -> dict[str, str]:
    """Move `workflow` onto the new spec in place; return its open steps, task guid -> new BPMN id.
    Raises Refused (the workflow is then half moved: drop it)."""
    to = pair.to_version
    diff = WorkflowDiff(workflow, pair.top)
    before = _open_steps(workflow)
    for task in diff.removed:
        if task.has_state(TaskState.READY) and task.task_spec.manual:
            raise Refused(Refusal("step_removed", {"step": _label(task), "to": to}))
    for task in diff.changed:
        if task.has_state(TaskState.READY) and task.task_spec.manual and "typename" in pair.top.changed[task.task_spec]:
            raise Refused(Refusal("not_user_task", {"step": _label(task), "to": to}))
    migrate_workflow(diff, workflow, pair.new_spec)
    for sub_id, sub in list(workflow.subprocesses.items()):
        sub_diff = pair.sub(sub.spec)
        if sub_diff is None:
            raise Refused(Refusal("subprocess_removed", {"name": sub.spec.name, "to": to}))
        migrate_workflow(WorkflowDiff(sub, sub_diff), sub, pair.new_subs[sub.spec.name])
    for task in workflow.get_tasks():
        specs = task.workflow.spec.task_specs
        if specs.get(task.task_spec.name) is not task.task_spec:
            raise Refused(Refusal("passed_removed", {"element": _label(task), "to": to}))
    after = _open_steps(workflow)
    if set(after) != set(before):
        changed = sorted(set(before.values()) ^ set(after.values())) or sorted(after.values())
        raise Refused(Refusal("open_steps_change", {"steps": ", ".join(changed)}))
    automatic = [_label(t) for t in workflow.get_tasks(state=TaskState.READY, manual=False)]
    if automatic:
        raise Refused(Refusal("automatic", {"elements": ", ".join(sorted(automatic))}))
    return after
