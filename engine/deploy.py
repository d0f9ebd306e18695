"""Deploying a process folder as a new immutable version.

Deploying BPMN is deploying code, so only a process owner of the process's office may do
it (or the operator at the console). Everything is checked before anything is written: the
folder (engine/bpmn.py), then what needs the office: every lane and supervisor lane names an
existing group of it (or, with `create_groups`, the missing groups are created). The caller's
transaction makes the version, any new groups and the audit record land together or not at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .accounts import ensure_group, office_by_code
from .bpmn import ProcessPackage, load_process_folder
from . import access, registers
from .config import DeployLimits
from .errors import DeployError
from .models import Group, Office, ProcessDefinition, ProcessVersion, User
from .serialization import WorkflowStore
from .uow import record_audit


@dataclass(frozen=True)
class Deployed:
    version: ProcessVersion
    created: bool  # False when the same content was already the latest version
    created_groups: tuple[str, ...] = ()


def check_lanes(session: Session, office: Office, package: ProcessPackage) -> list[str]:
    """The lane and supervisor-lane names that are not groups of the office (in the BPMN's order)."""
    groups = set(session.scalars(select(Group.name).where(Group.office_id == office.id)))
    return [lane for lane in dict.fromkeys(package.lanes + package.supervisor_lanes) if lane not in groups]


def _refuse_missing_groups(session: Session, office: Office, package: ProcessPackage, missing: list[str]) -> None:
    groups = sorted(session.scalars(select(Group.name).where(Group.office_id == office.id)))
    lane = missing[0]
    step = next((tid for tid, s in package.steps.items() if s["lane"] == lane), None)
    line = next((no for no, text in enumerate(package.bpmn_xml.splitlines(), 1)
                 if f'name="{lane}"' in text and "lane" in text), "")
    where = ("a lane" if step else "a supervisor lane in sop.json")
    raise DeployError(f"{where} names group {lane!r}, which office {office.code!r} does not have "
                      f"(its groups: {', '.join(groups) or 'none'}); create it first "
                      f"(lajur group create {office.code} \"{lane}\") or deploy with --create-groups",
                      file=package.bpmn_file, element_id=step or "", line=line)


def _check_registers(session: Session, office: Office, package: ProcessPackage) -> None:
    """Every register a step takes a number from is one the office keeps (engine/registers.py)."""
    have = registers.codes_of(session, office.id)
    for tid, step in package.steps.items():
        code = (step.get("register") or {}).get("code")
        if code and code not in have:
            raise DeployError(f"step {tid!r} takes a number from register {code!r}, which office {office.code!r} "
                              f"does not keep (its registers: {', '.join(sorted(have)) or 'none'}); define it first "
                              f"(lajur register set {office.code} {code} --name ... --template ...)",
                              file=f"{package.key}/process.bpmn", element_id=tid)


def deploy_folder(session: Session, folder: str | Path, store: WorkflowStore, deployed_by: User | None = None,
                  now: datetime | None = None, limits: DeployLimits | None = None,
                  create_groups: bool = False) -> Deployed:
    """Validate `folder` and store it as the next version of its SOP."""
    package = load_process_folder(folder, limits)
    office = office_by_code(session, package.office_code)
    access.check_deploy(access.Actor.of_user(deployed_by) if deployed_by is not None else None, office.id)
    missing = check_lanes(session, office, package)
    if missing and not create_groups:
        _refuse_missing_groups(session, office, package, missing)
    for lane in missing:
        ensure_group(session, office, lane)
    _check_registers(session, office, package)

    definition = session.scalar(select(ProcessDefinition).where(
        ProcessDefinition.office_id == office.id, ProcessDefinition.key == package.key).with_for_update())
    if definition is None:
        definition = ProcessDefinition(office_id=office.id, key=package.key, name=package.name)
        session.add(definition)
        session.flush()
    elif definition.latest_version_id is not None:
        latest = session.get(ProcessVersion, definition.latest_version_id)
        if latest.content_hash == package.content_hash:
            return Deployed(latest, created=False, created_groups=tuple(missing))

    number = (session.scalar(select(func.max(ProcessVersion.version))
                             .where(ProcessVersion.definition_id == definition.id)) or 0) + 1
    version = ProcessVersion(
        definition_id=definition.id, version=number, content_hash=package.content_hash,
        process_id=package.process_id, bpmn_xml=package.bpmn_xml,
        spec=store.spec_to_dict(package.spec, package.subprocess_specs),
        steps=package.steps, forms=package.forms, sop=package.sop, facts=package.facts,
        deployed_by_id=deployed_by.id if deployed_by else None,
        deployed_at=now or datetime.now(timezone.utc),
    )
    session.add(version)
    session.flush()
    definition.latest_version_id = version.id
    definition.name = package.name
    session.flush()
    record_audit(session, "process_deployed", office_id=office.id, user_id=version.deployed_by_id,
                 at=version.deployed_at, data={"key": package.key, "version": number, "hash": package.content_hash,
                                               "created_groups": missing or None})
    return Deployed(version, created=True, created_groups=tuple(missing))
