"""Issue 14 on the web pages: the returned step in its author's inbox with the reason (1), review
pages that show the work and what changed (2), the clock in working time (3), notifications as
messages with failed channels shown (4), the checklist in the form (7), claiming and where a
step went (8), and the smaller points of 9 (refresh text without JavaScript, demo logins)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from engine.models import Delivery, HumanTask, Notification, User
from engine.sla import due_time

from .sopdata import DPMK, REJECT, STEP_DATA
from .test_web import (_uploaded_sha, app, instance_of, login, open_task, start, to_form, users,  # noqa: F401
                       work)


def _round_one(app, services):
    """Step 1 with a photo, step 2, then Sekdin's TIDAK: returns (instance id, evidence sha)."""
    penerima = login(app, "dpmk.penerima")
    task_id = start(penerima, DPMK, "Musrenbang Sabdodadi")
    sha = _uploaded_sha(penerima, services, task_id, "bukti_multimedia")
    iid = instance_of(services, task_id)
    work(app, services, iid, DPMK, "step1", sha)
    work(app, services, iid, DPMK, "step2", sha)
    return iid, sha


def test_returned_step_shows_its_reason_in_the_inbox_and_at_the_top_of_the_page(app, services):
    iid, sha = _round_one(app, services)
    work(app, services, iid, DPMK, "step3", sha, reject=True)
    reason = REJECT[(DPMK, "step3")]["alasan_penolakan"]
    penerima = login(app, "dpmk.penerima")
    inbox = penerima.get("/inbox").text  # "Tugas saya": back with its author, not in the pool
    assert "Dikembalikan" in inbox and reason in inbox
    back = open_task(services, iid)
    page = penerima.get(f"/tasks/{back.id}").text
    assert page.index("Dikembalikan untuk diperbaiki") < page.index("<h1") < page.index('id="step-form"')
    assert reason in page[:page.index("<h1")] and "Sri Lestari" in page[:page.index("<h1")]
    notes = penerima.get("/notifications/").text
    assert reason in notes and "Dikembalikan untuk diperbaiki" in notes
    # the paraf trail carries the reason next to its TIDAK
    assert re.search(r"TIDAK</span>.*?Alasan: " + re.escape(reason), page, re.S)
    # a draft shows what changed since the return
    penerima.post(f"/tasks/{back.id}", data={"action": "draft", **to_form(
        services.runtime.task_detail(users_id(services, "dpmk.penerima"), back.id)["schema"],
        dict(STEP_DATA[(DPMK, "step1")], judul_berita="Musrenbang Sabdodadi, foto baru", bukti_multimedia=[sha]))})
    page = penerima.get(f"/tasks/{back.id}").text
    assert "Yang sudah Anda ubah sejak dikembalikan" in page and "Musrenbang Sabdodadi, foto baru" in page


def users_id(services, username):
    with services.sessions() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_a_decision_step_shows_the_work_first_and_the_changes_in_a_later_round(app, services):
    iid, sha = _round_one(app, services)
    sekdin = login(app, "dpmk.sekdin")
    decision = open_task(services, iid)
    page = sekdin.get(f"/tasks/{decision.id}").text
    review = page.index('id="review-h"')
    assert review < page.index('id="step-form"') < page.index('id="hist-h"')  # the work, then the decision
    body = page[review:page.index('id="step-form"')]
    assert STEP_DATA[(DPMK, "step1")]["isi_berita"] in body and "Kalurahan" in body
    assert f'<img src="/files/{sha}"' in body  # the photo itself, not a collapsed thumbnail
    assert "<details" not in body
    work(app, services, iid, DPMK, "step3", sha, reject=True)
    data = dict(STEP_DATA[(DPMK, "step1")], judul_berita="Musrenbang Sabdodadi (revisi)")
    work_with(app, services, iid, "step1", data, sha)
    work(app, services, iid, DPMK, "step2", sha)
    decision = open_task(services, iid)
    page = sekdin.get(f"/tasks/{decision.id}").text
    body = page[page.index('id="review-h"'):page.index('id="step-form"')]
    assert "Putaran 2" in body and "Perubahan sejak putaran sebelumnya ditolak" in body
    assert re.search(r"Judul Berita</strong>:\s*<del[^>]*>Musrenbang Kalurahan Sabdodadi</del>.*?"
                     r"<ins[^>]*>Musrenbang Sabdodadi \(revisi\)</ins>", body, re.S)
    history = page[page.index('id="hist-h"'):]
    assert "Putaran 1" in history and "Putaran 2" in history and "dikembalikan" in history


