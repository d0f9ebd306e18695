"""Who may do what: the one place the access rules are written.

The engine's commands and reads and the web's views ask these functions; nothing else
decides. An `Actor` is the acting user as the rules need them (id, office, roles, lanes),
built from whatever the caller read: an ORM `User`, the web's `UserView`, or the locking
read of a step command. A "step" is anything with `office_id`, `group_id`, `assignee_id`
and `state` (a `HumanTask`, a `LockedTask`, a `TaskHead`).

The rules:
- see: an office's steps, instances and SOPs are seen by its members; admins see every office.
- start: a member of the office who is in the lane of one of the SOP's first steps.
- claim, complete, draft (act on a step): a member of the office (or an admin) in the step's lane.
- release (unclaim): the holder, or a supervisor of the office.
- reassign: a supervisor of the office, to an active member of the step's lane.
- pause / resume the step's clock: the holder, a member of the lane while nobody holds
  it, or a supervisor of the office.
- change an office's calendar: an admin, or a supervisor of that office (None: the console).
- deploy: a process owner of the office (None: the console operator).
- an SOP's process page (versions, diff) and moving its running instances between versions:
  a process owner of the office (None: the console operator); another office's is not seen.
- incidents (the list, an incident's data): process owners and supervisors of the office;
  admins for any office. Retry an incident, correct its data: a process owner of the office
  or an admin (None: the console operator).
- edit an SOP in the studio (see, save, publish its draft): a process owner of the office only.
- the dashboard and every open step of the office: supervisors of the office; admins for
  any office or the whole regency.
- the installation's status (heartbeats, tick lag, outbox): admins only.
- an office's event webhooks: its office_admin, an admin, the console (`check_webhooks`).
- the instance list: admins every office's instances, supervisors their office's, anyone
  else the instances they started or held or completed a step of.
- a pause request: the holder (or a lane member while nobody holds the step) asks; a
  supervisor of the office decides; a supervisor pauses at once without asking.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .errors import Forbidden, OtherOffice
from .models import User, user_group


def roles_of(text: str | None) -> frozenset[str]:
    """Roles as stored (comma separated) -> a set."""
    return frozenset(r for r in (text or "").split(",") if r)


@dataclass(frozen=True)
class Actor:
    id: int
    office_id: int | None
    roles: frozenset[str]
    group_ids: frozenset[int] = frozenset()

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @classmethod
    def of_user(cls, user, group_ids=()) -> "Actor":
        """From an ORM User (or anything with id, office_id, roles as text) and its lane ids."""
        return cls(user.id, user.office_id, roles_of(user.roles), frozenset(group_ids))

    @classmethod
    def of_view(cls, view) -> "Actor":
        """From the web's UserView (engine.queries) or its StaffUser wrapper."""
        view = getattr(view, "view", view)
        return cls(view.id, view.office_id, frozenset(view.roles), frozenset(view.group_ids))

    @classmethod
    def of_locked(cls, task) -> "Actor":
        """From the locking read of a step command (it knows only this step's lane)."""
        return cls(task.user_id, task.user_office_id, roles_of(task.user_roles),
                   frozenset({task.group_id}) if task.member and task.group_id is not None else frozenset())


def check_active(found: bool, active: bool | None) -> None:
    if not found or not active:
        raise Forbidden("unknown or inactive user")


_U = User.__table__
_ACTOR = (select(_U.c.id, _U.c.office_id, _U.c.roles, _U.c.active, user_group.c.group_id)
          .outerjoin(user_group, user_group.c.user_id == _U.c.id).where(_U.c.id == bindparam("user")))


def load_actor(session: Session, user_id: int) -> Actor:
    """The active user with their lanes, in one statement; Forbidden if unknown or inactive."""
    rows = session.execute(_ACTOR, {"user": user_id}).all()
    check_active(bool(rows), rows[0].active if rows else None)
    first = rows[0]
    return Actor(first.id, first.office_id, roles_of(first.roles),
                 frozenset(r.group_id for r in rows if r.group_id is not None))


# ---- seeing ---------------------------------------------------------------------------------

def may_see(actor: Actor, office_id: int | None) -> bool:
    return actor.office_id == office_id or actor.has_role("admin")


def check_see(actor: Actor, office_id: int | None) -> None:
    if not may_see(actor, office_id):
        raise OtherOffice("this belongs to another office")


def check_office_view(actor: Actor) -> None:
    """Every open step of the office (the inbox's "office" view)."""
    if not actor.has_role("supervisor"):
        raise Forbidden("only supervisors see every open task of the office")


