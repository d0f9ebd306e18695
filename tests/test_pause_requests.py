"""A pause of a step's clock is a request a supervisor decides (issue 14, finding 9), on both
databases: request, approve, refuse, the office's "immediate" mode, and the due times."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.audit import verify
from engine.errors import Conflict, Forbidden, FormInvalid, NotFound
from engine.models import AuditEvent, Deadline, Notification, PauseRequest
from engine.pause_requests import clock_state
from engine.timers import PAUSED_TIMER

from .helpers import open_task, stored_timer_times
from .sopdata import DPMK
from .test_sla import at, aware, wib


def _requests(services, task_id):
    with services.sessions() as s:
        return [(r.status, r.reason, r.requested_by_id, r.decided_by_id)
                for r in s.scalars(select(PauseRequest).where(PauseRequest.human_task_id == task_id)
                                   .order_by(PauseRequest.id))]


def _notes(services, task_id):
    with services.sessions() as s:
        return sorted((n.user_id, n.level) for n in s.scalars(select(Notification).where(
            Notification.human_task_id == task_id)))


def _kinds(services, task_id):
    with services.sessions() as s:
        return [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.human_task_id == task_id)
                                           .order_by(AuditEvent.id))]


def _request_id(services, task_id):
    with services.sessions() as s:
        return s.scalar(select(PauseRequest.id).where(PauseRequest.human_task_id == task_id)
                        .order_by(PauseRequest.id.desc()))


def test_staff_request_waits_for_the_supervisor_and_the_due_time_moves_from_the_approval(services, demo):
    rt = services.runtime
    penerima, kasubbag, sekdin = demo["dpmk.penerima"], demo["dpmk.kasubbag"], demo["dpmk.sekdin"]
    at(services, wib(2026, 11, 23, 8, 0))  # Monday; step 1 has a Mutu Baku of 120 minutes
    iid = rt.start(penerima, DPMK, "Jeda diminta")
    task = open_task(services, iid)
    assert aware(task.due_at) == wib(2026, 11, 23, 10, 0)
    rt.claim(penerima, task.id)

    at(services, wib(2026, 11, 23, 9, 0))
    with pytest.raises(FormInvalid):
        rt.pause(penerima, task.id, "   ")
    with pytest.raises(Forbidden):  # not in the lane
        rt.pause(demo["dpmk.operator"], task.id, "bukan lajur saya")
    assert rt.pause(penerima, task.id, "Menunggu rilis pers revisi") == "requested"
    task = open_task(services, iid)
    assert task.paused_at is None and aware(task.due_at) == wib(2026, 11, 23, 10, 0)  # the clock still runs
    assert _requests(services, task.id) == [("pending", "Menunggu rilis pers revisi", penerima, None)]
    # every supervisor of the office is told, the requester is not
    assert _notes(services, task.id) == sorted([(kasubbag, "pause_asked"), (sekdin, "pause_asked")])
    with pytest.raises(Conflict):  # one request at a time
        rt.pause(penerima, task.id, "lagi")
    with services.sessions() as s:
        pending, _ = clock_state(s, task.id)
    assert pending.reason == "Menunggu rilis pers revisi" and pending.requested_by == "Rina Wulandari"

    request_id = _request_id(services, task.id)
    with pytest.raises(Forbidden):  # staff do not decide
        rt.decide_pause(penerima, request_id, True)
    with pytest.raises(Forbidden):  # a supervisor of another office neither
        rt.decide_pause(demo["dinsos.ketua"], request_id, True)
    with pytest.raises(NotFound):
        rt.decide_pause(kasubbag, 987654, True)

    at(services, wib(2026, 11, 23, 9, 30))
    assert rt.decide_pause(kasubbag, request_id, True, "Silakan") == "approved"
    task = open_task(services, iid)
    assert aware(task.paused_at) == wib(2026, 11, 23, 9, 30)  # stopped at the approval, not the request
    assert stored_timer_times(services, iid) == [PAUSED_TIMER]
    with services.sessions() as s:
        assert {d.status for d in s.scalars(select(Deadline).where(Deadline.human_task_id == task.id))} == {"held"}
    assert _requests(services, task.id) == [("approved", "Menunggu rilis pers revisi", penerima, kasubbag)]
    assert (penerima, "pause_ok") in _notes(services, task.id)
    with pytest.raises(Conflict):  # decided once
        rt.decide_pause(sekdin, request_id, False)

    at(services, wib(2026, 11, 23, 10, 30))
    due = rt.resume(penerima, task.id, "Rilis revisi diterima")
    # 60 working minutes paused: 10:00 + 60 = 11:00
    assert due == wib(2026, 11, 23, 11, 0) == aware(open_task(services, iid).due_at)
    assert stored_timer_times(services, iid) == [wib(2026, 11, 23, 11, 0)]
    with services.sessions() as s:
        pending, resumed = clock_state(s, task.id)
    assert pending is None
    assert (resumed.due_before, resumed.due_at) == (wib(2026, 11, 23, 10, 0), wib(2026, 11, 23, 11, 0))
    assert _kinds(services, task.id)[-4:] == ["pause_requested", "pause_approved", "clock_paused", "clock_resumed"]
    with services.sessions() as s:
        assert verify(s).broken is None  # the audit chain holds across the request rows


def test_a_refused_request_leaves_the_clock_running(services, demo):
    rt = services.runtime
    penerima, kasubbag = demo["dpmk.penerima"], demo["dpmk.kasubbag"]
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(penerima, DPMK, "Jeda ditolak")
    task = open_task(services, iid)
    at(services, wib(2026, 11, 23, 8, 30))
    assert rt.pause(penerima, task.id, "Menunggu foto") == "requested"  # a lane member while unclaimed
    at(services, wib(2026, 11, 23, 8, 45))
    assert rt.decide_pause(kasubbag, _request_id(services, task.id), False, "Foto ada di berkas") == "refused"
    task = open_task(services, iid)
    assert task.paused_at is None and aware(task.due_at) == wib(2026, 11, 23, 10, 0)
    assert stored_timer_times(services, iid) == [wib(2026, 11, 23, 10, 0)]
    assert _requests(services, task.id) == [("refused", "Menunggu foto", penerima, kasubbag)]
    assert (penerima, "pause_no") in _notes(services, task.id)
    with services.sessions() as s:
        note = s.scalar(select(Notification).where(Notification.user_id == penerima,
                                                   Notification.level == "pause_no"))
    assert "Foto ada di berkas" in note.body and note.link == f"/tasks/{task.id}"
    assert "clock_paused" not in _kinds(services, task.id)
    # a new request may follow a refused one
    assert rt.pause(penerima, task.id, "Menunggu foto yang lain") == "requested"


def test_immediate_office_stops_at_once_and_tells_the_supervisors(services, demo):
    rt = services.runtime
    penerima, kasubbag, sekdin = demo["dpmk.penerima"], demo["dpmk.kasubbag"], demo["dpmk.sekdin"]
    with pytest.raises(Forbidden):
        rt.set_pause_mode(penerima, "dpmk", "immediate")
    rt.set_pause_mode(kasubbag, "dpmk", "immediate")
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(penerima, DPMK, "Jeda langsung")
    task = open_task(services, iid)
    at(services, wib(2026, 11, 23, 9, 0))
    assert rt.pause(penerima, task.id, "Menunggu narasumber") == "paused"
    task = open_task(services, iid)
    assert aware(task.paused_at) == wib(2026, 11, 23, 9, 0)
    assert _requests(services, task.id) == [("immediate", "Menunggu narasumber", penerima, None)]
    assert _notes(services, task.id) == sorted([(kasubbag, "pause_now"), (sekdin, "pause_now")])
    at(services, wib(2026, 11, 23, 9, 45))
    assert rt.resume(penerima, task.id) == wib(2026, 11, 23, 10, 45)


def test_a_supervisors_own_pause_needs_no_request(services, demo):
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Jeda atasan")
    task = open_task(services, iid)
    assert rt.pause(demo["dpmk.kasubbag"], task.id, "Rapat pimpinan") == "paused"
    assert open_task(services, iid).paused_at is not None
    assert _requests(services, task.id) == [] and _notes(services, task.id) == []


def test_bad_pause_mode_is_refused(services, demo):
    from engine.errors import LajurError
    with pytest.raises(LajurError):
        services.runtime.set_pause_mode(None, "dpmk", "sometimes")
    with pytest.raises(NotFound):
        services.runtime.set_pause_mode(None, "nope", "immediate")


def test_completing_the_step_withdraws_its_pending_request(services, demo):
    from .sopdata import STEP_DATA
    rt = services.runtime
    penerima, kasubbag = demo["dpmk.penerima"], demo["dpmk.kasubbag"]
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(penerima, DPMK, "Jeda lalu selesai")
    task = open_task(services, iid)
    at(services, wib(2026, 11, 23, 8, 30))
    assert rt.pause(penerima, task.id, "Menunggu foto") == "requested"
    at(services, wib(2026, 11, 23, 9, 0))
    rt.complete(penerima, task.id, STEP_DATA[(DPMK, "step1")])
    assert _requests(services, task.id) == [("withdrawn", "Menunggu foto", penerima, penerima)]
    kinds = _kinds(services, task.id)
    assert kinds[-2:] == ["pause_withdrawn", "task_completed"]  # one transaction: withdrawn, then completed
    with services.sessions() as s:
        request = s.get(PauseRequest, _request_id(services, task.id))
        assert aware(request.decided_at) == wib(2026, 11, 23, 9, 0) and request.decision_note == "completed"
        pending, _ = clock_state(s, task.id)
        assert pending is None
        assert verify(s).broken is None
    with pytest.raises(Conflict):  # nothing left for the supervisor to decide
        rt.decide_pause(kasubbag, request.id, True, "")
