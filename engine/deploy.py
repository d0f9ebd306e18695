"""Deploying a process folder as a new immutable version.

Deploying BPMN is deploying code (its conditions and scripts run as Python), so only a
process owner of the process's office may do it (or the operator at the console).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .accounts import ensure_group, office_by_code
from .bpmn import load_process_folder
from . import access
from .models import ProcessDefinition, ProcessVersion, User
from .serialization import WorkflowStore
from .uow import record_audit


@dataclass(frozen=True)
class Deployed:
    version: ProcessVersion
    created: bool  # False when the same content was already the latest version


def deploy_folder(session: Session, folder: str | Path, store: WorkflowStore, deployed_by: User | None = None,
                  now: datetime | None = None) -> Deployed:
    """Validate `folder` and store it as the next version of its SOP.

    Everything is validated before anything is written; the caller's transaction makes the
    version, the lane groups and the audit record land together or not at all.
    """
    package = load_process_folder(folder)
    office = office_by_code(session, package.office_code)
    access.check_deploy(access.Actor.of_user(deployed_by) if deployed_by is not None else None, office.id)

    definition = session.scalar(select(ProcessDefinition).where(
        ProcessDefinition.office_id == office.id, ProcessDefinition.key == package.key).with_for_update())
    if definition is None:
        definition = ProcessDefinition(office_id=office.id, key=package.key, name=package.name)
        session.add(definition)
        session.flush()
    elif definition.latest_version_id is not None:
        latest = session.get(ProcessVersion, definition.latest_version_id)
        if latest.content_hash == package.content_hash:
            return Deployed(latest, created=False)

    number = (session.scalar(select(func.max(ProcessVersion.version))
                             .where(ProcessVersion.definition_id == definition.id)) or 0) + 1
    version = ProcessVersion(
        definition_id=definition.id, version=number, content_hash=package.content_hash,
        process_id=package.process_id, bpmn_xml=package.bpmn_xml,
        spec=store.spec_to_dict(package.spec, package.subprocess_specs),
        steps=package.steps, forms=package.forms, sop=package.sop,
        deployed_by_id=deployed_by.id if deployed_by else None,
        deployed_at=now or datetime.now(timezone.utc),
    )
    session.add(version)
    session.flush()
    definition.latest_version_id = version.id
    definition.name = package.name
    for lane in {step["lane"] for step in package.steps.values()} | set(package.sop.get("supervisor_lanes", [])):
        ensure_group(session, office, lane)
    session.flush()
    record_audit(session, "process_deployed", office_id=office.id, user_id=version.deployed_by_id,
                 at=version.deployed_at, data={"key": package.key, "version": number, "hash": package.content_hash})
    return Deployed(version, created=True)
