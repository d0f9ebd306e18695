"""Moving the running instances of an SOP from one deployed version to another.

One engine service for the CLI (`lajur migrate-instances`) and the process page of the web:

- `plan` (the dry run) says for each running instance (or instance in incident) of version
  `a` whether it can move to `b`, and if not, why (engine/workflow_move.py's rules); for one
  that can, what happens to each open step: new lane, new Mutu Baku and due time, form.
  It writes nothing.
- `apply` moves them in batches, each instance in its own transaction: the instance is
  locked, checked again, moved, and every write goes through the unit of work (engine/uow.py)
  with an `instance_migrated` audit record, the instance write guarded by its `lock_version`.
  An instance that fails rolls back alone; the others go on.

What a move keeps and changes (README, "Versions and moving running instances"):
- the open steps stay the same tasks: their claim (holder), draft, ready time and pauses;
- each open step's `human_task` row points at the new version (its element id, name, lane
  and group, Mutu Baku), so its page shows the new version's form;
- if the step's Mutu Baku changed, its due time is computed again from when it became ready,
  in the office's working calendar (plus the working time its clock stood paused), and its
  waiting reminders are replaced (`deadlines.reschedule`; one already sent is not sent again);
  its BPMN timer is set to the due time;
- completed steps keep the version they were done under (their data was checked against it).
Only the office's process owners (or the operator at the console) may plan or apply a move.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.orm import Session

from . import access, deadlines, timers
from .accounts import office_by_code
from .errors import LajurError, NotFound
from .models import HumanTask, ProcessDefinition, ProcessInstance, ProcessVersion, TaskPause, User, user_group
from .reminders import policy_of
from .sla import due_of, paused_minutes
from .sqltx import SqlTx, Stmt
from .store import LOCK_INSTANCE, head_of, unit_of_work
from .workflow_move import Refusal, Refused, SpecPair, move

if TYPE_CHECKING:
    from .runtime import Runtime

MOVABLE = ("running", "incident")  # an instance in incident moves too: a fixed version is how it is repaired
BATCH = 50

_T, _U, _I = HumanTask.__table__, User.__table__, ProcessInstance.__table__
_P = TaskPause.__table__
OPEN_ROWS = Stmt(select(_T.c.id, _T.c.task_guid, _T.c.bpmn_id, _T.c.lane, _T.c.assignee_id, _T.c.ready_at,
                        _T.c.due_at, _T.c.paused_at, _T.c.mutu_baku_minutes, _U.c.username,
                        exists().where(_P.c.human_task_id == _T.c.id))
                 .select_from(_T.outerjoin(_U, _U.c.id == _T.c.assignee_id))
                 .where(_T.c.instance_id == bindparam("instance"), _T.c.state == "ready").order_by(_T.c.id))
IN_GROUP = Stmt(select(exists().where(user_group.c.user_id == bindparam("user"),
                                      user_group.c.group_id == bindparam("group"))))
INSTANCES = Stmt(select(_I.c.id, _I.c.subject, _I.c.status, _I.c.state)
                 .where(_I.c.version_id == bindparam("version"), or_(*[_I.c.status == s for s in MOVABLE]),
                        _I.c.id > bindparam("after"))
                 .order_by(_I.c.id).limit(bindparam("limit")))


@dataclass
class StepMove:
    """One open step of a movable instance: before and after."""

    task_id: int
    step_before: str
    step: str
    name: str
    holder: str | None
    lane_before: str | None
    lane: str | None
    group_id: int | None
    minutes_before: float | None
    minutes: float | None
    due_before: datetime | None
    due: datetime | None
    paused: bool
    form_changed: bool
    reminders_changed: bool
    guid: str
    ready_at: datetime
    paused_minutes: float = 0.0  # working minutes its clock stood paused (closed pauses)

    @property
    def retimed(self) -> bool:
        return self.minutes != self.minutes_before or self.reminders_changed


@dataclass
class InstanceMove:
    id: int
    subject: str
    status: str
    steps: list[StepMove] = field(default_factory=list)
    refusal: Refusal | None = None
    outcome: str = "planned"  # planned (dry run) | moved | stayed | failed

    @property
    def can_move(self) -> bool:
        return self.refusal is None


@dataclass
class Report:
    office: str
    key: str
    name: str
    from_version: int
    to_version: int
    instances: list[InstanceMove] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.instances if i.outcome == outcome)

    @property
    def movable(self) -> int:
        return sum(1 for i in self.instances if i.can_move)


@dataclass
class _Move:
    """What is shared by every instance of one move: the versions, their specs compared once."""

    office_id: int
    actor_id: int | None
    report: Report
    old: ProcessVersion
    new: ProcessVersion
    pair: SpecPair


def _version(session: Session, definition: ProcessDefinition, number: int) -> ProcessVersion:
    found = session.scalar(select(ProcessVersion).where(ProcessVersion.definition_id == definition.id,
                                                        ProcessVersion.version == number))
    if found is None:
        raise NotFound(f"SOP {definition.key!r} has no version {number}")
    return found


def _prepare(rt: "Runtime", session: Session, user_id: int | None, office_code: str, key: str,
             frm: int, to: int) -> _Move:
    """The checks every plan and move starts with: who asks, which SOP and versions."""
    office = office_by_code(session, office_code)
    actor = access.load_actor(session, user_id) if user_id is not None else None
    access.check_manage_process(actor, office.id)
    definition = session.scalar(select(ProcessDefinition).where(ProcessDefinition.office_id == office.id,
                                                                ProcessDefinition.key == key))
    if definition is None:
        raise NotFound(f"office {office_code!r} has no SOP {key!r}")
    if frm == to:
        raise LajurError("give two different versions")
    old, new = _version(session, definition, frm), _version(session, definition, to)
    pair = SpecPair(rt.store.registry, rt.instances.spec(session, old.id), rt.instances.spec(session, new.id), to)
    return _Move(office.id, user_id, Report(office.code, key, definition.name, frm, to), old, new, pair)


def _evaluate(rt: "Runtime", session: Session, tx: SqlTx, ctx: _Move, instance: InstanceMove, workflow,
              calendar) -> None:
    """Move `workflow` in memory and fill `instance` with its steps or the refusal."""
    try:
        after = move(ctx.pair, workflow)
    except Refused as exc:
        instance.refusal = exc.refusal
        return
    old_steps, new_steps = ctx.old.steps, ctx.new.steps
    for row in tx.all(OPEN_ROWS, {"instance": instance.id}):
        (task_id, guid, bpmn_before, lane_before, holder_id, ready_at, due_before, paused_at, minutes_before, holder,
         ever_paused) = row
        ready_at, due_before = SqlTx.when(ready_at), SqlTx.when(due_before)
        bpmn = after.get(guid, bpmn_before)
        old, new = old_steps.get(bpmn_before, {}), new_steps.get(bpmn, {})
        lane = new.get("lane")
        group_id = rt.instances.lane_group(session, ctx.office_id, lane)
        if holder_id is not None and lane != lane_before and not tx.one(IN_GROUP, {"user": holder_id,
                                                                                    "group": group_id})[0]:
            instance.refusal = Refusal("holder_not_in_lane", {"step": bpmn, "holder": holder, "lane": lane,
                                                              "to": ctx.report.to_version})
            return
        minutes = new.get("mutu_baku_minutes")
        step = StepMove(task_id, bpmn_before, bpmn, new.get("name") or bpmn, holder, lane_before, lane, group_id,
                        minutes_before, minutes, due_before, due_before, paused_at is not None,
                        ctx.old.forms.get(old.get("form")) != ctx.new.forms.get(new.get("form")),
                        policy_of(old) != policy_of(new), guid, ready_at)
        if step.retimed and minutes:
            step.paused_minutes = paused_minutes(session, task_id, calendar) if ever_paused else 0.0
            step.due = due_of(calendar, ready_at, minutes, 1.0, step.paused_minutes)
        elif not minutes:
            step.due = None
        instance.steps.append(step)


def plan(rt: "Runtime", user_id: int | None, office_code: str, key: str, frm: int, to: int) -> Report:
    """The dry run: every movable instance of version `frm`, whether and how it would move. Writes nothing."""
    with rt.sessions() as session:
        ctx = _prepare(rt, session, user_id, office_code, key, frm, to)
        tx, after = SqlTx(session), 0
        calendar = rt.calendars.get(session, ctx.office_id)
        while True:
            rows = tx.all(INSTANCES, {"version": ctx.old.id, "after": after, "limit": BATCH})
            for instance_id, subject, status, state in rows:
                instance = InstanceMove(instance_id, subject, status)
                try:
                    workflow = rt.store.workflow_from_dict(tx.document(state), ctx.pair.old_spec, ctx.pair.old_subs)
                    _evaluate(rt, session, tx, ctx, instance, workflow, calendar)
                except Exception as exc:  # noqa: BLE001  (reported for this instance; the dry run goes on)
                    instance.refusal, instance.steps = Refusal("failed", {"error": _first_line(exc)}), []
                ctx.report.instances.append(instance)
            if len(rows) < BATCH:
                return ctx.report
            after = rows[-1][0]


def apply(rt: "Runtime", user_id: int | None, office_code: str, key: str, frm: int, to: int,
          batch: int = BATCH) -> Report:
    """Move every movable instance of version `frm` to `to`, in batches, one transaction each."""
    with rt.sessions() as session:
        ctx = _prepare(rt, session, user_id, office_code, key, frm, to)
    after = 0
    while True:
        with rt.sessions() as session:
            rows = SqlTx(session).all(INSTANCES, {"version": ctx.old.id, "after": after, "limit": batch})
        for instance_id, subject, status, _ in rows:
            instance = InstanceMove(instance_id, subject, status)
            ctx.report.instances.append(instance)
            try:
                _move_one(rt, ctx, instance)
            except Exception as exc:  # noqa: BLE001  (one instance's failure must not stop the others)
                instance.refusal, instance.outcome = Refusal("failed", {"error": _first_line(exc)}), "failed"
                instance.steps = []
            finally:
                rt.instances.forget(instance_id)
        if len(rows) < batch:
            return ctx.report
        after = rows[-1][0]


def _move_one(rt: "Runtime", ctx: _Move, instance: InstanceMove) -> None:
    """One instance, in its own transaction: lock, check again, move, write, audit."""
    now = rt.now()
    with rt.sessions.begin() as session:
        tx = SqlTx(session)
        head = head_of(tx.one(LOCK_INSTANCE, {"instance": instance.id}))
        if head.version_id != ctx.old.id or head.status not in MOVABLE:
            instance.refusal, instance.outcome = Refusal("moved_meanwhile", {"frm": ctx.report.from_version}), "stayed"
            return
        workflow = rt.instances.workflow(session, tx, head.id, head.lock_version, head.version_id)
        calendar = rt.calendars.get(session, ctx.office_id)
        _evaluate(rt, session, tx, ctx, instance, workflow, calendar)
        if not instance.can_move:
            instance.outcome = "stayed"
            return
        uow = unit_of_work(tx, head)
        for step in instance.steps:
            uow.task(step.task_id, {"version_id": ctx.new.id, "bpmn_id": step.step, "name": step.name,
                                    "lane": step.lane, "group_id": step.group_id, "mutu_baku_minutes": step.minutes,
                                    "due_at": step.due}, expect={"state": "ready"})
            if step.retimed:
                deadlines.reschedule(uow, step.task_id, ctx.office_id, step.ready_at, step.minutes,
                                     step.paused_minutes, policy_of(ctx.new.steps.get(step.step, {})), calendar,
                                     step.paused)
                uow.audit("due_recomputed", office_id=ctx.office_id, instance_id=head.id, human_task_id=step.task_id,
                          user_id=ctx.actor_id, at=now, step=step.step, data={
                              "reason": "instance_migrated", "mutu_baku_before": step.minutes_before,
                              "mutu_baku": step.minutes, "due_before": _iso(step.due_before), "due_at": _iso(step.due)})
            spiff_task = workflow.get_task_from_id(UUID(step.guid))
            timers.set_step_timer(spiff_task, ctx.new.steps.get(step.step, {}).get("timer_id"),
                                  timers.PAUSED_TIMER if step.paused else step.due)
        uow.audit("instance_migrated", office_id=ctx.office_id, instance_id=head.id, user_id=ctx.actor_id, at=now,
                  data={"from": ctx.report.from_version, "to": ctx.report.to_version,
                        "steps": [{"task": s.task_id, "from": s.step_before, "to": s.step, "holder": s.holder,
                                   "mutu_baku": [s.minutes_before, s.minutes], "due_at": _iso(s.due)}
                                  for s in instance.steps]})
        uow.instance(head.id, head.lock_version, state=rt.store.workflow_to_dict(workflow), status=head.status,
                     completed_at=head.completed_at, next_timer_at=timers.next_timer(workflow), version_id=ctx.new.id)
        uow.flush()
    instance.outcome = "moved"


def _first_line(exc: Exception) -> str:
    """An error as one line (a database error's own message, not SQLAlchemy's wrapping)."""
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0][:300]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
