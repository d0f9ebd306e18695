"""The staff web app through Flask's test client, on SQLite and PostgreSQL.

Access rules are tested the way an attacker would try them: by changing a URL, posting
without a CSRF token, or acting on another lane's or office's step.
"""
from __future__ import annotations

import io
import re
import stat
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from engine.accounts import set_password, user_by_name
from engine.demo import USERS
from engine.models import Attachment, AuditEvent, HumanTask, ProcessInstance, User
from webui import create_app
from webui.forms import widget_of

from .sopdata import ACTORS, DINSOS, DPMK, REJECT, STEP_DATA, checklist

PASSWORD = "sandi-uji-123"
# a cheap hash for tests: production hashes use werkzeug's default (scrypt), which costs ~0.1 s
FAST_HASH = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
STARTER = {DPMK: "dpmk.penerima", DINSOS: "dinsos.petugas"}
PATHS = {DPMK: ["step1", "step2", "step3", "step4", "step5"], DINSOS: ["step1", "step2", "step3", "step4"]}


# ---- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def users(services, demo):
    """The demo users with a password the tests know."""
    with services.sessions.begin() as session:
        for username, *_rest in USERS:
            user_by_name(session, username).password_hash = FAST_HASH
    return demo


def make_app(services, **config):
    base = {"TESTING": True, "WTF_CSRF_ENABLED": False}
    base.update(config)
    return create_app(services=services, config=base)


@pytest.fixture
def app(services, users):
    return make_app(services)


def login(app, username):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data[:500]
    return client


def png_bytes(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def open_task(services, instance_id) -> HumanTask:
    with services.sessions() as session:
        return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                       HumanTask.state == "ready")).one()


def _any_actor(services, task):
    with services.sessions() as session:
        return session.scalar(select(User.id).where(User.username == ACTORS[task.lane]))


def to_form(form_schema: dict, data: dict) -> dict:
    """Step data as a browser would post it (lists as repeated fields, booleans as 'on')."""
    form = {}
    for name, value in data.items():
        widget = widget_of(form_schema["properties"][name])
        if widget == "checkbox":
            if value:
                form[name] = "on"
        elif widget == "lines":
            form[name] = "\n".join(value)
        else:
            form[name] = value
    return form


def upload_evidence(client, task_id, field, content=None, name="foto.png"):
    """Post a file for a step's evidence field (as a draft); return the response."""
    return client.post(f"/tasks/{task_id}", data={"action": "draft",
                                                  f"{field}__upload": (io.BytesIO(content or png_bytes()), name)},
                       content_type="multipart/form-data")


def start(client, key, subject="Berita uji web") -> int:
    response = client.post(f"/start/{key}", data={"subject": subject})
    assert response.status_code == 302, response.data[:500]
    task_id = int(response.location.rsplit("/", 1)[1])
    return task_id


def instance_of(services, task_id) -> int:
    with services.sessions() as session:
        return session.get(HumanTask, task_id).instance_id


def work(app, services, instance_id, key, step, evidence_sha=None, reject=False):
    """Claim and complete the open step through HTTP as its lane's actor."""
    task = open_task(services, instance_id)
    assert task.bpmn_id == step
    client = login(app, ACTORS[task.lane])
    assert client.post(f"/tasks/{task.id}/claim").status_code == 302
    data = dict(REJECT[(key, step)] if reject else STEP_DATA[(key, step)])
    for field in ("bukti_multimedia", "foto_video", "materi_terpilih"):
        if field in data:
            data[field] = [evidence_sha]
    detail = services.runtime.task_detail(_any_actor(services, task), task.id)
    response = client.post(f"/tasks/{task.id}", data={"action": "complete", **to_form(detail["schema"], data),
                                                      "_persyaratan": checklist(key, step)})
    assert response.status_code == 302, response.data.decode()[:3000]
    assert response.location.endswith("/inbox")
    return task


def count(services, model, *where):
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