def dashboard_office(actor: Actor, requested: int | None) -> int | None:
    """The office whose dashboard the actor may read: an admin any (None: the whole regency),
    a supervisor their own; anyone else is refused."""
    if actor.has_role("admin"):
        return requested
    if actor.has_role("supervisor") and actor.office_id is not None:
        return actor.office_id
    raise Forbidden("only supervisors and admins read the dashboard")


def instance_list_scope(actor: Actor) -> str:
    """Which instances the instance list shows the actor: "all" (admin, every office),
    "office" (a supervisor: their office's), "own" (anyone else: those they started or held or
    completed a step of)."""
    if actor.has_role("admin"):
        return "all"
    if actor.has_role("supervisor"):
        return "office"
    return "own"


# ---- starting -------------------------------------------------------------------------------

def may_start(lanes_of_actor: set[str], start_lanes: set[str]) -> bool:
    return bool(start_lanes & lanes_of_actor)


def check_start(lanes_of_actor: set[str], start_lanes: set[str]) -> None:
    if not may_start(lanes_of_actor, start_lanes):
        raise Forbidden(f"only members of {', '.join(sorted(start_lanes))} may start this SOP")


# ---- acting on a step -----------------------------------------------------------------------

def in_lane(actor: Actor, task) -> bool:
    return task.group_id is not None and task.group_id in actor.group_ids


def may_act(actor: Actor, task) -> bool:
    """Claim, complete, save a draft (the step's state is the command's concern)."""
    return may_see(actor, task.office_id) and in_lane(actor, task)


def check_act(actor: Actor, task) -> None:
    check_see(actor, task.office_id)
    if not in_lane(actor, task):
        raise Forbidden(f"step {task.name!r} belongs to lane {task.lane!r}, which you are not in"
                        if hasattr(task, "name") else "this step belongs to another lane")


def check_release(actor: Actor, task) -> None:
    check_see(actor, task.office_id)
    if task.assignee_id != actor.id and not actor.has_role("supervisor"):
        raise Forbidden("only the holder or a supervisor may release this step")


def check_reassign(actor: Actor, task) -> None:
    check_see(actor, task.office_id)
    if not actor.has_role("supervisor"):
        raise Forbidden("only a supervisor may reassign a step")


def may_clock(actor: Actor, task) -> bool:
    """Pause or resume the step's clock."""
    if not may_see(actor, task.office_id):
        return False
    return actor.has_role("supervisor") or task.assignee_id == actor.id or (
        task.assignee_id is None and in_lane(actor, task))


def check_clock(actor: Actor, task) -> None:
    check_see(actor, task.office_id)
    if not may_clock(actor, task):
        raise Forbidden("only the holder, a member of the lane while unclaimed, or a supervisor may pause or "
                        "resume this step's clock")


def pause_needs_approval(actor: Actor, office_requires_approval: bool) -> bool:
    """Whether a pause by this actor is a request a supervisor decides (the office's setting
    `pause_approval`) rather than a stop of the clock at once. A supervisor's own pause never waits."""
    return office_requires_approval and not actor.has_role("supervisor")


def check_pause_decide(actor: Actor, office_id: int | None) -> None:
    """Approve or refuse a pause request: a supervisor of the step's office."""
    check_see(actor, office_id)
    if not actor.has_role("supervisor") or actor.office_id != office_id:
        raise Forbidden("only a supervisor of this office may approve or refuse a pause request")


def may_decide_pause(actor: Actor, office_id: int | None) -> bool:
    return actor.has_role("supervisor") and actor.office_id == office_id


# ---- the office -----------------------------------------------------------------------------

def check_calendar(actor: Actor | None, office_id: int) -> None:
    """`None` is the operator at the console."""
    if actor is None:
        return
    if not (actor.has_role("admin") or (actor.has_role("supervisor") and actor.office_id == office_id)):
        raise Forbidden("only an admin or the office's supervisor may change its calendar")


def check_pause_mode(actor: Actor | None, office_id: int) -> None:
    """Whether a staff pause waits for a supervisor or stops the clock at once: the calendar's
    people (an admin, the office's supervisor) and the office's administrator (its admin page)."""
    if actor is not None and actor.office_id == office_id and actor.has_role("office_admin"):
        return
    check_calendar(actor, office_id)


def may_deploy(actor: Actor | None, office_id: int) -> bool:
    """`None` is the operator at the console."""
    return actor is None or (actor.has_role("process_owner") and actor.office_id == office_id)


def check_deploy(actor: Actor | None, office_id: int) -> None:
    if not may_deploy(actor, office_id):
        raise Forbidden("only a process owner of this office may deploy its processes")


