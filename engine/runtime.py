"""The engine service the CLI, the web app and the workers call: a thin facade.

Where the work is done, each in a module named for it:

| concern | module |
|---|---|
| start, claim, unclaim, reassign, draft, complete | engine/commands.py |
| the one write path (audit, steps, deadlines, pauses, the guarded instance write) | engine/uow.py |
| reads of a change, specs, workflows and their cache | engine/store.py |
| ready steps -> `human_task` rows | engine/mirror.py |
| who may do what | engine/access.py |
| the inbox, step and instance pages, startable SOPs | engine/inbox.py |
| BPMN timers (Mutu Baku) | engine/timers.py |
| pause, resume, calendar changes | engine/sla_clock.py |
| a pause as a request a supervisor decides | engine/pause_requests.py |
| reminder deadlines firing | engine/tick.py |
| run-time errors as incidents; retrying them; reading them | engine/incidents.py, incident_retry.py, incident_list.py |

`Runtime` holds what they share: the session factory, the clock (tests inject one), office
calendars per revision, and the instance store's caches of immutable or version-checked
things (specs per deployed version, workflows keyed by `lock_version`).
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from . import commands, incident_list, incident_retry, inbox, pause_requests, sla_clock, tick, timers
from .db import utcnow
from .inbox import VIEWS, TaskRow  # noqa: F401  (public names of the service)
from .models import ProcessDefinition
from .sla import CalendarCache
from .store import InstanceStore
from .timers import PAUSED_TIMER  # noqa: F401


class Runtime:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow,
                 workflow_cache_size: int = 512, allow_scripts: bool = False, settings=None):
        self.sessions = sessions
        self.settings = settings  # engine.config.Settings: links and channels of the messages a command sends
        self.clock = clock
        self.calendars = CalendarCache()
        self.instances = InstanceStore(workflow_cache_size, allow_scripts)
        self.store = self.instances.serializer  # the WorkflowStore (deploy and seeding use it)

    def bound(self, sessions) -> "Runtime":
        """This service on another session factory (a web request's one connection,
        engine.db.OneConnection), sharing the clock and every cache with this one."""
        clone = copy.copy(self)
        clone.sessions = sessions
        return clone

    def now(self) -> datetime:
        """The clock in UTC: everything is stored in UTC (SQLite keeps no offset)."""
        return self.clock().astimezone(timezone.utc)

    # ---- commands --------------------------------------------------------------------------
    def start(self, user_id: int, process_key: str, subject: str) -> int:
        return commands.start(self, user_id, process_key, subject)

    def claim(self, user_id: int, task_id: int) -> None:
        commands.claim(self, user_id, task_id)

    def unclaim(self, user_id: int, task_id: int) -> None:
        commands.unclaim(self, user_id, task_id)

    def reassign(self, user_id: int, task_id: int, to_username: str) -> None:
        commands.reassign(self, user_id, task_id, to_username)

    def save_draft(self, user_id: int, task_id: int, data: dict) -> None:
        commands.save_draft(self, user_id, task_id, data)

    def complete(self, user_id: int, task_id: int, data: dict, claim: bool = False,
                 checklist: list[str] | None = None) -> list[int]:
        return commands.complete(self, user_id, task_id, data, claim=claim, checklist=checklist)

    def cancel(self, user_id: int, instance_id: int, reason: str) -> None:
        commands.cancel(self, user_id, instance_id, reason)

    def validate_form(self, version, bpmn_id: str, data: dict) -> None:
        commands.validate_form(self, version, bpmn_id, data)

    # ---- the SLA clock ---------------------------------------------------------------------
    def pause(self, user_id: int, task_id: int, reason: str) -> str:
        """Stop the clock, or ask a supervisor to (engine/pause_requests.py): "paused" or "requested"."""
        return sla_clock.pause(self, user_id, task_id, reason)

    def decide_pause(self, user_id: int, request_id: int, approve: bool, note: str = "") -> str:
        return pause_requests.decide_pause(self, user_id, request_id, approve, note)

    def set_pause_mode(self, user_id: int | None, office_code: str, mode: str) -> None:
        pause_requests.set_mode(self, user_id, office_code, mode)

    def resume(self, user_id: int, task_id: int, reason: str = "") -> datetime | None:
        return sla_clock.resume(self, user_id, task_id, reason)

    def set_schedule(self, user_id: int | None, office_code: str, schedule: dict | None,
                     include_cuti_bersama: bool | None = None) -> int:
        return sla_clock.set_schedule(self, user_id, office_code, schedule, include_cuti_bersama)

    def set_override(self, user_id: int | None, office_code: str, day, working: bool | None,
                     note: str = "") -> int:
        return sla_clock.set_override(self, user_id, office_code, day, working, note)

    # ---- timers and reminders --------------------------------------------------------------
    def run_due_timers(self, limit: int = 100) -> int:
        return timers.run_due_timers(self, limit)

    def deadline_tick(self, settings, enqueue) -> "tick.TickResult":
        """What the beat tick runs: due BPMN timers, then due reminder deadlines and re-enqueues."""
        fired_timers = self.run_due_timers()
        result = tick.tick(self.sessions, settings, self.calendars, self.clock, enqueue)
        result.timers = fired_timers
        return result

    # ---- incidents ---------------------------------------------------------------------------
    def retry_incident(self, user_id: int | None, incident_id: int,
                       changes: dict | None = None) -> "incident_retry.RetryResult":
        return incident_retry.retry(self, user_id, incident_id, changes)

    def list_incidents(self, user_id: int | None, office_code: str | None = None, open_only: bool = True,
                       limit: int = 100, offset: int = 0) -> list["incident_list.IncidentRow"]:
        return incident_list.list_incidents(self, user_id, office_code, open_only, limit, offset)

    # ---- reads -----------------------------------------------------------------------------
    def list_tasks(self, user_id: int, view: str = "mine", limit: int = 200, offset: int = 0) -> list[TaskRow]:
        return inbox.list_tasks(self, user_id, view, limit, offset)

    def task_detail(self, user_id: int, task_id: int) -> dict:
        return inbox.task_detail(self, user_id, task_id)

    def lane_members(self, user_id: int, task_id: int) -> list[tuple[str, str]]:
        return inbox.lane_members(self, user_id, task_id)

    def instance_detail(self, user_id: int, instance_id: int) -> dict:
        return inbox.instance_detail(self, user_id, instance_id)

    def startable(self, user_id: int) -> list[ProcessDefinition]:
        return inbox.startable(self, user_id)

    def version_forms(self, version_id: int) -> tuple[dict, dict]:
        """(steps, forms) of a deployed version, from the same per-version cache completion uses."""
        fv = self.instances.cached_form_version(version_id)
        if fv is None:
            with self.sessions() as session:
                fv = self.instances.form_version(session, version_id)
        return fv.steps, fv.forms
