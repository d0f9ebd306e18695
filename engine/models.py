"""The relational model.

The workflow state of an instance is one JSON document (SpiffWorkflow's serialization
without its spec); the spec of each deployed version is stored once. Everything the
inbox, SLA and dashboard need is mirrored into `human_task` so that listing tasks
never loads a workflow.
"""
from __future__ import annotations

from datetime import datetime, date

from sqlalchemy import (
    JSON, BigInteger, Boolean, Date, DateTime, Float, ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary,
    String,
    Table, Column, Text, UniqueConstraint, MetaData,
)
from sqlalchemy import false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utc_dt(**kw):
    return mapped_column(DateTime(timezone=True), **kw)


user_group = Table(
    "user_group", Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("office_group.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_user_group_group", "group_id"),
)


class Office(Base):
    """A tenant: one dinas (office) of the regency, with its own working calendar."""

    __tablename__ = "office"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Jakarta")
    schedule: Mapped[dict | None] = mapped_column(JSON, default=None)  # WeeklySchedule.to_dict()
    include_cuti_bersama: Mapped[bool] = mapped_column(Boolean, default=True)
    calendar_revision: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change
    audit_hash: Mapped[str | None] = mapped_column(String(64))  # head of the office's audit chain (engine/audit.py)
    # A staff member's pause of a step's clock: "approval" (a request a supervisor approves or
    # refuses; the clock stops when approved) or "immediate" (the clock stops at once and the
    # supervisors are told). See engine/pause_requests.py.
    pause_mode: Mapped[str] = mapped_column(String(16), default="approval", server_default="approval")


class CalendarOverride(Base):
    """An office's extra day off or extra working day (cuti bersama changes, local events)."""

    __tablename__ = "calendar_override"
    __table_args__ = (UniqueConstraint("office_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    working: Mapped[bool] = mapped_column(Boolean)  # True: extra working day; False: day off
    note: Mapped[str] = mapped_column(String(200), default="")


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(256))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"), index=True)
    roles: Mapped[str] = mapped_column(String(200), default="staff")  # comma separated
    email: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(8), default="id")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Reminder channels this user wants (comma separated: inapp, email, webhook) and the
    # handle a webhook gateway needs to reach them (Telegram chat id, WhatsApp number).
    notify_channels: Mapped[str] = mapped_column(String(64), default="inapp,email", server_default="inapp,email")
    webhook_handle: Mapped[str | None] = mapped_column(String(200))
    # "person" signs in with a password; "service" is a machine of an office that only
    # reaches the API with its tokens (engine/tokens.py)
    kind: Mapped[str] = mapped_column(String(16), default="person", server_default="person")
    # Bumped on logout and password change: a session cookie carries the epoch it was made in,
    # so every older cookie (on any device, or copied) stops working (see webui/auth.py).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Sign-in refused until then after too many wrong passwords (engine/throttle.py); an admin lifts it.
    locked_until: Mapped[datetime | None] = utc_dt(default=None)

    office: Mapped[Office | None] = relationship()
    groups: Mapped[list["Group"]] = relationship(secondary=user_group, back_populates="members")

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)

    def has_role(self, role: str) -> bool:
        return role in self.role_set