def work_with(app, services, iid, step, data, sha):
    task = open_task(services, iid)
    client = login(app, "dpmk.penerima")
    detail = services.runtime.task_detail(users_id(services, "dpmk.penerima"), task.id)
    data = dict(data, bukti_multimedia=[sha])
    response = client.post(f"/tasks/{task.id}", data={"action": "complete", **to_form(detail["schema"], data)})
    assert response.status_code == 302, response.text[:2000]


def test_the_clock_counts_working_time_and_shows_the_new_due_time_after_a_pause(app, services):
    penerima = login(app, "dpmk.penerima")
    task_id = start(penerima, DPMK, "Jam kerja")
    now = datetime.now(timezone.utc)
    office_id = open_task(services, instance_of(services, task_id)).office_id
    with services.sessions() as session:
        calendar = services.runtime.calendars.get(session, office_id)
    with services.sessions.begin() as session:
        task = session.get(HumanTask, task_id)
        task.ready_at, task.due_at = now, due_time(calendar, now, 120)
    page = penerima.get(f"/tasks/{task_id}").text
    assert "Jam Mutu Baku hanya menghitung jam kerja kantor" in page
    badge = re.search(r'class="badge sla[^"]*">.*?</span>\s*([^<]+)</span>', page, re.S).group(1).strip()
    assert badge in ("Sisa 2 jam", "Sisa 1 jam 59 menit"), badge  # 120 working minutes, whatever the wall clock says
    assert "120 menit jam kerja" in page  # the Mutu Baku, in working time
    services.runtime.set_pause_mode(None, "dpmk", "immediate")  # the clock stops at once (no request)
    assert penerima.post(f"/tasks/{task_id}/pause", data={"reason": "Menunggu foto"}).status_code == 302
    with services.sessions() as session:
        before = session.get(HumanTask, task_id).due_at
    resumed = penerima.post(f"/tasks/{task_id}/resume", data={"reason": ""}, follow_redirects=True).text
    with services.sessions() as session:
        after = session.get(HumanTask, task_id).due_at
    from webui.i18n import format_wib
    with app.test_request_context():
        shown = format_wib(after)
    assert "Batas waktu baru" in resumed and shown in resumed
    assert resumed.count(shown) >= 2  # the message and the step's facts both show the new due time
    assert after >= before


def test_the_inbox_counts_the_same_working_minutes_as_the_step_page(app, services, monkeypatch):
    """A 120-minute step ready at 10:30 WIB is due at 13:30 (the lunch break does not count):
    at 10:30 the inbox row and the panel say "Sisa 2 jam", not the wall clock's 3 hours."""
    penerima = login(app, "dpmk.penerima")
    task_id = start(penerima, DPMK, "Jam kerja di kotak masuk")
    ready = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)  # Tuesday 10:30 WIB
    office_id = open_task(services, instance_of(services, task_id)).office_id
    with services.sessions() as session:
        calendar = services.runtime.calendars.get(session, office_id)
    due = due_time(calendar, ready, 120)
    assert (due - ready).total_seconds() / 60 == 180  # across the 12:00-13:00 break
    with services.sessions.begin() as session:
        task = session.get(HumanTask, task_id)
        task.ready_at, task.due_at = ready, due
    monkeypatch.setattr(services.runtime, "clock", lambda: ready)
    for url in ("/inbox", "/inbox/panel"):
        page = penerima.get(url).text
        row = page[page.index(f'id="task-{task_id}"'):]
        badge = re.search(r'class="badge sla[^"]*">.*?</span>\s*([^<]+)</span>', row, re.S).group(1).strip()
        assert badge == "Sisa 2 jam", (url, badge)
    step = penerima.get(f"/tasks/{task_id}").text
    assert "Jam Mutu Baku hanya menghitung jam kerja kantor" in step  # the step page says why


