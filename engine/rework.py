"""Rework: a step sent back by a decision (TIDAK) goes to the person who did it, with the reason.

When a completion makes the flow return to a step this instance already went through, the
step opens again held by its previous holder (the one who completed it last), if they are
still active and in its lane; otherwise it opens in the lane's pool. The new step gets an
audit row `task_returned` with the reason (the decision form's reason field), who sent it
back and from which step; the inbox and the step page read that row. The holder (or, for a
pool step, the lane) is told through the reminders' own notification path
(`engine.tick.notify_user`): in the app, and by email/webhook when those are configured.

Why the previous holder: an Indonesian office expects the staff member who drafted the press
release to revise it, not whoever picks it from the pool next.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, exists, select
from SpiffWorkflow.util.task import TaskState

from .models import HumanTask, User, user_group
from .sqltx import SqlTx, Stmt

_T, _U = HumanTask.__table__, User.__table__
# every completed step of the instance, oldest first, with whether its completer is still
# active and a member of the step's lane
PREVIOUS_HOLDERS = Stmt(
    select(_T.c.bpmn_id, _T.c.completed_by_id, _U.c.active, _U.c.full_name,
           exists().where(user_group.c.user_id == _T.c.completed_by_id, user_group.c.group_id == _T.c.group_id))
    .select_from(_T.outerjoin(_U, _U.c.id == _T.c.completed_by_id))
    .where(_T.c.instance_id == bindparam("instance"), _T.c.state == "completed")
    .order_by(_T.c.completed_at, _T.c.id))

REASON_PREFIXES = ("alasan", "reason")


def reason_of(schema: dict, data: dict | None) -> str | None:
    """The reason a decision gave: the field marked `"x-lajur-reason": true` in its form, else
    the first filled text field whose name starts with "alasan" (Alasan Tidak Disetujui)."""
    data = data or {}
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    marked = [name for name, prop in props.items() if isinstance(prop, dict) and prop.get("x-lajur-reason")]
    named = [name for name in (list(props) or list(data)) if name.lower().startswith(REASON_PREFIXES)]
    for name in marked + named:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def done_before(workflow, spiff_task) -> bool:
    """Whether the workflow already completed this step once."""
    return any(t is not spiff_task and t.has_state(TaskState.COMPLETED)
               for t in workflow.get_tasks(spec_name=spiff_task.task_spec.name))


def goes_back(steps: dict, from_step: str, to_step: str) -> bool:
    """The flow moved backwards: to a step numbered before the one completed (steps' `no`, the
    SOP order derived from the BPMN at deploy). Going on from a redone step 1 to step 2 is not
    a return, though step 2 was done before too."""
    a, b = (steps.get(from_step) or {}).get("no"), (steps.get(to_step) or {}).get("no")
    return a is not None and b is not None and b <= a


class Return(NamedTuple):
    task_id: int      # the new step
    bpmn_id: str
    holder_id: int | None  # None: back to the lane's pool
    group_id: int | None
    holder_name: str | None = None


@dataclass
class ReturnRule:
    """`mirror`'s holder rule for a completion: a step the flow came back to goes to its
    previous holder. The completed steps are read only when a step did come back."""

    tx: SqlTx
    instance_id: int
    workflow: object
    steps: dict      # the version's steps (their `no`)
    from_step: str   # the step being completed
    returns: list[Return] = field(default_factory=list)
    _previous: dict | None = None

    def __call__(self, row_id: int, spiff_task, bpmn_id: str, lane: str | None, group_id: int | None) -> int | None:
        if not goes_back(self.steps, self.from_step, bpmn_id) or not done_before(self.workflow, spiff_task):
            return None
        if self._previous is None:
            self._previous = {}
            for bpmn, completed_by, active, full_name, member in self.tx.all(PREVIOUS_HOLDERS,
                                                                             {"instance": self.instance_id}):
                self._previous[bpmn] = (completed_by, bool(active), bool(member), full_name)
        completed_by, active, member, full_name = self._previous.get(bpmn_id, (None, False, False, None))
        holder = completed_by if completed_by is not None and active and member else None
        self.returns.append(Return(row_id, bpmn_id, holder, group_id, full_name if holder is not None else None))
        return holder


def starter_rule(user_id: int, lanes: set[str]):
    """`mirror`'s holder rule when an SOP starts: the starter holds the first steps of their own lanes."""
    def rule(row_id, spiff_task, bpmn_id, lane, group_id):
        return user_id if lane is not None and lane in lanes else None
    return rule


def returned_data(reason: str | None, by_id: int, by_name: str | None, from_task, holder_id: int | None,
                  now: datetime) -> dict:
    """The data of a `task_returned` audit row (what the inbox and the step page show)."""
    return {"reason": reason, "by": by_id, "by_name": by_name, "from_task": from_task.id,
            "from_step": from_task.bpmn_id, "from_name": from_task.name, "holder": holder_id, "at": now.isoformat()}
