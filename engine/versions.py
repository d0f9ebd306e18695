"""The deployed versions of an SOP: who deployed each, when, its instances, and what changed.

`diff` compares two versions by what a process owner sees: steps, lanes, Mutu Baku timers,
gateway conditions and form fields, each added, removed or changed.
"""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .accounts import office_by_code
from .bpmn import BPMN_NS, NS
from .errors import NotFound
from .models import AuditEvent, ProcessDefinition, ProcessInstance, ProcessVersion, User


@dataclass(frozen=True)
class VersionRow:
    version: int
    deployed_at: object
    deployed_by: str | None
    content_hash: str
    latest: bool
    counts: dict[str, int]  # instance status -> count
    note: str | None = None  # the change note it was published with (the studio's `process_published` audit row)

    @property
    def running(self) -> int:
        return self.counts.get("running", 0)

    @property
    def done(self) -> int:
        return self.counts.get("completed", 0)

    @property
    def incident(self) -> int:
        """Instances stopped by a run-time error (status `incident`)."""
        return self.counts.get("incident", 0)


def definition(session: Session, office_code: str, key: str) -> ProcessDefinition:
    office = office_by_code(session, office_code)
    found = session.scalar(select(ProcessDefinition).where(ProcessDefinition.office_id == office.id,
                                                           ProcessDefinition.key == key))
    if found is None:
        raise NotFound(f"office {office_code!r} has no SOP {key!r}")
    return found


def list_versions(session: Session, office_code: str, key: str) -> list[VersionRow]:
    d = definition(session, office_code, key)
    counts: dict[int, dict[str, int]] = {}
    for vid, status, n in session.execute(
            select(ProcessInstance.version_id, ProcessInstance.status, func.count())
            .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
            .where(ProcessVersion.definition_id == d.id).group_by(ProcessInstance.version_id, ProcessInstance.status)):
        counts.setdefault(vid, {})[status] = n
    rows = session.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.deployed_at,
                                  User.username, ProcessVersion.content_hash)
                           .outerjoin(User, User.id == ProcessVersion.deployed_by_id)
                           .where(ProcessVersion.definition_id == d.id).order_by(ProcessVersion.version))
    notes = change_notes(session, d)
    return [VersionRow(v, at, by, h, vid == d.latest_version_id, counts.get(vid, {}), notes.get(v))
            for vid, v, at, by, h in rows]


def change_notes(session: Session, d: ProcessDefinition) -> dict[int, str]:
    """version -> the change note it was published with, from the office's audit rows."""
    notes = {}
    for data in session.scalars(select(AuditEvent.data).where(AuditEvent.office_id == d.office_id,
                                                              AuditEvent.kind == "process_published")):
        if isinstance(data, dict) and data.get("key") == d.key and data.get("note"):
            notes[data.get("version")] = str(data["note"])
    return notes


def _version(session: Session, d: ProcessDefinition, number: int) -> ProcessVersion:
    v = session.scalar(select(ProcessVersion).where(ProcessVersion.definition_id == d.id,
                                                    ProcessVersion.version == number))
    if v is None:
        raise NotFound(f"SOP {d.key!r} has no version {number}")
    return v


def _conditions(version: ProcessVersion) -> dict[str, str]:
    root = etree.fromstring(version.bpmn_xml.encode(), parser=etree.XMLParser(resolve_entities=False,
                                                                               no_network=True))
    process = root.find(f"bpmn:process[@id='{version.process_id}']", NS)
    return {flow.get("id"): (flow.findtext(f"{{{BPMN_NS}}}conditionExpression") or "").strip()
            for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow")
            if flow.find(f"{{{BPMN_NS}}}conditionExpression") is not None}


def _fields(version: ProcessVersion) -> dict[str, dict]:
    """`step.field` -> its schema, over every step's form."""
    out = {}
    for tid, step in version.steps.items():
        for name, schema in version.forms.get(step["form"], {}).get("properties", {}).items():
            out[f"{tid}.{name}"] = schema
    return out


@dataclass(frozen=True)
class Change:
    """One difference between two versions: `sign` + added, - removed, ~ changed."""

    sign: str
    kind: str  # step | lane | Mutu Baku | condition | field
    key: str
    before: object = None
    after: object = None

    def __str__(self) -> str:
        if self.sign == "+":
            return f"+ {self.kind} {self.key}: {self.after}"
        if self.sign == "-":
            return f"- {self.kind} {self.key}: {self.before}"
        if self.after is None:
            return f"~ {self.kind} {self.key}: {self.before}"
        return f"~ {self.kind} {self.key}: {self.before} -> {self.after}"


def _compare(kind: str, a: dict, b: dict) -> list[Change]:
    changes = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            changes.append(Change("+", kind, k, after=b[k]))
        elif k not in b:
            changes.append(Change("-", kind, k, before=a[k]))
        elif a[k] != b[k]:
            changes.append(Change("~", kind, k, a[k], b[k]))
    return changes


def changes(session: Session, office_code: str, key: str, a: int, b: int) -> list[Change]:
    """What changed from version `a` to `b`: steps, lanes, Mutu Baku timers, conditions, form fields."""
    d = definition(session, office_code, key)
    va, vb = _version(session, d, a), _version(session, d, b)
    fa, fb = _fields(va), _fields(vb)
    steps = lambda v: {t: s["name"] for t, s in v.steps.items()}  # noqa: E731
    lanes = lambda v: {t: s["lane"] for t, s in v.steps.items()}  # noqa: E731
    timers = lambda v: {t: f"{s['mutu_baku_minutes']:g} min" for t, s in v.steps.items()}  # noqa: E731
    types = lambda f: {k: v.get("type", "?") for k, v in f.items()}  # noqa: E731
    return (_compare("step", steps(va), steps(vb)) + _compare("lane", lanes(va), lanes(vb))
            + _compare("Mutu Baku", timers(va), timers(vb))
            + _compare("condition", _conditions(va), _conditions(vb))
            + _compare("field", types(fa), types(fb))
            + [Change("~", "field", k, "rules changed") for k in sorted(set(fa) & set(fb))
               if fa[k] != fb[k] and fa[k].get("type") == fb[k].get("type")])


def diff(session: Session, office_code: str, key: str, a: int, b: int) -> list[str]:
    """What changed from version `a` to `b`, one line each (+ added, - removed, ~ changed)."""
    return [str(c) for c in changes(session, office_code, key, a, b)]


def sop_summaries(session: Session, office_id: int) -> list[dict]:
    """The office's SOPs for its process owners: latest version and instances by state, over all versions."""
    counts: dict[int, dict[str, int]] = {}
    for did, status, n in session.execute(
            select(ProcessVersion.definition_id, ProcessInstance.status, func.count())
            .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
            .where(ProcessInstance.office_id == office_id)
            .group_by(ProcessVersion.definition_id, ProcessInstance.status)):
        counts.setdefault(did, {})[status] = n
    rows = session.execute(select(ProcessDefinition.id, ProcessDefinition.key, ProcessDefinition.name,
                                  ProcessVersion.version, ProcessVersion.deployed_at)
                           .join(ProcessVersion, ProcessVersion.id == ProcessDefinition.latest_version_id)
                           .where(ProcessDefinition.office_id == office_id).order_by(ProcessDefinition.name))
    return [{"key": key, "name": name, "version": version, "deployed_at": at,
             "running": counts.get(did, {}).get("running", 0), "done": counts.get(did, {}).get("completed", 0),
             "incident": counts.get(did, {}).get("incident", 0)} for did, key, name, version, at in rows]
