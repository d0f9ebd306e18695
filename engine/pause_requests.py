"""A pause of a step's SLA clock is a request (issue 14, finding 9).

Stopping the clock moves the step's due time, so a staff member may not do it alone: they
ask with a reason, every supervisor of the office gets an in-app notification, and a
supervisor approves (the clock stops then, not when asked: the wait for the decision is
counted) or refuses; the requester is told either way. An office may instead stop the
clock at once (`office.pause_mode = "immediate"`): the clock stops when asked and the
supervisors are told, with the request recorded as "immediate". A supervisor's own pause
never waits. Resuming is unchanged (engine/sla_clock.py): the due time moves on by the
paused working time.

Each change is one transaction on the step's locking read (engine/commands.step_change):
the request row, the clock, the notifications and the audit rows go through one unit of
work (engine/uow.py). Who may ask and who may decide is engine/access.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from . import access, limits
from .commands import step_change
from .db import as_utc
from .errors import Conflict, LajurError, NotFound
from .models import AuditEvent, HumanTask, Office, PauseRequest, ProcessInstance, User
from .sla_clock import check_clock, stop_clock
from .sqltx import SqlTx, Stmt
from .store import LockedTask
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import Runtime

MODES = ("approval", "immediate")

_R = PauseRequest.__table__
_U = User.__table__
_O = Office.__table__
_T = HumanTask.__table__
_I = ProcessInstance.__table__
_A = AuditEvent.__table__

PENDING_OF_TASK = Stmt(select(_R.c.id, _R.c.requested_by_id, _R.c.requested_at, _R.c.reason)
                       .where(_R.c.human_task_id == bindparam("task"), _R.c.status == "pending")
                       .order_by(_R.c.id.desc()).limit(1))
REQUEST = Stmt(select(_R.c.id, _R.c.human_task_id, _R.c.status, _R.c.requested_by_id, _R.c.reason, _R.c.office_id)
               .where(_R.c.id == bindparam("request")))
OFFICE_MODE = Stmt(select(_O.c.pause_mode).where(_O.c.id == bindparam("office")))
SUPERVISORS = Stmt(select(_U.c.id, _U.c.roles, _U.c.locale).where(_U.c.office_id == bindparam("office"),
                                                                  _U.c.active.is_(True)).order_by(_U.c.id))
USER = Stmt(select(_U.c.id, _U.c.full_name, _U.c.locale).where(_U.c.id == bindparam("user")))
SUBJECT = Stmt(select(_I.c.subject).where(_I.c.id == bindparam("instance")))

# the messages, by locale: (subject, body) templates
_TEXTS = {
    "id": {
        "pause_asked": ("[Lajur] Permintaan jeda: {step}",
                        "{who} meminta jam Mutu Baku langkah \"{step}\" ({subject}) dihentikan sementara.\n"
                        "Alasan: {reason}\nSetujui atau tolak di halaman langkah."),
        "pause_now": ("[Lajur] Jam Mutu Baku dijeda: {step}",
                      "{who} menghentikan sementara jam Mutu Baku langkah \"{step}\" ({subject}).\n"
                      "Alasan: {reason}"),
        "pause_ok": ("[Lajur] Jeda disetujui: {step}",
                     "{who} menyetujui jeda jam Mutu Baku langkah \"{step}\" ({subject}). Jam berhenti sejak "
                     "persetujuan; jalankan lagi bila yang ditunggu sudah ada.{note}"),
        "pause_no": ("[Lajur] Jeda ditolak: {step}",
                     "{who} menolak jeda jam Mutu Baku langkah \"{step}\" ({subject}). Jam tetap berjalan.{note}"),
    },
    "en": {
        "pause_asked": ("[Lajur] Pause requested: {step}",
                        "{who} asks to stop the time-standard clock of the step \"{step}\" ({subject}).\n"
                        "Reason: {reason}\nApprove or refuse on the step's page."),
        "pause_now": ("[Lajur] Clock paused: {step}",
                      "{who} stopped the time-standard clock of the step \"{step}\" ({subject}).\nReason: {reason}"),
        "pause_ok": ("[Lajur] Pause approved: {step}",
                     "{who} approved the pause of the step \"{step}\" ({subject}). The clock stopped at the "
                     "approval; resume it when what you wait for has arrived.{note}"),
        "pause_no": ("[Lajur] Pause refused: {step}",
                     "{who} refused the pause of the step \"{step}\" ({subject}). The clock keeps running.{note}"),
    },
}


def _locale(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "id"


def _message(kind: str, locale: str, **facts) -> tuple[str, str]:
    subject, body = _TEXTS[_locale(locale)][kind]
    note = facts.get("note")
    facts["note"] = ("\n" + ("Catatan" if _locale(locale) == "id" else "Note") + f": {note}") if note else ""
    return subject.format(**facts), body.format(**facts)


def _notify(uow: UnitOfWork, tx: SqlTx, task: LockedTask, kind: str, request_id: int, recipients: list[tuple],
            who: str, now: datetime, reason: str, note: str | None = None) -> None:
    """One in-app notification per recipient ((id, locale) pairs), linking to the step."""
    subject_row = tx.one(SUBJECT, {"instance": task.instance_id})
    case = subject_row[0] if subject_row else ""
    rows = []
    for user_id, locale in recipients:
        title, body = _message(kind, locale, step=task.name, subject=case, who=who, reason=reason, note=note)
        rows.append({"user_id": user_id, "office_id": task.office_id, "human_task_id": task.id,
                     "instance_id": task.instance_id, "level": kind, "seq": request_id, "subject": title[:300],
                     "body": body, "link": f"/tasks/{task.id}", "created_at": now,
                     "payload": {"pause_request": request_id, "reason": reason, "note": note}})
    uow.notify(rows)


def _supervisors(tx: SqlTx, office_id: int, but: int | None) -> list[tuple[int, str]]:
    return [(r[0], r[2]) for r in tx.all(SUPERVISORS, {"office": office_id})
            if "supervisor" in access.roles_of(r[1]) and r[0] != but]


def _next_request_id(tx: SqlTx, task_id: int) -> int:
    """The id the request just inserted got (read back in the same transaction)."""
    return tx.one(PENDING_OF_TASK_ANY, {"task": task_id})[0]


PENDING_OF_TASK_ANY = Stmt(select(_R.c.id).where(_R.c.human_task_id == bindparam("task"))
                           .order_by(_R.c.id.desc()).limit(1))


def request_pause(rt: "Runtime", user_id: int, task_id: int, reason: str) -> str:
    """Ask for (or, for a supervisor or an office that stops clocks at once, make) a pause of
    the step's clock. Returns "requested" or "paused"."""
    reason = limits.text("reason", reason, limits.REASON, required=True)[:500]
    now = rt.now()
    with step_change(rt, task_id, user_id) as (session, tx, task, actor, uow):
        check_clock(task, actor)
        if task.paused_at is not None:
            raise Conflict("the clock of this step is already paused")
        if tx.one(PENDING_OF_TASK, {"task": task.id}) is not None:
            raise Conflict("a pause of this step is already waiting for a supervisor's decision")
        mode = (tx.one(OFFICE_MODE, {"office": task.office_id}) or ("approval",))[0] or "approval"
        who = task.user_full_name or task.username or ""
        if actor.has_role("supervisor"):
            stop_clock(rt, session, uow, task, reason, task.user_id, task.user_id, now)
            return "paused"
        row = {"human_task_id": task.id, "instance_id": task.instance_id, "office_id": task.office_id,
               "requested_by_id": task.user_id, "requested_at": now, "reason": reason}
        if not access.pause_needs_approval(actor, mode == "approval"):
            uow.pause_requested({**row, "status": "immediate", "decided_at": now})
            uow.flush()  # the row first: its id numbers the notifications
            request_id = _next_request_id(tx, task.id)
            _notify(uow, tx, task, "pause_now", request_id, _supervisors(tx, task.office_id, task.user_id), who,
                    now, reason)
            stop_clock(rt, session, uow, task, reason, task.user_id, task.user_id, now,
                       {"pause_request": request_id, "mode": "immediate"})
            return "paused"
        uow.pause_requested({**row, "status": "pending"})
        uow.flush()
        request_id = _next_request_id(tx, task.id)
        _notify(uow, tx, task, "pause_asked", request_id, _supervisors(tx, task.office_id, task.user_id), who, now,
                reason)
        uow.audit("pause_requested", office_id=task.office_id, instance_id=task.instance_id, human_task_id=task.id,
                  user_id=task.user_id, at=now, step=task.bpmn_id, data={"reason": reason,
                                                                        "pause_request": request_id})
        uow.flush()
        return "requested"


