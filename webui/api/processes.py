"""Processes (SOPs): what the caller may start, the SOP card, the versions."""
from __future__ import annotations

from engine.errors import NotFound
from engine.instance_list import process_versions
from engine.queries import sop_cards

from .base import bp, responses, services, spec, user
from .schemas import ProcessCard, ProcessList, ProcessSummary, SopStep, VersionList

KEY = "<string(maxlength=100):key>"


def _steps(sop: dict) -> list[SopStep]:
    items = sorted((sop or {}).get("steps", {}).items(), key=lambda kv: kv[1].get("no") or 0)
    return [SopStep(id=sid, no=s.get("no"), name=s.get("name"), actor=s.get("actor"),
                    mutu_baku_minutes=s.get("mutu_baku_minutes"),
                    text={k: v for k, v in s.items() if k not in ("no", "name", "actor", "mutu_baku_minutes")})
            for sid, s in items]


def _cards(user_id: int) -> list[tuple]:
    """(definition, card) of the SOPs the user may start (Runtime.startable: office and first lane)."""
    svc = services()
    definitions = svc.runtime.startable(user_id)
    with svc.sessions() as db:
        cards = sop_cards(db, [d.id for d in definitions])
    return [(d, cards.get(d.id, {})) for d in definitions]


@bp.get("/processes")
@spec.validate(resp=responses({"HTTP_200": ProcessList}), tags=["processes"], operation_id="listProcesses")
def list_processes():
    """The SOPs the caller may start (of their office, whose first step is in one of their lanes)."""
    items = []
    for d, card in _cards(user().id):
        steps = _steps(card.get("sop"))
        items.append(ProcessSummary(key=d.key, name=d.name, version=card.get("version"),
                                    actors=list(dict.fromkeys(s.actor for s in steps if s.actor)),
                                    total_mutu_baku_minutes=sum(s.mutu_baku_minutes or 0 for s in steps)))
    return ProcessList(items=items)


@bp.get(f"/processes/{KEY}")
@spec.validate(resp=responses({"HTTP_200": ProcessCard}), tags=["processes"], operation_id="getProcess")
def get_process(key: str):
    """The SOP card of a process the caller may start: header, steps with actors, Mutu Baku and text."""
    for d, card in _cards(user().id):
        if d.key == key:
            sop = card.get("sop") or {}
            return ProcessCard(key=d.key, name=d.name, version=card.get("version"),
                               sop={k: v for k, v in sop.items() if k != "steps"}, steps=_steps(sop))
    raise NotFound(f"process {key!r}")


@bp.get(f"/processes/{KEY}/versions")
@spec.validate(resp=responses({"HTTP_200": VersionList}), tags=["processes"], operation_id="listProcessVersions")
def list_versions(key: str):
    """The deployed versions of an SOP of the caller's office, newest first."""
    with services().sessions() as db:
        definition, rows = process_versions(db, user().id, key)
    return VersionList(key=definition.key, items=rows)
