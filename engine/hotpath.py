"""The SQL every state change runs, written once as text (see `rawtx` for why).

A completion is: one batch of reads (the task and its instance locked together, with all
the checks need to know; the instance's other open steps; an id for the step it will
probably open), the workflow run in Python, then one batch of writes (close the step, its
deadlines, the mirrored next step with its deadlines, the audit rows, and the instance
state guarded by `lock_version`), then COMMIT: three round trips on PostgreSQL.
`Runtime.start` and the timers write through the same statements.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from .rawtx import RawTx


class LockedTask(NamedTuple):
    """The locking read of a completion: the task, its instance, and the acting user."""

    id: int
    instance_id: int
    office_id: int
    version_id: int
    bpmn_id: str
    name: str
    lane: str | None
    group_id: int | None
    state: str
    assignee_id: int | None
    task_guid: str
    ready_at: datetime
    paused_at: datetime | None
    lock_version: int
    status: str
    calendar_revision: int
    was_paused: bool
    has_deliveries: bool
    holder: str | None
    user_id: int | None
    user_active: bool | None
    user_office_id: int | None
    user_roles: str | None
    username: str | None
    user_full_name: str | None
    member: bool


# The task and its instance locked together (a racing completion waits here, then sees the
# task closed); the office's calendar revision; whether the clock was ever paused and
# deliveries wait (else those tables are not touched); the holder's name for a conflict
# message; the acting user and whether they are in the step's lane. SQLite took its write
# lock at BEGIN already.
_LOCK_TASK = """
SELECT t.id, t.instance_id, t.office_id, t.version_id, t.bpmn_id, t.name, t.lane, t.group_id, t.state,
       t.assignee_id, t.task_guid, t.ready_at, t.paused_at, i.lock_version, i.status, o.calendar_revision,
       EXISTS (SELECT 1 FROM task_pause p WHERE p.human_task_id = t.id),
       EXISTS (SELECT 1 FROM delivery d WHERE d.human_task_id = t.id AND d.status IN ('pending', 'sending')),
       (SELECT h.full_name FROM user_account h WHERE h.id = t.assignee_id),
       u.id, u.active, u.office_id, u.roles, u.username, u.full_name,
       EXISTS (SELECT 1 FROM user_group g WHERE g.user_id = u.id AND g.group_id = t.group_id)
FROM human_task t
JOIN process_instance i ON i.id = t.instance_id
JOIN office o ON o.id = t.office_id
LEFT JOIN user_account u ON u.id = %(user)s
WHERE t.id = %(task)s"""
LOCK_TASK = {True: _LOCK_TASK + " FOR UPDATE OF t, i", False: _LOCK_TASK}

OPEN_TASKS_OF_TASK = """
SELECT id, task_guid, bpmn_id FROM human_task
WHERE instance_id = (SELECT instance_id FROM human_task WHERE id = %(task)s) AND state = 'ready'"""
OPEN_TASKS = "SELECT id, task_guid, bpmn_id FROM human_task WHERE instance_id = %(instance)s AND state = 'ready'"
INSTANCE_STATE = "SELECT state FROM process_instance WHERE id = %(instance)s"

# Starting: the user, the SOP of their office by key with its latest version, the user's lanes.
START_READ = """
SELECT u.id, u.active, u.office_id, d.latest_version_id, v.version, o.calendar_revision
FROM user_account u
LEFT JOIN office o ON o.id = u.office_id
LEFT JOIN process_definition d ON d.office_id = u.office_id AND d.key = %(key)s
LEFT JOIN process_version v ON v.id = d.latest_version_id
WHERE u.id = %(user)s"""
USER_LANES = """
SELECT g.name FROM user_group ug JOIN office_group g ON g.id = ug.group_id WHERE ug.user_id = %(user)s"""
INSERT_INSTANCE = """
INSERT INTO process_instance (id, office_id, version_id, subject, status, state, lock_version, started_by_id,
                              started_at)
VALUES (%(id)s, %(office_id)s, %(version_id)s, %(subject)s, 'running', %(state)s, 1, %(user)s, %(now)s)"""

# Closing the step: `claimed` when it was held; an unclaimed step is claimed by its completer.
_CLOSE = """
UPDATE human_task SET state = 'completed', completed_by_id = %(user)s, completed_at = %(now)s, data = %(data)s,
       draft = NULL, working_minutes = %(worked)s, paused_at = NULL, pause_reason = NULL{claim}