def decide_pause(rt: "Runtime", user_id: int, request_id: int, approve: bool, note: str = "") -> str:
    """(Supervisor) approve or refuse a pending pause request. Approving stops the clock now.
    Returns "approved" or "refused"."""
    note = limits.text("note", note, limits.REASON)[:500] or None
    now = rt.now()
    with rt.sessions() as session:
        found = SqlTx(session).one(REQUEST, {"request": request_id})
    if found is None:
        raise NotFound(f"pause request {request_id} does not exist")
    with step_change(rt, found[1], user_id) as (session, tx, task, actor, uow):
        access.check_pause_decide(actor, task.office_id)
        request = tx.one(REQUEST, {"request": request_id})
        if request is None or request[2] != "pending":
            raise Conflict("this pause request was already decided")
        if task.state != "ready":
            raise Conflict("this step is already closed")
        status = "approved" if approve else "refused"
        uow.pause_decided(request_id, status, now, task.user_id, note)
        requester = tx.one(USER, {"user": request[3]}) if request[3] is not None else None
        who = task.user_full_name or task.username or ""
        if requester is not None:
            _notify(uow, tx, task, "pause_ok" if approve else "pause_no", request_id, [(requester[0], requester[2])],
                    who, now, request[4], note)
        uow.audit("pause_approved" if approve else "pause_refused", office_id=task.office_id,
                  instance_id=task.instance_id, human_task_id=task.id, user_id=task.user_id, at=now,
                  step=task.bpmn_id, data={"pause_request": request_id, "reason": request[4], "note": note,
                                           "requested_by": request[3]})
        if approve and task.paused_at is None:
            stop_clock(rt, session, uow, task, request[4], request[3], task.user_id, now,
                       {"pause_request": request_id, "approved_by": task.user_id})
        else:
            uow.flush()
        return status


