"""Issue 14 in the engine, on both backends: a step sent back reaches its author with the reason
(finding 1), the starter holds step 1 and completing needs holding (finding 8), the Persyaratan
checklist is required where the SOP says so and recorded (finding 7), the Mutu Baku clock in
working time (finding 3) and messages that read as messages (finding 4)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
import json
import shutil

import pytest
from sqlalchemy import select

from engine import notify, requirements
from engine.calendar import OfficeCalendar
from engine.config import Settings
from engine.errors import Conflict, DeployError, FormInvalid
from engine.models import AuditEvent, Delivery, HumanTask, Notification
from engine.sla import due_time, off_clock, working_left

from .helpers import open_task, work_step
from .sopdata import DINSOS, DPMK, REJECT, STEP_DATA, checklist

STARTER = {DPMK: "dpmk.penerima", DINSOS: "dinsos.petugas"}
PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def _to_decision(services, demo, key, subject):
    iid = services.runtime.start(demo[STARTER[key]], key, subject)
    work_step(services, demo, key, iid, "step1")
    work_step(services, demo, key, iid, "step2")
    return iid


# ---- finding 1: the TIDAK loop reaches the author -----------------------------------------------

@pytest.mark.parametrize("key", [DPMK, DINSOS])
def test_a_rejection_goes_back_to_its_author_with_the_reason(services, demo, key):
    iid = _to_decision(services, demo, key, "Berita ditolak")
    work_step(services, demo, key, iid, "step3", reject=True)
    reason = next(v for k, v in REJECT[(key, "step3")].items() if k.startswith("alasan"))
    back = open_task(services, iid)
    author = demo[STARTER[key]]
    assert back.bpmn_id == "step1" and back.assignee_id == author and back.claimed_at is not None
    # the author's own inbox, marked with the reason
    mine = services.runtime.list_tasks(author, "mine")
    assert [r.id for r in mine] == [back.id] and mine[0].returned["reason"] == reason
    assert services.runtime.list_tasks(author, "group") == []
    with services.sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.human_task_id == back.id,
                                                        AuditEvent.kind == "task_returned"))
        assert event.data["reason"] == reason and event.data["holder"] == author
        assert event.data["from_step"] == "step3"
        notes = session.scalars(select(Notification).where(Notification.human_task_id == back.id)).all()
        assert [(n.user_id, n.level) for n in notes] == [(author, "returned")]
        assert reason in notes[0].body and "Dikembalikan" in notes[0].subject and notes[0].inapp
        assert notes[0].link.endswith(f"/tasks/{back.id}")
        # no SMTP server configured here: no email delivery to fail in the background
        assert session.scalars(select(Delivery).where(Delivery.notification_id == notes[0].id)).all() == []
    # the resubmission completes the round; the next TIDAK returns to the same author again
    work_step(services, demo, key, iid, "step1")
    onward = open_task(services, iid)  # going on to step 2 again is not a return
    assert onward.bpmn_id == "step2" and onward.assignee_id is None
    with services.sessions() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.human_task_id == onward.id,
                                                       AuditEvent.kind == "task_returned")) is None
    work_step(services, demo, key, iid, "step2")
    work_step(services, demo, key, iid, "step3", reject=True)
    assert open_task(services, iid).assignee_id == author


def test_a_return_goes_to_the_pool_when_the_author_left_the_lane(services, demo):
    from engine.accounts import create_user, office_by_code
    from engine.models import Group, User, user_group
    with services.sessions.begin() as session:
        create_user(session, "dpmk.penerima2", "rahasia-123", "Tono", office_by_code(session, "dpmk"),
                    groups=("Petugas Penerima Berita/Informasi",))
    iid = _to_decision(services, demo, DPMK, "Penulis pindah")
    with services.sessions.begin() as session:
        group = session.scalar(select(Group.id).where(Group.name == "Petugas Penerima Berita/Informasi"))
        session.execute(user_group.delete().where(user_group.c.user_id == demo["dpmk.penerima"],
                                                  user_group.c.group_id == group))
    work_step(services, demo, DPMK, iid, "step3", reject=True)
    back = open_task(services, iid)
    assert back.assignee_id is None
    with services.sessions() as session:
        told = {session.get(User, n.user_id).username for n in session.scalars(
            select(Notification).where(Notification.human_task_id == back.id))}
    assert told == {"dpmk.penerima2"}  # the lane's members, since nobody holds it


# ---- finding 8: holding a step ---------------------------------------------------------------

def test_the_starter_holds_step1_and_completing_needs_holding(services, demo):
    rt = services.runtime
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Pegang langkah")
    first = open_task(services, iid)
    assert first.assignee_id == demo["dpmk.penerima"]
    rt.complete(demo["dpmk.penerima"], first.id, STEP_DATA[(DPMK, "step1")])
    second = open_task(services, iid)
    assert second.assignee_id is None  # Kasubbag's step opens in its lane's pool
    with pytest.raises(Conflict, match="take this step first"):
        rt.complete(demo["dpmk.kasubbag"], second.id, STEP_DATA[(DPMK, "step2")])
    assert open_task(services, iid).id == second.id  # nothing changed
    rt.complete(demo["dpmk.kasubbag"], second.id, STEP_DATA[(DPMK, "step2")], claim=True)
    with services.sessions() as session:
        kinds = [e.kind for e in session.scalars(select(AuditEvent).where(AuditEvent.human_task_id == second.id)
                                                  .order_by(AuditEvent.id))]
    assert kinds[-2:] == ["task_claimed", "task_completed"]


# ---- finding 7: the Persyaratan checklist ---------------------------------------------------------

def test_required_checklist_is_enforced_and_recorded(services, demo):
    rt = services.runtime
    iid = rt.start(demo["dinsos.petugas"], DINSOS, "Checklist")
    for step in ("step1", "step2", "step3"):
        work_step(services, demo, DINSOS, iid, step)
    last = open_task(services, iid)
    user = demo["dinsos.pengelola"]
    rt.claim(user, last.id)
    with pytest.raises(FormInvalid) as err:
        rt.complete(user, last.id, STEP_DATA[(DINSOS, "step4")])
    assert requirements.KEY in err.value.errors
    with pytest.raises(FormInvalid):
        rt.complete(user, last.id, STEP_DATA[(DINSOS, "step4")], checklist=["Bukan persyaratan"])
    items = checklist(DINSOS, "step4")
    rt.complete(user, last.id, STEP_DATA[(DINSOS, "step4")], checklist=items)
    with services.sessions() as session:
        done = session.get(HumanTask, last.id)
        assert done.data[requirements.KEY] == items
        event = session.scalar(select(AuditEvent).where(AuditEvent.human_task_id == last.id,
                                                        AuditEvent.kind == "task_completed"))
        assert event.data[requirements.KEY] == items


def test_checklists_do_not_repeat_form_fields():
    assert requirements.repeats("Nomor urut (Buku Agenda)", ["Nomor Urut Buku Agenda"]) == "Nomor Urut Buku Agenda"
    assert requirements.repeats("Paraf Kabid pada bagian berita yang disetujui",
                                ["Paraf Kabid pada bagian berita yang disetujui ada"])
    assert requirements.repeats("Press Release diberi disposisi/form", ["Nomor Urut Buku Agenda"]) is None
    from engine.bpmn import load_process_folder
    for key in (DPMK, DINSOS):
        load_process_folder(PROCESSES / key)  # the shipped SOPs pass the deploy rule


def test_deploy_refuses_a_checklist_item_that_repeats_a_field(tmp_path):
    from engine.bpmn import load_process_folder
    folder = tmp_path / DPMK
    shutil.copytree(PROCESSES / DPMK, folder)
    sop = json.loads((folder / "sop.json").read_text())
    sop["steps"]["step2"]["requirements"] = ["Paraf Kabid pada bagian berita yang disetujui"]
    (folder / "sop.json").write_text(json.dumps(sop, ensure_ascii=False))
    with pytest.raises(DeployError, match="repeats the form field"):
        load_process_folder(folder)


# ---- finding 3: the clock counts working time ------------------------------------------------------

def test_a_120_minute_step_across_lunch_has_120_working_minutes_left():
    calendar = OfficeCalendar()
    ready = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)  # Tuesday 10:30 WIB
    due = due_time(calendar, ready, 120)
    assert due == datetime(2026, 11, 24, 6, 30, tzinfo=timezone.utc)  # 13:30 WIB: the 12:00-13:00 break is not counted
    assert working_left(calendar, due, ready) == 120
    assert (due - ready).total_seconds() / 60 == 180  # the wall clock would say "2 jam 59" a minute later
    assert off_clock(calendar, ready, due) == [(datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc),
                                                datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc))]
    assert working_left(calendar, due, due.replace(hour=7)) == -60  # 14:30 WIB: an hour late


# ---- finding 4: messages ----------------------------------------------------------------------

def test_a_reminder_at_its_due_moment_never_says_zero_minutes_late():
    facts = notify.Facts(level="breach", seq=0, step="Memeriksa", sop="SOP", office="DPMK", instance_id=1,
                         subject="Berita", due_at=datetime(2026, 11, 24, 6, 30, tzinfo=timezone.utc),
                         minutes_left=-0.2, mutu_baku_minutes=120, link="http://x/tasks/1", recipient_name="Budi")
    for locale in ("id", "en"):
        subject, text = notify.render(facts, locale)
        assert "0 menit" not in subject + text and "0 min" not in subject + text
    assert "baru saja lewat batas waktu" in notify.render(facts, "id")[0]


def test_email_is_offered_and_sent_only_with_an_smtp_server():
    bare = Settings(database_url="sqlite://", broker_url="memory://", data_dir=Path("/tmp"), base_url="http://x")
    assert notify.configured_channels(bare, webhook=False) == ("inapp",)
    with_smtp = Settings(database_url="sqlite://", broker_url="memory://", data_dir=Path("/tmp"),
                         base_url="http://x", smtp_host="127.0.0.1")
    assert notify.configured_channels(with_smtp, webhook=True) == ("inapp", "email", "webhook")
