"""Reminder policy, deadline rows and messages through the engine (no broker needed here:
the tick is called directly with a controlled clock; tests/test_workers.py runs it for real)."""
import dataclasses
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import deadlines, notifications, outbox
from engine.tick import tick as run_tick
from engine.accounts import create_user, office_by_code
from engine.bpmn import load_process_folder
from engine.deploy import deploy_folder
from engine.errors import DeployError
from engine.models import Deadline, Delivery, Notification, OfficeWebhook, User
from engine.notify import Facts, render, verify
from engine.reminders import DEFAULT_POLICY_TEXT, parse_policy

from .helpers import open_task, webhook_receiver
from .sopdata import DPMK, STEP_DATA

WIB = ZoneInfo("Asia/Jakarta")
PROCESSES = Path(__file__).resolve().parent.parent / "processes"
STEP1 = "Menerima berita beserta bukti otentik multimedia"


def wib(*args) -> datetime:
    return datetime(*args, tzinfo=WIB).astimezone(timezone.utc)


def aware(dt):
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def tick(services, settings, when):
    services.runtime.clock = lambda: when
    enqueued: list[int] = []
    result = run_tick(services.sessions, settings, services.runtime.calendars, lambda: when, enqueued.extend)
    return result, enqueued


def _with_reminders(tmp_path, value: str) -> Path:
    folder = tmp_path / "dpmk"
    shutil.copytree(PROCESSES / "dpmk-pemutakhiran-website", folder)
    bpmn = folder / "process.bpmn"
    text = bpmn.read_text()
    prop = '<spiffworkflow:property name="formJsonSchemaFilename" value="forms/step1.schema.json" />'
    bpmn.write_text(text.replace(prop, prop + f'\n          <spiffworkflow:property name="reminders" value="{value}" />', 1))
    return folder


def _notes(services, task_id):
    with services.sessions() as session:
        users = {u.id: u.username for u in session.scalars(select(User))}
        return sorted((n.level, n.seq, users[n.user_id]) for n in session.scalars(
            select(Notification).where(Notification.human_task_id == task_id)))


# ---- policy ----------------------------------------------------------------------------------

def test_policy_parsing():
    assert parse_policy(None) == parse_policy(DEFAULT_POLICY_TEXT) == [
        {"level": "warn", "at": 0.8, "to": ["holder"]},
        {"level": "breach", "at": 1.0, "to": ["holder", "supervisors"]},
        {"level": "repeat", "at": 1.0, "to": ["holder", "supervisors"]}]
    assert parse_policy("warn@50%:group; breach@100%:holder,lane:Sekdin") == [
        {"level": "warn", "at": 0.5, "to": ["group"]}, {"level": "breach", "at": 1.0, "to": ["holder", "lane:Sekdin"]}]
    for bad in ("warn@80:holder", "late@80%:holder", "warn@80%:boss", "repeat@100%:holder",
                "warn@0%:holder", "warn@80%:holder;warn@90%:holder"):
        with pytest.raises(ValueError):
            parse_policy(bad)


def test_bad_reminders_property_is_refused_at_deploy_with_file_element_line(tmp_path):
    folder = _with_reminders(tmp_path, "warn@80%:bos")
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    e = err.value
    assert e.file == "dpmk/process.bpmn" and e.element_id == "step1" and e.line == 45
    assert "reminders" in e.reason and "bos" in e.reason


# ---- deadlines -------------------------------------------------------------------------------

