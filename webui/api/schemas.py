"""The API's request and response models (pydantic): they validate requests and, through
spectree, are the OpenAPI document's schemas, so the two cannot drift. Rows the engine
already defines (engine dataclasses) are used as they are."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from spectree.model_adapter.pydantic_adapter import BaseFile

from engine.instance_list import InstanceRow, VersionRow
from engine.runtime import TaskRow

Id = Annotated[int, Field(ge=1, le=2 ** 31 - 1)]

Limit = Field(25, ge=1, le=100, description="rows per page (1-100)")
Cursor = Field(None, max_length=200, description="the `next_cursor` of the previous page")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- processes ---------------------------------------------------------------------------
class ProcessSummary(BaseModel):
    key: str
    name: str
    version: int | None
    actors: list[str]
    total_mutu_baku_minutes: float


class ProcessList(BaseModel):
    items: list[ProcessSummary]


class SopStep(BaseModel):
    id: str
    no: int | None = None
    name: str | None = None
    actor: str | None = None
    mutu_baku_minutes: float | None = None
    text: dict[str, Any] = Field(default_factory=dict, description="the SOP's own text of the step")


class ProcessCard(BaseModel):
    key: str
    name: str
    version: int | None
    sop: dict[str, Any] = Field(description="the SOP header card (Dasar Hukum, Persyaratan, ...)")
    steps: list[SopStep]


class VersionList(BaseModel):
    key: str
    items: list[VersionRow]


# ---- instances ---------------------------------------------------------------------------
class StartBody(Strict):
    process: str = Field(min_length=1, max_length=100, description="the SOP's key")
    subject: str = Field(min_length=1, max_length=300, description="Perihal")


class Started(BaseModel):
    id: int
    open_tasks: list[int] = Field(description="steps of the new instance in the caller's lanes")


class InstanceQuery(Strict):
    process: str | None = Field(None, max_length=100)
    status: Literal["running", "completed", "incident", "error"] | None = None
    late: bool | None = None
    step: str | None = Field(None, max_length=200, description="the BPMN id of a step open now")
    started_from: date | None = Field(None, description="first day (WIB), inclusive")
    started_to: date | None = Field(None, description="last day (WIB), inclusive")
    q: str | None = Field(None, max_length=200, description="text in the subject")
    officer: str | None = Field(None, max_length=64, description="username who started it or worked a step")
    cursor: str | None = Cursor
    limit: int = Limit


class InstancePage(BaseModel):
    items: list[InstanceRow]
    next_cursor: str | None


class StepItem(BaseModel):
    id: int
    bpmn_id: str
    name: str
    lane: str | None
    state: str
    assignee: str | None
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    mutu_baku_minutes: float | None
    paused: bool
    late: bool


class AuditItem(BaseModel):
    id: int
    at: datetime
    kind: str
    step: str | None
    user: str | None
    data: dict[str, Any] | None


class InstanceDetail(BaseModel):
    id: int
    process_key: str
    process_name: str
    version: int
    subject: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    steps: list[StepItem]
    audit: list[AuditItem]


# ---- tasks -------------------------------------------------------------------------------
class TaskQuery(Strict):
    view: Literal["mine", "group", "late", "done"] = Field(
        "mine", description="mine: held by me; group: unclaimed in my lanes; late: past due; done: completed by me")
    cursor: str | None = Cursor
    limit: int = Limit


@dataclass(frozen=True)
class TaskItem(TaskRow):
    """An inbox line (engine.runtime.TaskRow) with what a client would otherwise compute."""

    late: bool
    minutes_left: float | None  # wall-clock minutes to the due time (negative: late); None when done


class TaskPage(BaseModel):
    items: list[TaskItem]
    next_cursor: str | None


class TaskDetail(BaseModel):
    id: int
    instance_id: int
    subject: str
    process_key: str
    bpmn_id: str
    name: str
    lane: str | None
    state: str
    assignee: str | None
    may_act: bool = Field(description="the caller is in the step's lane")
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    mutu_baku_minutes: float | None
    paused: bool
    form_schema: dict[str, Any] = Field(description="the step's form, JSON Schema 2020-12")
    sop_step: dict[str, Any] = Field(description="the SOP's text of this step")
    draft: dict[str, Any] | None
    data: dict[str, Any] | None = Field(description="what was submitted, once completed")


class CompleteBody(Strict):
    data: dict[str, Any] = Field(description="the form's data; validated against `form_schema`")
    claim: bool = Field(False, description="the step is unclaimed: claim it and complete it in one go "
                                           "(without it, completing an unclaimed step is refused with 409)")
    checklist: list[Annotated[str, Field(max_length=500)]] | None = Field(
        None, max_length=50, description="the Persyaratan items ticked (`sop_step.requirements`); all of them when "
                                         "`sop_step.requirements_required`")


class DraftBody(Strict):
    data: dict[str, Any]


class ReassignBody(Strict):
    to: str = Field(min_length=1, max_length=64, description="username of a member of the step's lane")


class Completed(BaseModel):
    opened: list[int] = Field(description="steps this completion opened")
    incident: int | None = Field(None, description="the incident the process ran into after this step "
                                                   "(the step is completed; the instance stopped there)")


class Done(BaseModel):
    ok: bool = True


class Evidence(BaseModel):
    sha256: str
    mime: str
    size: int
    name: str


class EvidenceForm(BaseModel):
    field: str = Field(min_length=1, max_length=200, description="the form's files field the evidence is for")
    file: BaseFile = Field(description="the evidence file (JPEG, PNG, WebP, MP4, WebM or PDF)")


# ---- notifications ------------------------------------------------------------------------
class NotificationQuery(Strict):
    unread: bool = False
    cursor: str | None = Cursor
    limit: int = Limit


class NotificationItem(BaseModel):
    id: int
    level: str
    subject: str
    body: str
    link: str | None
    task_id: int | None
    instance_id: int | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationItem]
    next_cursor: str | None


class MarkReadBody(Strict):
    ids: list[Id] | None = Field(None, max_length=500, description="omit to mark every unread one read")


class Marked(BaseModel):
    marked: int


# ---- dashboard ----------------------------------------------------------------------------
class DashboardQuery(Strict):
    start: date | None = None
    end: date | None = None


class Table(BaseModel):
    name: str
    columns: list[str]
    rows: list[list[Any]]


class Dashboard(BaseModel):
    page: str
    start: date
    end: date
    tables: list[Table]


# ---- calendar -----------------------------------------------------------------------------
class CalendarQuery(Strict):
    year: int | None = Field(None, ge=2000, le=2100, description="holidays of this year (default: this year)")


class Holiday(BaseModel):
    day: date
    name: str
    working: bool


class OverrideItem(BaseModel):
    day: date
    working: bool
    note: str


class Calendar(BaseModel):
    office: str
    timezone: str
    schedule: dict[str, list[list[str]]] = Field(description="weekday -> working periods [start, end] (HH:MM)")
    include_cuti_bersama: bool
    holidays: list[Holiday]
    overrides: list[OverrideItem]


class DueQuery(Strict):
    start: datetime = Field(description="when the step becomes ready (ISO 8601 with offset)")
    mutu_baku: str = Field(min_length=1, max_length=40, description="ISO 8601 duration, e.g. PT120M")


class DueTime(BaseModel):
    start: datetime
    mutu_baku_minutes: float
    due_at: datetime
