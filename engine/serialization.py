"""SpiffWorkflow serialization with the spec kept out of each instance.

SpiffWorkflow embeds the whole process spec in every serialized workflow (more than half
its size). Lajur stores the spec once per deployed version and hands it back on restore,
the way spiff-arena does.
"""
from __future__ import annotations

from uuid import UUID as _uuid

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .expressions import script_engine


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Leaves `spec` and `subprocess_specs` out; `from_dict` takes them as arguments."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        if spec is None:
            raise ValueError("a spec-free workflow needs its spec to be restored")
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class WorkflowStore:
    """Converts specs and spec-free workflow states to and from JSON-ready dicts, and makes
    every workflow with the restricted script engine (engine/expressions.py)."""

    def __init__(self, allow_scripts: bool = False):
        self.script_engine = script_engine(allow_scripts)
        config = dict(SPIFF_CONFIG)
        config[BpmnWorkflow] = SpecFreeWorkflowConverter
        registry = BpmnWorkflowSerializer.configure(config)
        self._serializer = BpmnWorkflowSerializer(registry)
        self.version = self._serializer.VERSION

    @property
    def registry(self):
        """The serializer's converter registry: what SpiffWorkflow's diff helpers compare specs with."""
        return self._serializer.registry

    def spec_to_dict(self, spec, subprocess_specs: dict) -> dict:
        return {
            "spec": self._serializer.to_dict(spec),
            "subprocess_specs": {k: self._serializer.to_dict(v) for k, v in subprocess_specs.items()},
        }

    def spec_from_dict(self, dct: dict):
        return (self._serializer.from_dict(dct["spec"]),
                {k: self._serializer.from_dict(v) for k, v in dct.get("subprocess_specs", {}).items()})

    def new_workflow(self, spec, subprocess_specs) -> BpmnWorkflow:
        return BpmnWorkflow(spec, subprocess_specs, script_engine=self.script_engine)

    def workflow_to_dict(self, workflow) -> dict:
        dct = self._serializer.to_dict(workflow)
        dct[self._serializer.VERSION_KEY] = self.version
        return dct

    def workflow_from_dict(self, dct: dict, spec, subprocess_specs):
        dct = dict(dct)
        dct.pop(self._serializer.VERSION_KEY, None)
        workflow = self._serializer.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
        workflow.script_engine = self.script_engine  # not serialized: re-attached on every restore
        return workflow