def test_deadlines_at_ready_recipients_and_cancel_at_completion(services, demo, settings):
    rt = services.runtime
    with services.sessions.begin() as session:
        create_user(session, "dpmk.penerima2", "rahasia-123", "Tono Sugiarto", office_by_code(session, "dpmk"),
                    groups=("Petugas Penerima Berita/Informasi",), email="tono@example.bantulkab.go.id",
                    locale="en")
    rt.clock = lambda: wib(2026, 11, 23, 8, 0)  # Monday; 120 min -> warn 09:36, breach 10:00
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Musrenbang")
    task = open_task(services, iid)
    rt.unclaim(demo["dpmk.penerima"], task.id)  # the starter held it; back in the lane's pool
    # an installation with a mail server: email is a configured channel (without one, none is made)
    settings = dataclasses.replace(settings, smtp_host="smtp.bantulkab.go.id")
    with services.sessions() as session:
        rows = {(d.level, d.seq): aware(d.due_at) for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))}
    assert rows == {("warn", 0): wib(2026, 11, 23, 9, 36), ("breach", 0): wib(2026, 11, 23, 10, 0)}

    assert tick(services, settings, wib(2026, 11, 23, 9, 35))[0].fired == 0
    # unclaimed: the warning goes to the lane's group, each in their own language
    result, enqueued = tick(services, settings, wib(2026, 11, 23, 9, 36))
    assert result.fired == 1
    assert _notes(services, task.id) == [("warn", 0, "dpmk.penerima"), ("warn", 0, "dpmk.penerima2")]
    with services.sessions() as session:
        notes = {n.user_id: n for n in session.scalars(select(Notification))}
        subjects = {n.subject for n in notes.values()}
        assert subjects == {f"[Lajur] Peringatan: {STEP1} — sisa 24 menit",
                            f"[Lajur] Warning: {STEP1} — 24 min left"}
        body = notes[demo["dpmk.penerima"]].body
        assert "Musrenbang" in body and f"instance #{iid}" in body and "Senin, 23 November 2026 10:00 WIB" in body
        assert f"http://127.0.0.1:5000/tasks/{task.id}" in body
        deliveries = session.scalars(select(Delivery)).all()
        assert sorted(d.channel for d in deliveries) == ["email", "email"]  # default: in-app + email
        assert sorted(enqueued) == sorted(d.id for d in deliveries)
    assert tick(services, settings, wib(2026, 11, 23, 9, 50))[0].fired == 0  # never twice

    # claimed: the breach goes to the holder and the office's supervisors, not the whole group
    rt.clock = lambda: wib(2026, 11, 23, 9, 55)
    rt.claim(demo["dpmk.penerima"], task.id)
    tick(services, settings, wib(2026, 11, 23, 10, 2))
    assert [n for n in _notes(services, task.id) if n[0] == "breach"] == [
        ("breach", 0, "dpmk.kasubbag"), ("breach", 0, "dpmk.penerima"), ("breach", 0, "dpmk.sekdin")]
    with services.sessions() as session:
        breach = session.scalar(select(Notification).where(Notification.level == "breach",
                                                           Notification.user_id == demo["dpmk.penerima"]))
        assert breach.subject == f"[Lajur] Lewat Mutu Baku: {STEP1} — terlambat 2 menit"
        nxt = session.scalar(select(Deadline).where(Deadline.human_task_id == task.id, Deadline.level == "repeat"))
        assert (nxt.seq, nxt.status) == (1, "pending")  # the next repeat: one more Mutu Baku
        assert aware(nxt.due_at) == wib(2026, 11, 23, 12, 0)
    # a long outage does not cause a storm: one repeat, then the next one in the future
    result, _ = tick(services, settings, wib(2026, 11, 24, 15, 0))
    assert result.fired == 1
    with services.sessions() as session:
        pending = session.scalar(select(Deadline).where(Deadline.human_task_id == task.id,
                                                        Deadline.status == "pending"))
        assert pending.level == "repeat" and aware(pending.due_at) > wib(2026, 11, 24, 15, 0)

    # completing cancels what is still pending, in the same transaction
    rt.clock = lambda: wib(2026, 11, 24, 15, 5)
    rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])
    with services.sessions() as session:
        statuses = {d.status for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))}
        assert statuses == {"done", "cancelled"}
        assert {d.status for d in session.scalars(select(Delivery))} == {"cancelled"}  # never sent: no SMTP here
    before = _notes(services, task.id)
    tick(services, settings, wib(2026, 11, 30, 10, 0))  # (step 2 is open now and has its own reminders)
    assert _notes(services, task.id) == before


def test_custom_policy_from_bpmn_group_and_other_lane(services, demo, settings, tmp_path):
    folder = _with_reminders(tmp_path, "warn@50%:group; breach@100%:lane:Sekdin")
    with services.sessions.begin() as session:
        deploy_folder(session, folder, services.runtime.store)
    rt = services.runtime
    rt.clock = lambda: wib(2026, 11, 23, 8, 0)
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Kebijakan khusus")
    task = open_task(services, iid)
    rt.claim(demo["dpmk.penerima"], task.id)
    assert tick(services, settings, wib(2026, 11, 23, 9, 0))[0].fired == 1  # 50 % of 120 min
    assert tick(services, settings, wib(2026, 11, 23, 10, 0))[0].fired == 1
    assert _notes(services, task.id) == [("breach", 0, "dpmk.sekdin"), ("warn", 0, "dpmk.penerima")]
    with services.sessions() as session:  # no repeat level in this policy
        assert session.scalar(select(Deadline).where(Deadline.level == "repeat")) is None