# ---- sign-in ---------------------------------------------------------------------------------
def test_healthz_needs_no_login(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.data == b"ok"


def test_login_logout_and_wrong_password(app):
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200 and "Masuk ke Lajur" in page.text
    wrong = client.post("/login", data={"username": "dpmk.penerima", "password": "salah-sekali"})
    assert wrong.status_code == 401 and "Nama pengguna atau kata sandi salah" in wrong.text
    unknown = client.post("/login", data={"username": "tidak.ada", "password": PASSWORD})
    assert unknown.status_code == 401 and "Nama pengguna atau kata sandi salah" in unknown.text
    ok = client.post("/login", data={"username": "dpmk.penerima", "password": PASSWORD, "next": "/start"})
    assert ok.status_code == 302 and ok.location == "/start"
    cookie = client.get_cookie("lajur_session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert "Rina Wulandari" in client.get("/inbox").text
    assert client.post("/logout").status_code == 302
    assert client.get("/inbox").status_code == 302


def test_login_refuses_open_redirect(app):
    client = app.test_client()
    response = client.post("/login", data={"username": "dpmk.penerima", "password": PASSWORD,
                                           "next": "https://evil.example/x"})
    assert response.location == "/inbox"


def test_password_change_ends_other_sessions(app, services):
    client = login(app, "dpmk.penerima")
    with services.sessions.begin() as session:
        set_password(user_by_name(session, "dpmk.penerima"), "sandi-baru-456")
    assert client.get("/inbox").status_code == 302


def test_login_rate_limit(app):
    client = app.test_client()
    for _ in range(10):
        assert client.post("/login", data={"username": "dpmk.sekdin", "password": "x" * 9}).status_code == 401
    limited = client.post("/login", data={"username": "dpmk.sekdin", "password": PASSWORD})
    assert limited.status_code == 429 and "Terlalu banyak percobaan" in limited.text
    # another username from the same address is not locked out by this one
    assert client.post("/login", data={"username": "dpmk.kasubbag", "password": PASSWORD}).status_code == 302


def test_secret_key_is_generated_once_and_private(services, users):
    app1, app2 = make_app(services), make_app(services)
    path = Path(services.settings.data_dir) / "secret_key"
    assert app1.secret_key == app2.secret_key == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


ANON_GET = ["/", "/inbox", "/inbox/panel", "/start", "/profile", "/tasks/1", "/instances/1",
            "/files/" + "a" * 64, "/files/" + "a" * 64 + "/thumb"]
ANON_POST = ["/tasks/1", "/tasks/1/claim", "/tasks/1/unclaim", f"/start/{DPMK}", "/profile"]


def test_every_route_needs_login(app):
    client = app.test_client()
    for path in ANON_GET:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location, path
    for path in ANON_POST:
        response = client.post(path, data={})
        assert response.status_code == 302 and "/login" in response.location, path
    htmx = client.get("/inbox/panel", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and "/login" in htmx.headers["HX-Redirect"]


def test_csrf_missing_is_refused(services, users):
    app = make_app(services, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    assert client.post("/login", data={"username": "dpmk.penerima", "password": PASSWORD}).status_code == 400
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": "dpmk.penerima", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    inbox = client.get("/inbox").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', inbox).group(1)
    assert f'"X-CSRFToken": "{token}"' in inbox  # htmx sends it as a header
    response = client.post(f"/start/{DPMK}", data={"subject": "Tanpa token"})
    assert response.status_code == 400 and "CSRF" in response.text
    assert count(services, ProcessInstance) == 0
    assert client.post(f"/start/{DPMK}", data={"subject": "Dengan token"},
                       headers={"X-CSRFToken": token}).status_code == 302
    assert client.post("/logout").status_code == 400


# ---- access control --------------------------------------------------------------------------
def test_other_office_cannot_see_or_act(app, services):
    owner = login(app, "dpmk.penerima")
    task_id = start(owner, DPMK)
    iid = instance_of(services, task_id)
    assert upload_evidence(owner, task_id, "bukti_multimedia").status_code == 302
    with services.sessions() as session:
        sha = session.scalar(select(Attachment.sha256))
    assert owner.get(f"/files/{sha}").status_code == 200
    other = login(app, "dinsos.petugas")
    assert other.get(f"/tasks/{task_id}").status_code == 403
    assert other.get(f"/instances/{iid}").status_code == 403
    assert other.get(f"/files/{sha}").status_code == 404
    assert other.get(f"/files/{sha}/thumb").status_code == 404
    assert other.post(f"/tasks/{task_id}/claim").status_code == 403
    assert other.post(f"/tasks/{task_id}", data={"action": "complete"}).status_code == 403
    assert other.post(f"/tasks/{task_id}", data={"action": "draft"}).status_code == 403
    assert count(services, AuditEvent, AuditEvent.kind.in_(["task_claimed", "task_completed"])) == 0
    # another office's file hash cannot be smuggled into a step either
    own_task = start(other, DINSOS)
    data = to_form(services.runtime.task_detail(users_id(services, "dinsos.petugas"), own_task)["schema"],
                   dict(STEP_DATA[(DINSOS, "step1")], foto_video=[sha]))
    response = other.post(f"/tasks/{own_task}", data={"action": "complete", **data})
    assert response.status_code == 422 and "tidak ditemukan di kantor Anda" in response.text


def users_id(services, username):
    with services.sessions() as session:
        return user_by_name(session, username).id


def test_other_lane_cannot_claim_or_complete(app, services):
    task_id = start(login(app, "dpmk.penerima"), DPMK)
    kasubbag = login(app, "dpmk.kasubbag")
    page = kasubbag.get(f"/tasks/{task_id}")
    assert page.status_code == 200 and "Anda hanya dapat melihatnya" in page.text and 'id="step-form"' not in page.text
    assert kasubbag.post(f"/tasks/{task_id}/claim").status_code == 403
    assert kasubbag.post(f"/tasks/{task_id}", data={"action": "complete"}).status_code == 403
    assert kasubbag.post(f"/tasks/{task_id}", data={
        "action": "draft", "bukti_multimedia__upload": (io.BytesIO(png_bytes()), "x.png")},
        content_type="multipart/form-data").status_code == 403
    assert count(services, Attachment) == 0
    # a step held by a colleague: the form is not offered, and completing is a conflict
    penerima = login(app, "dpmk.penerima")
    assert penerima.post(f"/tasks/{task_id}/claim").status_code == 302
    with services.sessions.begin() as session:
        from engine.accounts import create_user
        office = user_by_name(session, "dpmk.penerima").office
        create_user(session, "dpmk.penerima2", PASSWORD, "Sari Utami", office,
                    groups=("Petugas Penerima Berita/Informasi",))
    colleague = login(app, "dpmk.penerima2")
    page = colleague.get(f"/tasks/{task_id}")
    assert "sedang dikerjakan oleh Rina Wulandari" in page.text and 'id="step-form"' not in page.text
    form = to_form(services.runtime.task_detail(users_id(services, "dpmk.penerima"), task_id)["schema"],
                   {k: v for k, v in STEP_DATA[(DPMK, "step1")].items() if k != "bukti_multimedia"})
    conflict = colleague.post(f"/tasks/{task_id}", data={"action": "draft", **form})
    assert conflict.status_code == 409 and "sudah diambil/diselesaikan orang lain" in conflict.text
    assert colleague.post(f"/tasks/{task_id}/claim").status_code == 409
    assert colleague.post(f"/tasks/{task_id}/unclaim").status_code == 403


def test_unknown_ids_are_404(app):
    client = login(app, "dpmk.penerima")
    assert client.get("/tasks/999999").status_code == 404
    assert client.get("/instances/999999").status_code == 404
    assert client.get("/files/" + "0" * 64).status_code == 404
    assert client.get("/files/not-a-hash").status_code == 404
    assert client.post("/start/no-such-sop", data={"subject": "x"}).status_code == 404
    assert "Tidak ditemukan" in client.get("/nope").text


# ---- inbox -----------------------------------------------------------------------------------
def test_inbox_tabs_counts_and_claim_in_place(app, services):
    penerima = login(app, "dpmk.penerima")
    first = start(penerima, DPMK, "Berita pertama")
    second = start(penerima, DPMK, "Berita kedua")
    # the starter holds both first steps; given back to the group, the group tab counts them
    assert re.search(r'data-tab="mine">.*?<span class="count"[^>]*>2</span>', penerima.get("/inbox").text, re.S)
    for task_id in (first, second):
        assert penerima.post(f"/tasks/{task_id}/unclaim").status_code == 302
    page = penerima.get("/inbox?tab=group")
    assert page.status_code == 200
    for label in ("Tugas saya", "Belum diambil (kelompok saya)", "Terlambat", "Selesai oleh saya"):
        assert label in page.text
    assert "Berita pertama" in page.text and "Berita kedua" in page.text
    assert re.search(r'data-tab="group">.*?<span class="count"[^>]*>2</span>', page.text, re.S)
    assert 'hx-trigger="every 30s' in page.text  # refreshes itself while open
    assert "Sisa 2 jam" in page.text or "Sisa 1 jam" in page.text or "Sisa" in page.text
    claimed = penerima.post(f"/tasks/{first}/claim", data={"tab": "group"}, headers={"HX-Request": "true"})
    assert claimed.status_code == 200
    assert claimed.text.lstrip().startswith(f'<tr id="task-{first}"')
    assert "Rina Wulandari" in claimed.text and "Lepas" in claimed.text
    assert 'id="inbox-tabs" class="tabs"' in claimed.text and 'hx-swap-oob="true"' in claimed.text
    assert re.search(r'data-tab="mine">.*?<span class="count"[^>]*>1</span>', claimed.text, re.S)
    mine = penerima.get("/inbox/panel?tab=mine")
    assert "Berita pertama" in mine.text and "Berita kedua" not in mine.text and "<html" not in mine.text
    unclaimed = penerima.post(f"/tasks/{first}/unclaim", data={"tab": "mine"}, headers={"HX-Request": "true"})
    assert unclaimed.status_code == 200 and "Ambil" in unclaimed.text
    # without JavaScript: a plain post and a redirect back
    plain = penerima.post(f"/tasks/{second}/claim", data={"next": "/inbox?tab=mine"})
    assert plain.status_code == 302 and plain.location == "/inbox?tab=mine"
    # a conflict in place goes to the message area, not into the row
    colleague_task = second
    kasubbag = login(app, "dpmk.kasubbag")
    refused = kasubbag.post(f"/tasks/{colleague_task}/claim", headers={"HX-Request": "true"})
    assert refused.status_code == 403 and refused.headers["HX-Retarget"] == "#flash-area"


def test_inbox_overdue_and_completed_tabs(app, services):
    from datetime import datetime, timedelta, timezone
    # a Tuesday 10:00 WIB: inside working hours, so 35 minutes late are 35 working minutes
    now = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
    services.runtime.clock = lambda: now
    penerima = login(app, "dpmk.penerima")
    task_id = start(penerima, DPMK, "Berita lama")
    with services.sessions.begin() as session:
        task = session.get(HumanTask, task_id)
        task.due_at = now - timedelta(minutes=35)
    overdue = penerima.get("/inbox?tab=overdue")
    assert "Berita lama" in overdue.text and "Terlambat 35 menit" in overdue.text
    assert re.search(r'data-tab="overdue">.*?<span class="count"[^>]*>1</span>', overdue.text, re.S)
    iid = instance_of(services, task_id)
    sha = _uploaded_sha(penerima, services, task_id, "bukti_multimedia")
    work(app, services, iid, DPMK, "step1", sha)
    done = penerima.get("/inbox?tab=completed")
    assert "Berita lama" in done.text and "Selesai, terlambat" in done.text


def _uploaded_sha(client, services, task_id, field):
    assert upload_evidence(client, task_id, field).status_code == 302
    with services.sessions() as session:
        return session.scalar(select(Attachment.sha256).order_by(Attachment.id.desc()))


# ---- step page -------------------------------------------------------------------------------
def test_step_page_shows_sop_text_requirements_and_form(app):
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    page = client.get(f"/tasks/{task_id}").text
    assert "Menerima Berita beserta bukti otentik" in page
    assert "Persyaratan/Kelengkapan" in page and "Press Release diberi disposisi/form" in page
    assert "Nomor urut (Buku Agenda)" not in page  # the form asks for it; the checklist does not repeat it
    assert 'name="_persyaratan"' in page
    assert "Press Release sesuai dengan tata naskah dinas" in page  # the expected output
    assert 'name="judul_berita"' in page and 'type="date"' in page and "<select" in page
    assert 'name="nomor_agenda"' not in page  # issued from the Buku Agenda on completion, never typed
    assert 'type="file" name="bukti_multimedia__upload"' in page and "<textarea" in page
    assert 'enctype="multipart/form-data"' in page and "Simpan draf" in page and "Selesaikan langkah" in page
    assert "WIB" in page and "Mutu Baku" in page


def test_invalid_post_keeps_data_shows_errors_and_changes_nothing(app, services):
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    iid = instance_of(services, task_id)
    before = (count(services, AuditEvent), count(services, HumanTask, HumanTask.state == "completed"))
    response = client.post(f"/tasks/{task_id}", data={
        "action": "complete", "judul_berita": "Judul yang <b>benar</b>",
        "tanggal_berita": "2026-11-20", "jenis_berita": "Kalurahan", "isi_berita": "pendek"})
    assert response.status_code == 422
    page = response.text
    assert "Minimal 20 karakter" in page
    assert "Unggah atau pilih minimal 1 berkas" in page or "Wajib diisi" in page
    assert "Judul yang &lt;b&gt;benar&lt;/b&gt;" in page  # kept, escaped
    assert '<option value="Kalurahan" selected>' in page and ">pendek</textarea>" in page
    assert page.index("Minimal 20 karakter") > page.index('name="isi_berita"')  # next to its field
    assert (count(services, AuditEvent), count(services, HumanTask, HumanTask.state == "completed")) == before
    assert open_task(services, iid).id == task_id


def test_approval_needs_reason_when_tidak(app, services):
    sha, iid = _walk_to(app, services, DPMK, "step3")
    task = open_task(services, iid)
    sekdin = login(app, "dpmk.sekdin")
    response = sekdin.post(f"/tasks/{task.id}", data={"action": "complete", "persetujuan_sekdin": "TIDAK"})
    assert response.status_code == 422 and "Wajib diisi" in response.text
    assert 'value="TIDAK" checked' in response.text


def test_draft_is_saved_and_shown_again(app, services):
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    response = client.post(f"/tasks/{task_id}", data={"action": "draft", "judul_berita": "Setengah jadi",
                                                      "_persyaratan": ["Press Release diberi disposisi/form"]})
    assert response.status_code == 302
    with services.sessions() as session:
        draft = session.get(HumanTask, task_id).draft
    assert draft["judul_berita"] == "Setengah jadi" and draft["_persyaratan"] == ["Press Release diberi disposisi/form"]
    page = client.get(f"/tasks/{task_id}").text
    assert 'value="Setengah jadi"' in page and 'value="Press Release diberi disposisi/form" checked' in page
    assert "Draf disimpan" in page


def test_upload_checks_type_from_content_size_and_makes_thumbnail(services, users):
    app = make_app(services, LAJUR_MAX_UPLOAD_BYTES=200_000)
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    assert upload_evidence(client, task_id, "bukti_multimedia", png_bytes(size=(800, 600))).status_code == 302
    with services.sessions() as session:
        attachment = session.scalars(select(Attachment)).one()
    assert attachment.mime == "image/png" and attachment.has_thumbnail and attachment.original_name == "foto.png"
    data_dir = Path(services.settings.data_dir)
    stored = data_dir / "files" / attachment.sha256[:2] / attachment.sha256
    assert stored.is_file() and "static" not in str(stored)
    thumb = Image.open(data_dir / "thumbs" / attachment.sha256[:2] / f"{attachment.sha256}.jpg")
    assert thumb.format == "JPEG" and max(thumb.size) == 320
    page = client.get(f"/tasks/{task_id}").text
    assert f'value="{attachment.sha256}" checked' in page and f"/files/{attachment.sha256}/thumb" in page
    served = client.get(f"/files/{attachment.sha256}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"].startswith("inline")
    assert client.get(f"/files/{attachment.sha256}/thumb").mimetype == "image/jpeg"
    # the same photo again: one row, one file
    assert upload_evidence(client, task_id, "bukti_multimedia", png_bytes(size=(800, 600))).status_code == 302
    assert count(services, Attachment) == 1
    # a text file named .png is refused by its content
    fake = upload_evidence(client, task_id, "bukti_multimedia", b"<html><script>alert(1)</script>" * 10, "foto.png")
    assert fake.status_code == 422 and "tidak diterima" in fake.text
    # too large
    big = upload_evidence(client, task_id, "bukti_multimedia", png_bytes(size=(50, 50)) + b"\0" * 300_000, "b.png")
    assert big.status_code == 422 and "terlalu besar" in big.text
    assert count(services, Attachment) == 1
    assert not list((data_dir / "files" / "tmp").iterdir())


# ---- both SOPs end to end through HTTP ---------------------------------------------------------
def _walk_to(app, services, key, stop_at):
    """Start an instance and complete its steps up to (not including) `stop_at`."""
    starter = login(app, STARTER[key])
    task_id = start(starter, key)
    field = "bukti_multimedia" if key == DPMK else "foto_video"
    sha = _uploaded_sha(starter, services, task_id, field)
    iid = instance_of(services, task_id)
    for step in PATHS[key]:
        if step == stop_at:
            break
        work(app, services, iid, key, step, sha)
    return sha, iid


@pytest.mark.parametrize("key", [DPMK, DINSOS])
def test_both_sops_end_to_end_with_a_tidak_return(app, services, key):
    sha, iid = _walk_to(app, services, key, "step3")
    approver = ACTORS[open_task(services, iid).lane]
    approval = login(app, approver).get(f"/tasks/{open_task(services, iid).id}").text
    assert "Jejak paraf" in approval or key == DINSOS  # DPMK has paraf on step 2 (Kasubbag)
    assert f"/files/{sha}/thumb" in approval  # evidence from step 1 shown on a later step
    work(app, services, iid, key, "step3", sha, reject=True)
    returned = open_task(services, iid)
    assert returned.bpmn_id == "step1"
    page = login(app, STARTER[key]).get(f"/tasks/{returned.id}").text
    assert "TIDAK" in page and "Jejak paraf" in page  # the negative paraf and reason are visible
    for step in PATHS[key]:
        work(app, services, iid, key, step, sha)
    with services.sessions() as session:
        assert session.get(ProcessInstance, iid).status == "completed"
    view = login(app, approver).get(f"/instances/{iid}").text
    assert "SOP selesai" in view and "Langkah selesai" in view


def test_dinsos_step2_offers_the_files_of_step1(app, services):
    sha, iid = _walk_to(app, services, DINSOS, "step2")
    task = open_task(services, iid)
    page = login(app, "dinsos.pengelola").get(f"/tasks/{task.id}").text
    assert f'name="materi_terpilih" value="{sha}"' in page and 'name="materi_terpilih__upload"' not in page
    assert 'type="checkbox" name="kanal" value="Instagram"' in page


# ---- start page, instance page -----------------------------------------------------------------
def test_start_page_shows_sop_cards(app, services):
    page = login(app, "dinsos.petugas").get("/start").text
    assert "Pengelolaan Website dan Media Sosial" in page and "032/SOP DIN SOS BTL/2024" in page
    assert "Undang-Undang No. 14 Tahun 2008" in page  # legal basis
    assert "Ketua Tim Kerja" in page and "60 menit" in page and "Pemutakhiran Website" not in page
    assert login(app, "dpmk.operator").get("/start").text.count('class="card sop-card"') == 0
    empty = login(app, "dinsos.petugas").post(f"/start/{DINSOS}", data={"subject": "  "})
    assert empty.status_code == 422 and "Perihal wajib diisi" in empty.text
    assert login(app, "dpmk.operator").post(f"/start/{DPMK}", data={"subject": "x"}).status_code == 403


def test_instance_page_has_diagram_steps_timeline_and_data(app, services):
    sha, iid = _walk_to(app, services, DPMK, "step3")
    page = login(app, "dpmk.sekdin").get(f"/instances/{iid}")
    assert page.status_code == 200
    text = page.text
    assert "bpmn-viewer.production.min.js" in text and 'id="diagram-data"' in text
    assert "bpmn:definitions" in text or "bpmn2:definitions" in text or "definitions" in text
    assert "lajur-current" in text and "lajur-ontime" in text
    assert "Sedang berjalan" in text and "Tepat waktu" in text
    assert "SOP dimulai" in text and "Langkah diambil" in text and "Langkah selesai" in text
    assert "Musrenbang Kalurahan Sabdodadi" in text and f"/files/{sha}/thumb" in text
    assert "400.14.1.3" in text
    assert "Paraf Kabid pada bagian berita yang disetujui ada" in text  # a form field named paraf_... is data


# ---- language and dates ------------------------------------------------------------------------
def test_english_by_choice_and_dates_in_wib(app, services):
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    page = client.get(f"/tasks/{task_id}").text
    assert re.search(r"(Senin|Selasa|Rabu|Kamis|Jumat|Sabtu|Minggu), \d{1,2} "
                     r"(Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September|Oktober|November|Desember)"
                     r" \d{4} \d{2}\.\d{2} WIB", page)
    assert "Kotak Tugas" in page
    assert client.post("/profile", data={"locale": "en"}).status_code == 302
    with services.sessions() as session:
        assert user_by_name(session, "dpmk.penerima").locale == "en"
    english = client.get(f"/tasks/{task_id}").text
    assert "Inbox" in english and "Save draft" in english and "Complete step" in english
    assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{1,2} \w+ \d{4} "
                     r"\d{2}:\d{2} WIB", english)
    assert "Requirements" in english
    assert client.post("/profile", data={"locale": "xx"}).status_code == 400
    anonymous = app.test_client().get("/login?lang=en").text
    assert "Sign in to Lajur" in anonymous


def test_wib_formatting_is_independent_of_server_time_zone(app):
    from datetime import datetime, timezone
    from webui.i18n import format_wib
    with app.test_request_context("/"):
        assert format_wib(datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)) == "Senin, 23 November 2026 09.30 WIB"
        assert format_wib(datetime(2026, 11, 23, 2, 30)) == "Senin, 23 November 2026 09.30 WIB"  # naive = UTC


def test_committed_mo_matches_po():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po
    base = Path(__file__).resolve().parent.parent / "webui" / "translations" / "en" / "LC_MESSAGES"
    with open(base / "messages.po", "rb") as f:
        po = read_po(f)
    with open(base / "messages.mo", "rb") as f:
        mo = read_mo(f)
    po_map = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    mo_map = {m.id: m.string for m in mo if m.id}
    assert po_map == mo_map
    assert all(m.string for m in po if m.id), "every message has an English translation"


def test_pause_and_resume_the_clock_from_the_step_page(app, services, users):
    """The Mutu Baku clock stops with a reason and starts again; both land in the audit trail."""
    from engine.models import AuditEvent
    services.runtime.set_pause_mode(None, "dpmk", "immediate")  # no request: tests/test_instance_list_web.py has that
    client = login(app, "dpmk.penerima")
    iid = services.runtime.start(users["dpmk.penerima"], "dpmk-pemutakhiran-website", "Jeda jam")
    with services.sessions() as s:
        task = s.scalar(select(HumanTask).where(HumanTask.instance_id == iid))
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Jeda jam Mutu Baku" in page
    assert client.post(f"/tasks/{task.id}/pause", data={"reason": ""}).status_code == 302
    with services.sessions() as s:
        assert s.get(HumanTask, task.id).paused_at is None  # no reason: nothing changes
    client.post(f"/tasks/{task.id}/pause", data={"reason": "Menunggu revisi press release"})
    with services.sessions() as s:
        assert s.get(HumanTask, task.id).pause_reason == "Menunggu revisi press release"
    assert "Menunggu revisi press release" in client.get(f"/tasks/{task.id}").get_data(as_text=True)
    client.post(f"/tasks/{task.id}/resume", data={"reason": "Revisi diterima"})
    with services.sessions() as s:
        assert s.get(HumanTask, task.id).paused_at is None
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid))]
    assert "clock_paused" in kinds and "clock_resumed" in kinds
    other = login(app, "dpmk.operator")  # another lane of the same office, not a supervisor
    assert other.post(f"/tasks/{task.id}/pause", data={"reason": "x"}).status_code == 403