def test_notifications_read_as_messages_and_failures_are_shown(app, services):
    iid, sha = _round_one(app, services)
    work(app, services, iid, DPMK, "step3", sha, reject=True)
    with services.sessions.begin() as session:
        note = session.scalar(select(Notification).where(Notification.level == "returned"))
        session.add(Delivery(notification_id=note.id, human_task_id=note.human_task_id, level="returned", seq=0,
                             channel="email", recipient_id=note.user_id, status="failed", attempts=5,
                             created_at=note.created_at, next_attempt_at=note.created_at,
                             last_error="SMTP 127.0.0.1:25: ConnectionRefusedError(111)"))
    penerima = login(app, "dpmk.penerima")
    page = penerima.get("/notifications/").text
    assert "<pre" not in page and 'class="notification-message"' in page
    assert "Buka: http" not in page  # the link is a button, not a raw line
    assert "Email tidak terkirim" in page and "ConnectionRefusedError" in page
    assert "terlambat 0 menit" not in page
    admin = login(app, "admin")
    admin_page = admin.get("/admin/?office=dpmk").text
    assert "Notifikasi yang gagal terkirim" in admin_page and "Rina Wulandari" in admin_page


def test_completing_says_where_the_step_went_and_claiming_is_explicit(app, services):
    penerima = login(app, "dpmk.penerima")
    task_id = start(penerima, DPMK, "Ke mana langkahnya")
    page = penerima.get(f"/tasks/{task_id}").text
    assert 'value="complete"' in page and "Ambil dan selesaikan" not in page  # the starter holds step 1
    sha = _uploaded_sha(penerima, services, task_id, "bukti_multimedia")
    detail = services.runtime.task_detail(users_id(services, "dpmk.penerima"), task_id)
    done = penerima.post(f"/tasks/{task_id}", data={"action": "complete", **to_form(
        detail["schema"], dict(STEP_DATA[(DPMK, "step1")], bukti_multimedia=[sha]))}, follow_redirects=True).text
    assert "Langkah selesai. Diteruskan ke" in done and "lajur Kasubbag, belum diambil" in done
    kasubbag = login(app, "dpmk.kasubbag")
    second = open_task(services, instance_of(services, task_id))
    page = kasubbag.get(f"/tasks/{second.id}").text
    assert 'value="claim_complete"' in page and "Ambil dan selesaikan" in page
    # the reassign control is a small menu by the holder, not a full-width form in the header
    assert re.search(r'<details class="reassign-menu">\s*<summary class="btn btn-small">', page)
    assert 'class="inline reassign"' not in page
    refused = kasubbag.post(f"/tasks/{second.id}", data={"action": "complete", **to_form(
        services.runtime.task_detail(users_id(services, "dpmk.kasubbag"), second.id)["schema"],
        STEP_DATA[(DPMK, "step2")])})
    assert refused.status_code == 409 and open_task(services, instance_of(services, task_id)).id == second.id


def test_refresh_text_needs_javascript_and_demo_logins_name_roles(app, services):
    page = login(app, "dpmk.penerima").get("/inbox").text
    assert re.search(r'<span class="js-only" hidden>Daftar memperbarui diri setiap 30 detik\.</span>', page)
    assert "<noscript>" in page
    from engine.demo import login_lines
    lines = login_lines({"dpmk.sekdin": "x", "dpmk.pemilik": "y", "admin": "z"})
    assert "supervisor" in lines[0] and "lajur: Sekdin" in lines[0] and "DPMK" in lines[0]
    assert "pemilik proses" in lines[1] and "admin kabupaten" in lines[2]