WHERE id = %(task)s"""
CLOSE_TASK = {True: _CLOSE.format(claim=""),
              False: _CLOSE.format(claim=", assignee_id = %(user)s, claimed_at = %(now)s")}
CLAIM_TASK = """
UPDATE human_task SET assignee_id = %(user)s, claimed_at = %(now)s
WHERE id = %(task)s AND state = 'ready' AND assignee_id IS NULL"""
CLOSE_PAUSE = """
UPDATE task_pause SET resumed_at = %(now)s, resume_reason = 'completed', resumed_by_id = %(user)s
WHERE human_task_id = %(task)s AND resumed_at IS NULL"""
CANCEL_DEADLINES = """
UPDATE deadline SET status = 'cancelled' WHERE human_task_id = %(task)s AND status IN ('pending', 'held')"""
CANCEL_TASK = "UPDATE human_task SET state = 'cancelled', completed_at = %(now)s WHERE id = %(task)s"

INSERT_TASK = """
INSERT INTO human_task (id, task_guid, instance_id, office_id, version_id, bpmn_id, name, lane, group_id, state,
                        mutu_baku_minutes, ready_at, due_at)
VALUES (%(id)s, %(task_guid)s, %(instance_id)s, %(office_id)s, %(version_id)s, %(bpmn_id)s, %(name)s, %(lane)s,
        %(group_id)s, 'ready', %(mutu_baku_minutes)s, %(ready_at)s, %(due_at)s)"""
INSERT_DEADLINE = """
INSERT INTO deadline (human_task_id, office_id, level, seq, at_fraction, due_at, status)
VALUES (%(human_task_id)s, %(office_id)s, %(level)s, %(seq)s, %(at_fraction)s, %(due_at)s, %(status)s)"""
INSERT_AUDIT = """
INSERT INTO audit_event (office_id, instance_id, human_task_id, user_id, at, kind, step, data)
VALUES (%(office_id)s, %(instance_id)s, %(human_task_id)s, %(user_id)s, %(at)s, %(kind)s, %(step)s, %(data)s)"""
WRITE_INSTANCE = """
UPDATE process_instance SET state = %(state)s, status = %(status)s, completed_at = %(completed_at)s,
       next_timer_at = %(next_timer_at)s, lock_version = %(seen)s + 1
WHERE id = %(instance)s AND lock_version = %(seen)s"""


class NewIds:
    """Ids for the rows of one table a change inserts, known before the batch that inserts them
    (other rows of the batch refer to them).

    PostgreSQL: the table's sequence (a change fetches one with its first reads; an id that
    ends up unused is a harmless gap). SQLite: max + 1, safe because the transaction holds the
    database's write lock since BEGIN IMMEDIATE."""

    table = ""

    @classmethod
    def probe(cls, postgres: bool) -> str:
        return (f"SELECT nextval('{cls.table}_id_seq')" if postgres
                else f"SELECT coalesce(max(id), 0) + 1 FROM {cls.table}")

    def __init__(self, tx: RawTx, first: int | None = None):
        self._tx, self._first, self._last = tx, first, None

    def take(self) -> int:
        if self._first is not None:
            value, self._first = self._first, None
        elif self._tx.postgres or self._last is None:
            value = self._tx.one(self.probe(self._tx.postgres), {})[0]
        else:
            value = self._last + 1
        self._last = value
        return value


class TaskIds(NewIds):
    table = "human_task"


class InstanceIds(NewIds):
    table = "process_instance"


@dataclass
class InstanceHead:
    """What a state change needs of its instance besides the workflow: who, which version,
    and the `lock_version` the change was computed from (the write is guarded by it)."""

    id: int
    office_id: int
    version_id: int
    status: str
    lock_version: int
    completed_at: datetime | None = None
    next_timer_at: datetime | None = None

    @classmethod
    def of(cls, instance) -> "InstanceHead":
        """The head of an instance loaded through the ORM (timers, pause and resume)."""
        return cls(instance.id, instance.office_id, instance.version_id, instance.status, instance.lock_version,
                   instance.completed_at, instance.next_timer_at)