class Group(Base):
    """A group of an office; a BPMN lane name maps to the group of the same name."""

    __tablename__ = "office_group"
    __table_args__ = (UniqueConstraint("office_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    members: Mapped[list[User]] = relationship(secondary=user_group, back_populates="groups")


class ProcessDefinition(Base):
    """An SOP of an office; its versions are immutable deployments."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("office_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    latest_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_version.id", use_alter=True, name="fk_definition_latest_version"))

    office: Mapped[Office] = relationship()


class ProcessVersion(Base):
    """One deployed, immutable version: the BPMN source, forms, SOP card and the parsed spec.

    `spec` is SpiffWorkflow's serialized spec, stored once here rather than inside every
    instance. `steps` is the per-user-task metadata the engine reads without the workflow
    (lane, form, Mutu Baku, paraf, reminder policy).
    """

    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("definition_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict] = mapped_column(JSON)
    steps: Mapped[dict] = mapped_column(JSON)
    forms: Mapped[dict] = mapped_column(JSON)
    sop: Mapped[dict] = mapped_column(JSON)
    # Facts derived from the BPMN at deploy (start lanes, step order, lanes, total Mutu Baku):
    # what the start page and the permission check read, so neither runs a workflow.
    facts: Mapped[dict | None] = mapped_column(JSON)
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    deployed_at: Mapped[datetime] = utc_dt()

    definition: Mapped[ProcessDefinition] = relationship(foreign_keys=[definition_id])


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_instance_office_status", "office_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|completed|error
    state: Mapped[dict] = mapped_column(JSON)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
    next_timer_at: Mapped[datetime | None] = utc_dt(index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    started_at: Mapped[datetime] = utc_dt()
    completed_at: Mapped[datetime | None] = utc_dt()
    audit_hash: Mapped[str | None] = mapped_column(String(64))  # head of its audit chain (engine/audit.py)

    version: Mapped[ProcessVersion] = relationship()
    # `lock_version` is the one optimistic lock: engine/uow.py's guarded instance write checks
    # and bumps it (no ORM version counter: instances are written through the unit of work only).


class HumanTask(Base):
    """A user task as the inbox and the SLA clock see it, mirrored from the workflow."""

    __tablename__ = "human_task"
    __table_args__ = (
        Index("ix_human_task_assignee", "assignee_id", "state", "due_at"),
        Index("ix_human_task_group", "group_id", "state", "due_at"),
        Index("ix_human_task_office", "office_id", "state", "due_at"),
        Index("ix_human_task_completed_by", "completed_by_id", "completed_at"),
        Index("ix_human_task_instance", "instance_id"),
        Index("ix_human_task_dash_done", "office_id", "state", "completed_at",
              postgresql_include=["version_id", "bpmn_id", "completed_by_id", "assignee_id", "due_at", "paused_at",
                                  "working_minutes"]),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    lane: Mapped[str | None] = mapped_column(String(200))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("office_group.id"))
    state: Mapped[str] = mapped_column(String(16), default="ready")  # ready|completed|cancelled
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    mutu_baku_minutes: Mapped[float | None] = mapped_column(Float)
    ready_at: Mapped[datetime] = utc_dt()
    claimed_at: Mapped[datetime | None] = utc_dt()
    completed_at: Mapped[datetime | None] = utc_dt()
    due_at: Mapped[datetime | None] = utc_dt()
    paused_at: Mapped[datetime | None] = utc_dt()
    pause_reason: Mapped[str | None] = mapped_column(String(500))
    working_minutes: Mapped[float | None] = mapped_column(Float)  # ready -> completed, office time
    draft: Mapped[dict | None] = mapped_column(JSON)
    data: Mapped[dict | None] = mapped_column(JSON)  # what was submitted on completion

    instance: Mapped[ProcessInstance] = relationship()
    group: Mapped[Group | None] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])


class AuditEvent(Base):
    """Append-only trail: who did what, when, on which step, with what data."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_instance", "instance_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = utc_dt()
    kind: Mapped[str] = mapped_column(String(40))
    step: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict | None] = mapped_column(JSON)
    hash: Mapped[str | None] = mapped_column(String(64))  # chained to the previous row of its instance (engine/audit.py)

    user: Mapped[User | None] = relationship()
    human_task: Mapped["HumanTask | None"] = relationship()


class Attachment(Base):
    """An evidence file (photo, video, PDF), stored once per office under its SHA-256."""

    __tablename__ = "attachment"
    __table_args__ = (UniqueConstraint("office_id", "sha256"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str] = mapped_column(String(255))
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = utc_dt()
    # The step it was uploaded for (quota per step and per instance; engine/attachments.py), and
    # whether a completed step's data refers to it (then it is never pruned).
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="SET NULL"),
                                                      index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="SET NULL"),
                                                    index=True)
    kept: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class LoginFailure(Base):
    """One wrong password (or a refused sign-in): counted per account and per client address
    by every web process alike (engine/throttle.py)."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_username_at", "username", "at"),
                      Index("ix_login_failure_address_at", "address", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = utc_dt(index=True)


# ---- SLA clock, reminders and their delivery (issue 3) ------------------------------------

class TaskPause(Base):
    """One pause of a step's SLA clock; the paused working minutes are recomputed from these
    with the office's current calendar, so a calendar change keeps them right."""

    __tablename__ = "task_pause"
    __table_args__ = (Index("ix_task_pause_task", "human_task_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    human_task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"))
    paused_at: Mapped[datetime] = utc_dt()
    resumed_at: Mapped[datetime | None] = utc_dt()
    reason: Mapped[str] = mapped_column(String(500))
    resume_reason: Mapped[str | None] = mapped_column(String(500))
    paused_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    resumed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class PauseRequest(Base):
    """A staff member's request to stop a step's SLA clock, and the supervisor's decision.

    pending -> approved (the clock stopped then) | refused | withdrawn (the step closed or the
    clock was stopped otherwise); "immediate": the office stops the clock at once and the
    supervisors were told. Written by engine/uow.py only (engine/pause_requests.py decides)."""

    __tablename__ = "pause_request"
    __table_args__ = (Index("ix_pause_request_task", "human_task_id", "status"),
                      Index("ix_pause_request_office_status", "office_id", "status"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    human_task_id: Mapped[int] = mapped_column(BigId, ForeignKey("human_task.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id", ondelete="CASCADE"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    requested_at: Mapped[datetime] = utc_dt()
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|refused|withdrawn|immediate
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None] = utc_dt()
    decision_note: Mapped[str | None] = mapped_column(String(500))


class Deadline(Base):
    """A reminder level of an open step falling due: the table the beat tick polls.

    pending -> done (fired) | cancelled (step closed); held while the clock is paused.
    `seq` numbers the repeats (0 for warn and breach).
    """

    __tablename__ = "deadline"
    __table_args__ = (
        UniqueConstraint("human_task_id", "level", "seq", name="uq_deadline_task_level_seq"),
        Index("ix_deadline_status_due", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    human_task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    level: Mapped[str] = mapped_column(String(16))  # warn|breach|repeat
    seq: Mapped[int] = mapped_column(Integer, default=0)
    at_fraction: Mapped[float] = mapped_column(Float)  # share of the Mutu Baku (working time)
    due_at: Mapped[datetime] = utc_dt()
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|held|done|cancelled
    fired_at: Mapped[datetime | None] = utc_dt()

    human_task: Mapped[HumanTask] = relationship()


class Notification(Base):
    """One reminder message to one user: the in-app inbox entry and the record of what was said."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("human_task_id", "level", "seq", "user_id", name="uq_notification_task_level_seq_user"),
        Index("ix_notification_user_read", "user_id", "read_at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"))
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    inapp: Mapped[bool] = mapped_column(Boolean, default=True)  # shown in the web inbox
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    payload: Mapped[dict | None] = mapped_column(JSON)  # the facts the texts were rendered from
    created_at: Mapped[datetime] = utc_dt()
    read_at: Mapped[datetime | None] = utc_dt()


class Delivery(Base):
    """Sending one notification over one outside channel (email, webhook): one row, one
    send at a time, a second copy only if a worker dies between the receiver's accepting and
    the commit of "sent" (engine/notify.py says why that window cannot close).

    The unique key makes a second delivery row impossible; the status/lease claim makes a
    second send by a concurrent worker impossible; retries are recorded here.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("human_task_id", "level", "seq", "channel", "recipient_id",
                         name="uq_delivery_task_level_seq_channel_recipient"),
        Index("ix_delivery_status_next", "status", "next_attempt_at"),
        Index("ix_delivery_notification", "notification_id"),
        UniqueConstraint("subscription_id", "event_id", name="uq_delivery_subscription_event"),
        Index("ix_delivery_subscription", "subscription_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # a reminder's notification and recipient; an event webhook's (below) has neither
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id", ondelete="CASCADE"))
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(16))  # email|webhook
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|failed|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = utc_dt()  # when its deadline fell due (lateness = sent_at - due_at)
    created_at: Mapped[datetime] = utc_dt()
    next_attempt_at: Mapped[datetime] = utc_dt()
    enqueued_at: Mapped[datetime | None] = utc_dt()
    lease_until: Mapped[datetime | None] = utc_dt()
    sent_at: Mapped[datetime | None] = utc_dt()
    last_error: Mapped[str | None] = mapped_column(String(1000))
    # An event webhook (engine/webhooks/): the subscription it goes to, the event's type and
    # id (the `webhook-id` header, the same on every attempt: the receiver's idempotency key)
    # and the signed JSON body. Recorded with the event's audit row (engine/uow.py).
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_subscription.id", ondelete="CASCADE"))
    event: Mapped[str | None] = mapped_column(String(40))
    event_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict | None] = mapped_column(JSON)

    notification: Mapped[Notification | None] = relationship()


class OfficeWebhook(Base):
    """An office's outgoing webhook (Telegram bot / WhatsApp gateway). The secret lives in the
    database of the installation, never in the repository; LAJUR_WEBHOOK_URL/SECRET is the fallback."""

    __tablename__ = "office_webhook"
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookSubscription(Base):
    """An office's subscription of a URL to events (engine/webhooks/). The signing secret is
    kept encrypted with the installation's webhook key (engine/webhooks/secrets.py): a copy
    of the database alone does not give it away; `secret_hint` names it on the pages."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (Index("ix_webhook_subscription_office", "office_id", "active"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[str] = mapped_column(String(300))  # ",step.completed,step.ready," (matched with LIKE)
    secret_box: Mapped[str] = mapped_column(String(400))
    secret_hint: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = utc_dt()


class WebhookAttempt(Base):
    """One send attempt of an event webhook, for the subscription's delivery log."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "attempt"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = utc_dt()
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class StatsBlock(Base):
    """A built block of the dashboard rollup: one office's completed steps of one past WIB day
    ("d"), ISO week inside a month ("w"), month ("m") or year ("y"); see engine/dashboard/rollup.py."""

    __tablename__ = "stats_block"
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), primary_key=True)
    span: Mapped[str] = mapped_column(String(1), primary_key=True)  # d | w | m | y
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the block's first day (WIB)
    built_at: Mapped[datetime] = utc_dt()


class StatsStepBlock(Base):
    """Completed-step figures of one block per (SOP version, step); `durations` packs the distinct
    working minutes (centi-minutes) with their counts as little-endian int64 pairs."""

    __tablename__ = "stats_step_block"
    __table_args__ = (
        ForeignKeyConstraint(["office_id", "span", "day"],
                             ["stats_block.office_id", "stats_block.span", "stats_block.day"], ondelete="CASCADE"),
    )
    office_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    span: Mapped[str] = mapped_column(String(1), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), primary_key=True)
    bpmn_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    completed: Mapped[int] = mapped_column(Integer)
    with_due: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)
    durations: Mapped[bytes] = mapped_column(LargeBinary)