def may_manage_process(actor: Actor | None, office_id: int) -> bool:
    """The process page of an office's SOPs and migrating their running instances (engine/migration.py)."""
    return actor is None or (actor.has_role("process_owner") and actor.office_id == office_id)


def check_manage_process(actor: Actor | None, office_id: int) -> None:
    if actor is None:
        return
    if actor.office_id != office_id:
        raise OtherOffice("this SOP belongs to another office")
    if not may_manage_process(actor, office_id):
        raise Forbidden("only a process owner of this office may manage its SOPs' versions and instances")
def may_edit_process(actor: Actor, office_id: int) -> bool:
    """The browser studio (engine/studio): the process page's rule for a signed-in user (the
    office's own process owners; not a regency admin of another office: publishing deploys code)."""
    return actor is not None and may_manage_process(actor, office_id)


def check_edit_process(actor: Actor, office_id: int) -> None:
    if not may_edit_process(actor, office_id):
        raise Forbidden("only a process owner of this office may edit its SOPs")


def may_administer(actor: Actor | None, office_id: int) -> bool:
    """Who may manage an office's groups and people: the console (no actor), an admin, the
    office's own office_admin."""
    if actor is None or actor.has_role("admin"):
        return True
    return actor.office_id == office_id and actor.has_role("office_admin")


def check_administer(actor: Actor | None, office_id: int) -> None:
    if not may_administer(actor, office_id):
        raise Forbidden("only an admin or this office's administrator may change its groups and people")


# ---- registers, papers, publication checks (engine/registers.py, engine/published.py) ---------

def check_read_registers(actor: Actor, office_id: int | None) -> None:
    """The Buku Agenda and the Daftar Arsip are the office's: its members read them."""
    check_see(actor, office_id)


def check_define_registers(actor: Actor | None, office_id: int) -> None:
    """Registers, their templates and the letterhead: the office's administrator (or an admin)."""
    if not may_administer(actor, office_id):
        raise Forbidden("only an admin or this office's administrator may change its registers and letterhead")


def check_retry_publication(actor: Actor, office_id: int, completed_by: int | None = None) -> None:
    """A failed check of a published URL is retried by the operator who recorded it or by a
    supervisor of the office."""
    check_see(actor, office_id)
    if not (actor.has_role("supervisor") or actor.has_role("admin") or actor.id == completed_by):
        raise Forbidden("only the operator who recorded the link or a supervisor may check it again")


def check_cancel_instance(actor: Actor, office_id: int) -> None:
    """Cancelling a running instance: a supervisor of its office (or an admin)."""
    check_see(actor, office_id)
    if not (actor.has_role("supervisor") or actor.has_role("admin")):
        raise Forbidden("only a supervisor may cancel a process")

def may_see_status(actor: Actor | None) -> bool:
    """The installation's status page (heartbeats, tick lag, outbox): the regency's admins
    (the console's `lajur status` is the operator's)."""
    return actor is not None and actor.has_role("admin")


def check_status(actor: Actor | None) -> None:
    if not may_see_status(actor):
        raise Forbidden("only an admin may see the installation's status")


# ---- incidents --------------------------------------------------------------------------------

def may_see_incidents(actor: Actor | None, office_id: int | None = None) -> bool:
    """The incident list and an incident's data. `office_id` None: of the actor's own office."""
    if actor is None or actor.has_role("admin"):
        return True
    return ((office_id is None or actor.office_id == office_id)
            and (actor.has_role("process_owner") or actor.has_role("supervisor")))


def check_see_incidents(actor: Actor | None, office_id: int | None = None) -> None:
    if actor is not None and office_id is not None and not may_see(actor, office_id):
        raise OtherOffice("this belongs to another office")
    if not may_see_incidents(actor, office_id):
        raise Forbidden("only the office's process owners and supervisors see its incidents")


def may_retry_incident(actor: Actor | None, office_id: int) -> bool:
    """Retry an incident and correct the data it names. `None` is the operator at the console."""
    return actor is None or actor.has_role("admin") or (
        actor.has_role("process_owner") and actor.office_id == office_id)


def check_retry_incident(actor: Actor | None, office_id: int) -> None:
    if actor is not None and not may_see(actor, office_id):
        raise OtherOffice("this belongs to another office")
    if not may_retry_incident(actor, office_id):
        raise Forbidden("only a process owner of this office may retry an incident or correct its data")


def check_webhooks(actor: Actor | None, office_id: int) -> None:
    """An office's event webhooks (subscriptions, delivery log, send again) are its
    administrator's, like its groups and people: an admin, the office's office_admin, the console."""
    if not may_administer(actor, office_id):
        raise Forbidden("only an admin or this office's administrator may manage its webhooks")
