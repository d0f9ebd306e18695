"""Which audit rows are webhook events, their JSON body, and how their deliveries are recorded.

Exactly-once recording: the delivery rows of an event are written by the unit of work's
flush (engine/uow.py) in the same batch, hence the same transaction, as the event's audit
row: if the state change commits, its event and one delivery per matching subscription
commit with it; if it rolls back (a Conflict, a crash), neither exists. The alternative, a
tick deriving events from audit rows behind a durable cursor, needs a cursor that is
correct under concurrent commits (ids are allocated before commit, so a cursor on the id
skips a row committed late) and adds a polling query; recording in the flush has neither
problem.

The hot path stays fast: the deliveries are one `INSERT INTO delivery ... SELECT ... FROM
webhook_subscription WHERE office_id = :office AND active AND events LIKE :event`
statement, run once per event row in the flush's own batch (one pipeline on PostgreSQL):
no extra round trip, with or without subscriptions, and an office with none costs an
index probe that inserts nothing. Nothing is cached, so a subscription changed a moment
ago is seen at once by every process.

The body is thin on purpose: the event's type, time and ids (office, instance, step), not
the form data a step was completed with, which may hold citizens' personal data and is
bounded only by the form limits; a receiver reads more through the REST API with a token
(`/api/v1/instances/{instance_id}`, `/api/v1/tasks/{task_id}`), under its access rules.

`webhook-id` (the idempotency key) is derived from the audit row's hash (engine/audit.py):
unique per event, the same on every attempt, and traceable to the audit trail.
"""
from __future__ import annotations

from sqlalchemy import JSON, Integer, String, bindparam, insert, literal, select, true, type_coerce

from ..models import Delivery, WebhookSubscription
from ..sqltx import Stmt

# event type -> what it means (the admin page and README list these)
EVENTS = {
    "instance.started": "an SOP instance was started",
    "step.ready": "a step became ready for its lane",
    "step.completed": "a step was completed",
    "step.late": "a step passed its Mutu Baku (its breach reminder fired)",
    "instance.finished": "an SOP instance reached its end",
    "incident": "an instance stopped on an incident",
}

# audit kind -> event type; "reminder_fired" is an event only at its breach level
_KINDS = {
    "instance_started": "instance.started",
    "task_ready": "step.ready",
    "task_completed": "step.completed",
    "reminder_fired": "step.late",
    "instance_completed": "instance.finished",
    "incident_opened": "incident",
}

_S = WebhookSubscription.__table__
_D = Delivery.__table__

INSERT_DELIVERIES = Stmt(insert(_D).from_select(
    ["subscription_id", "event", "event_id", "payload", "channel", "level", "seq", "status", "attempts",
     "created_at", "next_attempt_at"],
    select(_S.c.id, type_coerce(bindparam("event"), String), type_coerce(bindparam("event_id"), String),
           type_coerce(bindparam("payload"), JSON), literal("webhook"), literal("event"),
           type_coerce(literal(0), Integer), literal("pending"), type_coerce(literal(0), Integer),
           bindparam("at"), bindparam("at"))
    .where(_S.c.office_id == bindparam("office"), _S.c.active == true(), _S.c.events.like(bindparam("pattern")))))


def event_of(row: dict) -> str | None:
    """The event type of an audit row (the dict UnitOfWork.audit records), or None."""
    event = _KINDS.get(row["kind"])
    if event is None or row["office_id"] is None:
        return None
    if event == "step.late" and (row.get("data") or {}).get("level") != "breach":
        return None
    return event


def payload(event: str, event_id: str, row: dict) -> dict:
    """The JSON body of an event (Standard Webhooks shape: type, timestamp, data)."""
    data: dict = {"office_id": row["office_id"], "instance_id": row["instance_id"]}
    if row.get("human_task_id") is not None:
        data["task_id"] = row["human_task_id"]
    if row.get("step"):
        data["step"] = row["step"]
    if row.get("user_id") is not None:
        data["user_id"] = row["user_id"]
    extra = row.get("data") or {}
    if event == "instance.started":
        data.update({k: extra[k] for k in ("process", "version", "subject") if k in extra})
    elif event == "step.ready":
        data.update({k: extra[k] for k in ("lane", "due_at") if k in extra})
    elif event == "incident":  # engine/incidents.py: what failed where (the incident's id for the API)
        data.update({k: extra[k] for k in ("incident", "kind", "element") if k in extra})
        if isinstance(extra.get("message"), str):
            data["message"] = extra["message"][:500]
    return {"id": event_id, "type": event, "timestamp": row["at"].isoformat(), "data": data}


def delivery_rows(audits: list[dict]) -> list[dict]:
    """The INSERT_DELIVERIES parameters of the event rows among `audits` (hashed already)."""
    rows = []
    for row in audits:
        event = event_of(row)
        if event is None:
            continue
        event_id = "msg_" + row["hash"][:32]
        rows.append({"office": row["office_id"], "pattern": f"%,{event},%", "event": event, "event_id": event_id,
                     "payload": payload(event, event_id, row), "at": row["at"]})
    return rows