def test_notification_channels_are_chosen_on_the_profile_page(app, services, users):
    client = login(app, "dinsos.pengelola")
    page = client.get("/profile").get_data(as_text=True)
    # nothing configured here (no SMTP server, no webhook): neither is offered, so none fails unseen
    assert 'name="channels" value="inapp" checked' in page
    assert 'name="channels" value="email"' not in page and 'name="channels" value="webhook"' not in page
    assert "belum diatur oleh administrator" in page
    from engine.models import Office, OfficeWebhook
    with services.sessions.begin() as s:
        office = s.scalar(select(Office).where(Office.code == "dinsos"))
        s.add(OfficeWebhook(office_id=office.id, url="https://hook.example.id/lajur", secret="rahasia-webhook-123",
                            active=True))
    page = client.get("/profile").get_data(as_text=True)
    assert 'name="channels" value="webhook"' in page and 'name="channels" value="email"' not in page
    bad = client.post("/profile", data={"section": "channels", "channels": ["inapp", "webhook"], "email": "x@y.id"})
    assert bad.status_code == 422 and "wajib diisi untuk webhook" in bad.get_data(as_text=True)
    with services.sessions() as s:
        assert user_by_name(s, "dinsos.pengelola").notify_channels == "inapp,email"  # unchanged
    ok = client.post("/profile", data={"section": "channels", "channels": ["inapp", "webhook"], "email": "",
                                       "webhook_handle": "123456789"})
    assert ok.status_code == 302
    with services.sessions() as s:
        me = user_by_name(s, "dinsos.pengelola")
        assert (me.notify_channels, me.webhook_handle, me.email) == ("inapp,webhook", "123456789", None)