@pytest.fixture
def receiver():
    with webhook_receiver() as server:
        yield server


def test_channels_preferences_webhook_and_inapp_queries(services, demo, settings, receiver):
    settings = dataclasses.replace(settings, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret",
                                   smtp_host="smtp.bantulkab.go.id")
    with services.sessions.begin() as session:
        u = session.get(User, demo["dpmk.penerima"])
        u.notify_channels, u.webhook_handle = "inapp,webhook", "telegram:12345"
        k = session.get(User, demo["dpmk.kasubbag"])
        k.notify_channels = "email"  # no in-app list for him
        session.add(OfficeWebhook(office_id=u.office_id, url=receiver.url, secret="office"))
    rt = services.runtime
    rt.clock = lambda: wib(2026, 11, 23, 8, 0)
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Saluran")
    task = open_task(services, iid)
    rt.claim(demo["dpmk.penerima"], task.id)
    tick(services, settings, wib(2026, 11, 23, 10, 0))  # warn and breach both due
    with services.sessions() as session:
        by_user = {}
        for d in session.scalars(select(Delivery)):
            by_user.setdefault(d.recipient_id, set()).add((d.level, d.channel))
        assert by_user[demo["dpmk.penerima"]] == {("warn", "webhook"), ("breach", "webhook")}
        assert by_user[demo["dpmk.kasubbag"]] == {("breach", "email")}
        hook_id = session.scalar(select(Delivery.id).where(Delivery.channel == "webhook", Delivery.level == "breach"))
    assert outbox.send_many(services.sessions, settings, [hook_id], rt.clock) == {hook_id: "sent"}
    (signature, body), = receiver.requests
    assert verify("office", body, signature)  # the office row wins over LAJUR_WEBHOOK_*
    payload = json.loads(body)
    assert payload["recipient"]["handle"] == "telegram:12345" and payload["overdue_minutes"] == 0
    assert payload["step"] == STEP1 and payload["instance_id"] == iid and payload["delivery_id"] == hook_id
    # the same delivery again (a redelivered message) sends nothing
    assert outbox.send_many(services.sessions, settings, [hook_id], rt.clock) == {}
    assert len(receiver.requests) == 1
    with services.sessions() as session:
        assert notifications.unread_count(session, demo["dpmk.penerima"]) == 2
        assert notifications.unread_count(session, demo["dpmk.kasubbag"]) == 0
        listed = notifications.list_for_user(session, demo["dpmk.penerima"])
        assert [n.level for n in listed] == ["breach", "warn"]
    with services.sessions.begin() as session:
        assert notifications.mark_read(session, demo["dpmk.penerima"], [listed[0].id]) == 1
        assert notifications.mark_read(session, demo["dpmk.sekdin"], [listed[1].id]) == 0  # not hers
    with services.sessions() as session:
        assert notifications.unread_count(session, demo["dpmk.penerima"]) == 1


def test_message_texts_in_both_languages():
    facts = Facts(level="repeat", seq=2, step="Memeriksa press release", sop="Pemutakhiran Website",
                  office="DPMK", instance_id=7, subject="Musrenbang", due_at=wib(2026, 11, 23, 10, 0),
                  minutes_left=-95, mutu_baku_minutes=15, link="http://x/tasks/3", recipient_name="Budi")
    subject, text = render(facts, "id")
    assert subject == "[Lajur] Masih terlambat: Memeriksa press release — terlambat 1 jam 35 menit"
    assert "Yth. Budi" in text and "Terlambat: 1 jam 35 menit" in text and "http://x/tasks/3" in text
    subject, text = render(facts, "en")
    assert subject == "[Lajur] Still overdue: Memeriksa press release — overdue by 1 h 35 min"
    assert "Dear Budi" in text and "Mon 23 Nov 2026 10:00 WIB" in text