# ---- reads ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PendingPause:
    id: int
    requested_by: str | None
    requested_at: datetime
    reason: str


@dataclass(frozen=True)
class LastResume:
    at: datetime
    due_before: datetime | None
    due_at: datetime | None
    paused_minutes: float | None


LAST_RESUME = Stmt(select(_A.c.at, _A.c.data).where(_A.c.human_task_id == bindparam("task"),
                                                    _A.c.kind == "clock_resumed")
                   .order_by(_A.c.id.desc()).limit(1))


def _when(text: str | None) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(text)) if text else None
    except ValueError:
        return None


def clock_state(session, task_id: int) -> tuple[PendingPause | None, LastResume | None]:
    """What the step page says about the clock: the pending request, and the last resume with
    the due time before and after it. The caller has checked the user may see the step."""
    tx = SqlTx(session)
    row = tx.one(PENDING_OF_TASK, {"task": task_id})
    pending = None
    if row is not None:
        name = tx.one(USER, {"user": row[1]}) if row[1] is not None else None
        pending = PendingPause(row[0], name[1] if name else None, tx.when(row[2]), row[3])
    resumed = tx.one(LAST_RESUME, {"task": task_id})
    last = None
    if resumed is not None:
        data = tx.document(resumed[1]) or {}
        last = LastResume(tx.when(resumed[0]), _when(data.get("due_before")), _when(data.get("due_at")),
                          data.get("paused_minutes"))
    return pending, last


def set_mode(rt: "Runtime", user_id: int | None, office_code: str, mode: str) -> None:
    """An office's pause setting ("approval" or "immediate"); an admin, the office's supervisor
    or its administrator (None: the console): access.check_pause_mode."""
    if mode not in MODES:
        raise LajurError(f"pause mode must be one of {', '.join(MODES)}")
    now = rt.now()
    with rt.sessions.begin() as session:
        office = session.scalar(select(Office).where(Office.code == office_code).with_for_update())
        if office is None:
            raise NotFound(f"office {office_code!r} does not exist")
        actor = access.load_actor(session, user_id) if user_id is not None else None
        access.check_pause_mode(actor, office.id)
        before = office.pause_mode
        office.pause_mode = mode
        session.flush()
        uow = UnitOfWork.on(session)
        uow.audit("pause_mode_changed", office_id=office.id, user_id=user_id, at=now,
                  data={"before": before, "after": mode})
        uow.flush()