def test_supervisor_reassigns_a_step_from_the_step_page(app, services, users):
    from engine.accounts import create_user, office_by_code
    with services.sessions.begin() as s:
        second = create_user(s, "dpmk.penerima2", "sandi-uji-123", "Tono Sugiarto", office_by_code(s, "dpmk"),
                             groups=("Petugas Penerima Berita/Informasi",))
        second.password_hash = FAST_HASH
    iid = services.runtime.start(users["dpmk.penerima"], DPMK, "Dialihkan")
    task = open_task(services, iid)
    staff = login(app, "dpmk.penerima")
    assert "Alihkan ke" not in staff.get(f"/tasks/{task.id}").get_data(as_text=True)  # not a supervisor
    assert staff.post(f"/tasks/{task.id}/reassign", data={"to": "dpmk.penerima2"}).status_code == 403
    boss = login(app, "dpmk.kasubbag")
    page = boss.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Alihkan ke" in page and "Tono Sugiarto" in page and "Agus Prasetyo" not in page  # lane members only
    assert boss.post(f"/tasks/{task.id}/reassign", data={"to": "dpmk.operator"}).status_code == 403  # other lane
    assert boss.post(f"/tasks/{task.id}/reassign", data={"to": "dpmk.penerima2"}).status_code == 302
    assert open_task(services, iid).assignee_id == second.id
    other_office = login(app, "dinsos.ketua")
    assert other_office.post(f"/tasks/{task.id}/reassign", data={"to": "dpmk.penerima2"}).status_code in (403, 404)


def test_instance_timeline_names_clock_pauses(app, services, users):
    iid = services.runtime.start(users["dpmk.penerima"], DPMK, "Linimasa jeda")
    task = open_task(services, iid)
    services.runtime.set_pause_mode(None, "dpmk", "immediate")
    services.runtime.pause(users["dpmk.penerima"], task.id, "Menunggu foto tambahan")
    page = login(app, "dpmk.penerima").get(f"/instances/{iid}").get_data(as_text=True)
    assert "Jam Mutu Baku dijeda" in page and "Menunggu foto tambahan" in page
