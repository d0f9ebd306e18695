"""Instances: start one, list them with filters, one with its steps and audit trail."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.dashboard.zones import day_bounds
from engine.db import as_utc
from engine.instance_list import InstanceFilters, list_instances
from engine.queries import open_task_ids, user_names

from .base import bp, decode_cursor, encode_cursor, now, responses, services, spec, user
from .schemas import (AuditItem, InstanceDetail, InstancePage, InstanceQuery, StartBody, Started,
                      StepItem)

WIB = ZoneInfo("Asia/Jakarta")
ID = "<int(min=1, max=2147483647):instance_id>"


@bp.post("/instances")
@spec.validate(resp=responses({"HTTP_201": Started}, 409), tags=["instances"], operation_id="startInstance")
def start_instance(json: StartBody):
    """Start the latest version of an SOP of the caller's office (the caller must be in its first lane)."""
    svc = services()
    auth_user = user()
    instance_id = svc.runtime.start(auth_user.id, json.process, json.subject)
    with svc.sessions() as db:
        opened = open_task_ids(db, instance_id, auth_user.id)
    return Started(id=instance_id, open_tasks=opened), 201, {"Location": f"/api/v1/instances/{instance_id}"}


@bp.get("/instances")
@spec.validate(resp=responses({"HTTP_200": InstancePage}), tags=["instances"], operation_id="listInstances")
def instance_list(query: InstanceQuery):
    """The office's instances, newest first, with filters; cursor pagination."""
    started_from, started_to = day_bounds(query.started_from, query.started_to, WIB.key)
    filters = InstanceFilters(
        process=query.process, status=query.status, late=query.late,
        started_from=started_from, started_to=started_to,
        subject=(query.q or "").strip() or None, officer=query.officer, step=query.step)
    after = decode_cursor(query.cursor, "id")
    with services().sessions() as db:
        rows = list_instances(db, user().id, filters, now(), after_id=after, limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return InstancePage(items=rows,
                        next_cursor=encode_cursor({"id": rows[-1].id}) if more else None)


@bp.get(f"/instances/{ID}")
@spec.validate(resp=responses({"HTTP_200": InstanceDetail}), tags=["instances"], operation_id="getInstance")
def instance_detail(instance_id: int):
    """An instance with its steps (due times, holder, late or not) and its audit trail."""
    svc = services()
    d = svc.runtime.instance_detail(user().id, instance_id)
    instance, version, tasks, events = d["instance"], d["version"], d["tasks"], d["events"]
    at = now()
    with svc.sessions() as db:
        names = user_names(db, {t.assignee_id for t in tasks} | {t.completed_by_id for t in tasks})
    steps = [StepItem(id=t.id, bpmn_id=t.bpmn_id, name=t.name, lane=t.lane, state=t.state,
                      assignee=names.get(t.assignee_id), ready_at=as_utc(t.ready_at), due_at=as_utc(t.due_at),
                      completed_at=as_utc(t.completed_at), completed_by=names.get(t.completed_by_id),
                      mutu_baku_minutes=t.mutu_baku_minutes, paused=t.paused_at is not None,
                      late=_late(t, at)) for t in tasks]
    audit = [AuditItem(id=e.id, at=as_utc(e.at), kind=e.kind, step=e.step, user=e.user.full_name if e.user else None,
                       data=e.data) for e in events]
    return InstanceDetail(id=instance.id, process_key=version.definition.key, process_name=version.definition.name,
                          version=version.version, subject=instance.subject, status=instance.status,
                          started_at=as_utc(instance.started_at), completed_at=as_utc(instance.completed_at),
                          steps=steps, audit=audit)


def _late(task, at: datetime) -> bool:
    """Late: still open past its due time, or completed after it (the SLA dashboard's meaning)."""
    due = as_utc(task.due_at)
    if due is None:
        return False
    if task.state == "completed":
        return as_utc(task.completed_at) > due
    return task.state == "ready" and task.paused_at is None and due < at