class StatsOfficerBlock(Base):
    """The same figures per (SOP version, step, officer who completed the steps)."""

    __tablename__ = "stats_officer_block"
    __table_args__ = (
        ForeignKeyConstraint(["office_id", "span", "day"],
                             ["stats_block.office_id", "stats_block.span", "stats_block.day"], ondelete="CASCADE"),
    )
    office_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    span: Mapped[str] = mapped_column(String(1), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), primary_key=True)
    bpmn_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    completed: Mapped[int] = mapped_column(Integer)
    with_due: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)
    durations: Mapped[bytes] = mapped_column(LargeBinary)


class ProcessHeartbeat(Base):
    """The last sign of life of a worker or beat process, and of the deadline tick itself
    (kind "tick": when it last ran, by whom, what it did). Written every few seconds by the
    processes (`engine.heartbeat`), read by `lajur status` and by the other processes, which
    log a warning when one falls silent."""

    __tablename__ = "process_heartbeat"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_process_heartbeat_kind_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # worker|beat|tick
    name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = utc_dt()
    seen_at: Mapped[datetime] = utc_dt()
    info: Mapped[dict | None] = mapped_column(JSON, default=None)


class ApiToken(Base):
    """A personal access token (or a service account's) for the REST API, stored hashed.

    The token is shown once; `prefix` (random, not secret) finds the row, `token_hash` is
    the SHA-256 of the whole token. `scope` is read|write; see engine/tokens.py."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_user", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))  # read|write
    created_at: Mapped[datetime] = utc_dt()
    expires_at: Mapped[datetime] = utc_dt()
    revoked_at: Mapped[datetime | None] = utc_dt()


class Incident(Base):
    """A run-time error that stopped an instance at one element (Camunda's incident): a gateway
    condition, a script or a timer that failed with this instance's data. Open while
    `resolved_at` is NULL; the instance's status is 'incident' while any of its incidents is
    open. Written only by engine/uow.py (`open_incident`, `incident`); see engine/incidents.py."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_office_open", "office_id", "resolved_at", "id"),
                      Index("ix_incident_instance", "instance_id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))  # when it opened
    element_id: Mapped[str] = mapped_column(String(200), default="")
    element_name: Mapped[str] = mapped_column(String(300), default="")
    task_guid: Mapped[str | None] = mapped_column(String(36))  # the failed SpiffWorkflow task
    kind: Mapped[str] = mapped_column(String(16))  # expression|script|timer|other
    message: Mapped[str] = mapped_column(String(2000))  # plain words (English); detail has both languages
    detail: Mapped[dict | None] = mapped_column(JSON)  # reason, names, expression, texts {id, en}, technical error
    snapshot: Mapped[dict | None] = mapped_column(JSON)  # the failed element's data, size-limited
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # the failure itself, then each retry
    opened_at: Mapped[datetime] = utc_dt()
    last_attempt_at: Mapped[datetime] = utc_dt()
    resolved_at: Mapped[datetime | None] = utc_dt()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    resolution: Mapped[str | None] = mapped_column(String(200))
class ProcessDraft(Base):
    """An SOP being edited in the browser studio (issue 11): the files of its process folder.

    `files` maps a path of the folder (`process.bpmn`, `sop.json`, `forms/<step>.schema.json`)
    to its text; publishing deploys exactly these files through engine/deploy.py. One draft per
    SOP and office, shared by its process owners: `lock_version` guards every save (a save
    over someone else's newer one is refused), `editor_id`/`updated_at` say who saved last.
    """

    __tablename__ = "process_draft"
    __table_args__ = (UniqueConstraint("office_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    based_on_version: Mapped[int | None] = mapped_column(Integer)
    files: Mapped[dict] = mapped_column(JSON)
    problems: Mapped[list | None] = mapped_column(JSON)  # the validator's answer to the last save
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = utc_dt()
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
