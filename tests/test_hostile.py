"""Issue 12's defects found by probing, each with the test that keeps it fixed (SQLite and PostgreSQL).

Items covered here: image decompression bomb (2), size limits on forms and stored texts (4),
field errors instead of 500s (5), lockout lifted by an admin (6), open redirect (9), a copied
cookie after sign-out (10), uploads validated before storing, quotas, clean-up (11).
The slow-client front and throttling across processes are in test_front.py; the sweep over
every route in test_hostile_sweep.py.
"""
from __future__ import annotations

import io
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import func, select

from engine import attachments, throttle
from engine.cli import main as cli
from engine.models import Attachment, AuditEvent, HumanTask, Notification, ProcessInstance, TaskPause, User

from .sopdata import DPMK
from .test_web import PASSWORD, app, login, make_app, png_bytes, start, upload_evidence, users  # noqa: F401

BIG = 2 ** 70


def count(services, model) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def task_of(services, task_id) -> HumanTask:
    with services.sessions() as session:
        return session.get(HumanTask, task_id)


# ---- 9: one safe-redirect check ---------------------------------------------------------------
OFF_SITE = ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example", "/\n/evil.example",
            " //evil.example", "/\r\n/evil.example", "\t//evil.example"]


def test_no_redirect_off_site(app):  # noqa: F811
    """One check for every redirect target: after marking notifications read and after signing in."""
    client = login(app, "dpmk.penerima")
    for target in OFF_SITE:
        for path in ("/notifications/read", "/login"):
            if path == "/login":
                response = app.test_client().post(path, data={"username": "dpmk.penerima", "password": PASSWORD,
                                                              "next": target})
            else:
                response = client.post(path, data={"next": target})
            assert response.status_code == 302
            location = response.location
            assert location in ("/notifications/", "/inbox"), (path, target, location)


def test_safe_redirect_keeps_a_same_site_path(app):  # noqa: F811
    client = login(app, "dpmk.penerima")
    assert client.post("/notifications/read", data={"next": "/inbox?tab=group"}).location == "/inbox?tab=group"


# ---- 10: sign-out ends the session everywhere ----------------------------------------------------
def test_copied_cookie_is_dead_after_logout(app):  # noqa: F811
    client = login(app, "dpmk.penerima")
    copied = app.test_client()
    copied.set_cookie("lajur_session", client.get_cookie("lajur_session").value)
    assert copied.get("/inbox").status_code == 200
    assert client.post("/logout").status_code == 302
    assert copied.get("/inbox").status_code == 302  # to the sign-in page
    assert login(app, "dpmk.penerima").get("/inbox").status_code == 200  # signing in again works


def test_password_change_ends_every_session(app, services):  # noqa: F811
    from engine.accounts import set_password, user_by_name
    phone, desk = login(app, "dpmk.penerima"), login(app, "dpmk.penerima")
    with services.sessions.begin() as session:
        set_password(user_by_name(session, "dpmk.penerima"), "sandi-baru-456")
    assert phone.get("/inbox").status_code == 302 and desk.get("/inbox").status_code == 302


# ---- 6: lockout an administrator lifts ----------------------------------------------------------
def test_lockout_and_unlock_from_the_cli(services, users, monkeypatch):  # noqa: F811
    policy = throttle.Policy(account_limit=100, lockout_failures=5)
    app = make_app(services, LAJUR_LOGIN_POLICY=policy)
    client = app.test_client()
    for _ in range(5):
        assert client.post("/login", data={"username": "dpmk.sekdin", "password": "salah-123"}).status_code == 401
    locked = client.post("/login", data={"username": "dpmk.sekdin", "password": PASSWORD})
    assert locked.status_code == 429 and "dikunci" in locked.text
    monkeypatch.setenv("LAJUR_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("LAJUR_DATA_DIR", str(services.settings.data_dir))
    result = CliRunner().invoke(cli, ["user", "unlock", "dpmk.sekdin"])
    assert result.exit_code == 0 and "unlocked" in result.output, result.output
    assert client.post("/login", data={"username": "dpmk.sekdin", "password": PASSWORD}).status_code == 302
    missing = CliRunner().invoke(cli, ["user", "unlock", "nobody"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


# ---- 4 and 5: size limits and field errors instead of 500 -----------------------------------------
def test_nul_bytes_and_long_texts_are_field_errors(app, services, users):  # noqa: F811
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    instances = count(services, ProcessInstance)
    assert client.post(f"/start/{DPMK}", data={"subject": "Berita\x00uji"}).status_code == 422
    assert client.post(f"/start/{DPMK}", data={"subject": "x" * 301}).status_code == 422
    assert count(services, ProcessInstance) == instances
    anonymous = app.test_client()
    assert anonymous.post("/login", data={"username": "dpmk\x00penerima", "password": PASSWORD}).status_code == 422
    assert anonymous.post("/login", data={"username": "u" * 5000, "password": PASSWORD}).status_code == 401
    for data in ({"webhook_handle": "a\x00b"}, {"webhook_handle": "9" * 201}, {"email": "a" * 200 + "@x.id"}):
        response = client.post("/profile", data={"section": "channels", "channels": ["inapp", "webhook"],
                                                 "webhook_handle": "1", **data})
        assert response.status_code == 422, data
    with services.sessions() as session:
        me = session.scalar(select(User).where(User.username == "dpmk.penerima"))
        assert me.webhook_handle is None and me.email == "dpmk.penerima@example.bantulkab.go.id"
    assert client.get("/dashboard?process=a\x00b").status_code in (400, 404)
    services.runtime.set_pause_mode(None, "dpmk", "immediate")  # the clock stops at once (no request)
    assert client.post(f"/tasks/{task_id}/pause", data={"reason": "tunggu\x00"}).status_code == 422
    assert client.post(f"/tasks/{task_id}/pause", data={"reason": "r" * 501}).status_code == 422
    assert task_of(services, task_id).paused_at is None
    assert client.post(f"/tasks/{task_id}/pause", data={"reason": "Menunggu revisi"}).status_code == 302
    assert client.post(f"/tasks/{task_id}/resume", data={"reason": "r" * 501}).status_code == 422
    assert task_of(services, task_id).paused_at is not None
    assert count(services, TaskPause) == 1


def test_a_huge_urlencoded_field_is_refused_before_it_is_read(app, services, users):  # noqa: F811
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    events = count(services, AuditEvent)
    response = client.post(f"/tasks/{task_id}/pause", data={"reason": "r" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    big_draft = client.post(f"/tasks/{task_id}", data={"action": "draft", "isi_berita": "d" * (900 * 1024)})
    assert big_draft.status_code in (413, 422)
    assert task_of(services, task_id).draft is None and task_of(services, task_id).paused_at is None
    assert count(services, AuditEvent) == events


def test_engine_bounds_a_draft(services, users):  # noqa: F811
    from engine.errors import FormInvalid
    iid = services.runtime.start(users["dpmk.penerima"], DPMK, "Draf besar")
    with services.sessions() as session:
        task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
    with pytest.raises(FormInvalid):
        services.runtime.save_draft(users["dpmk.penerima"], task_id, {"isi_berita": "x" * 300_000})
    with pytest.raises(FormInvalid):
        services.runtime.save_draft(users["dpmk.penerima"], task_id, {"isi_berita": "a\x00b"})
    with pytest.raises(FormInvalid):
        services.runtime.save_draft(users["dpmk.penerima"], task_id, {"jumlah": float("9" * 5000)})  # infinity
    assert task_of(services, task_id).draft is None


def test_ids_past_64_bits_are_404(app, services, users):  # noqa: F811
    client = login(app, "dpmk.penerima")
    for path in (f"/tasks/{BIG}", f"/instances/{BIG}", f"/tasks/{BIG}/claim", f"/files/{BIG}"):
        response = client.post(path) if path.endswith("claim") else client.get(path)
        assert response.status_code == 404, path
    assert client.post("/notifications/read", data={"id": str(BIG)}).status_code == 404
    assert client.post("/notifications/read", data={"id": "-1"}).status_code == 404
    assert client.get(f"/inbox?page={BIG}").status_code == 400
    assert client.get(f"/notifications/?page={BIG}").status_code == 400
    assert client.get("/notifications/?page=99999999999").status_code == 200  # clamped, not an overflow
    assert client.get("/inbox?page=-5&tab=x").status_code == 200
    assert count(services, Notification) == 0


# ---- 2 and 11: evidence files ------------------------------------------------------------------
def bomb_png(side: int = 13_000) -> bytes:
    """A small PNG that decodes to side x side RGB pixels (a decompression bomb), written chunk by chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * side)  # filter byte + black pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns on open; we refuse
def test_image_decompression_bomb_is_refused_without_decoding(app, services, users):  # noqa: F811
    import resource
    import time
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    bomb = bomb_png()
    assert len(bomb) < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    response = upload_evidence(client, task_id, "bukti_multimedia", bomb, "bom.png")
    elapsed = time.monotonic() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert response.status_code == 422 and "megapiksel" in response.text
    assert elapsed < 3 and grown_mb < 150, (elapsed, grown_mb)
    assert count(services, Attachment) == 0
    assert not any((Path(services.settings.data_dir) / "files").rglob("*")) or not [
        p for p in (Path(services.settings.data_dir) / "files").rglob("*") if p.is_file()]


def test_thumbnail_of_a_large_jpeg_is_made_from_a_reduced_decode(tmp_path):
    source = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (10, 120, 200)).save(source, "JPEG", quality=60)
    target = tmp_path / "thumb.jpg"
    assert attachments._thumbnail(source, target)
    with Image.open(target) as thumb:
        assert max(thumb.size) == attachments.THUMB_PX


def test_uploads_are_validated_before_they_are_stored(services, users):  # noqa: F811
    app = make_app(services)
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    zeros = b"\x89PNG\r\n\x1a\n" + b"\0" * 2_000_000  # a PNG signature, then nothing an image has
    response = upload_evidence(client, task_id, "bukti_multimedia", zeros, "nol.png")
    assert response.status_code == 422 and "bukan gambar" in response.text
    fake_pdf = b"%PDF-1.7\n" + b"\0" * 100_000
    response = upload_evidence(client, task_id, "bukti_multimedia", fake_pdf, "nol.pdf")
    assert response.status_code == 422
    assert count(services, Attachment) == 0
    files = [p for p in (Path(services.settings.data_dir) / "files").rglob("*") if p.is_file()]
    assert files == []


def test_too_many_files_in_one_post_stores_none(services, users):  # noqa: F811
    app = make_app(services)
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    uploads = [(io.BytesIO(png_bytes(color=(i, 0, 0), size=(8, 8))), f"f{i}.png") for i in range(11)]
    response = client.post(f"/tasks/{task_id}", data={"action": "draft", "bukti_multimedia__upload": uploads},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and "Paling banyak 10 berkas" in response.text
    assert count(services, Attachment) == 0


def test_step_quota(services, users, monkeypatch):  # noqa: F811
    monkeypatch.setattr(attachments, "STEP_QUOTA_BYTES", 1000)
    app = make_app(services)
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    first = png_bytes(color=(1, 2, 3), size=(300, 200))
    second = png_bytes(color=(9, 8, 7), size=(301, 200))
    assert len(first) + len(second) > 1000 > len(first)
    assert upload_evidence(client, task_id, "bukti_multimedia", first).status_code == 302
    response = upload_evidence(client, task_id, "bukti_multimedia", second, "dua.png")
    assert response.status_code == 422 and "kuota" in response.text
    with services.sessions() as session:
        rows = session.scalars(select(Attachment)).all()
    assert [(a.human_task_id, a.instance_id) for a in rows] == [(task_id, task_of(services, task_id).instance_id)]


def test_unreferenced_uploads_are_pruned_after_the_grace_period(services, users):  # noqa: F811
    app = make_app(services)
    client = login(app, "dpmk.penerima")
    task_id = start(client, DPMK)
    assert upload_evidence(client, task_id, "bukti_multimedia", png_bytes(color=(5, 5, 5))).status_code == 302
    with services.sessions() as session:
        kept_sha = session.scalars(select(Attachment.sha256)).one()
    # an upload whose draft was replaced: no step refers to it any more
    assert upload_evidence(client, task_id, "bukti_multimedia", png_bytes(color=(6, 6, 6))).status_code == 302
    client.post(f"/tasks/{task_id}", data={"action": "draft", "bukti_multimedia": kept_sha})
    with services.sessions() as session:
        orphan = session.scalar(select(Attachment).where(Attachment.sha256 != kept_sha))
    data_dir = Path(services.settings.data_dir)
    assert attachments.file_path(data_dir, orphan.sha256).exists()
    now = datetime.now(timezone.utc)
    with services.sessions.begin() as session:
        assert attachments.prune(session, data_dir, now) == 0  # within the grace period
    with services.sessions.begin() as session:
        assert attachments.prune(session, data_dir, now + timedelta(days=3)) == 1
    with services.sessions() as session:
        assert session.scalars(select(Attachment.sha256)).all() == [kept_sha]
    assert not attachments.file_path(data_dir, orphan.sha256).exists()
    assert not attachments.thumb_path(data_dir, orphan.sha256).exists()
    assert attachments.file_path(data_dir, kept_sha).exists()


def test_a_losing_race_leaves_no_files_behind(services, users):  # noqa: F811
    """Two holders' posts race to complete one step with new evidence: the loser's files are removed."""
    from .sopdata import STEP_DATA
    from .test_web import to_form
    app = make_app(services)
    starter = login(app, "dpmk.penerima")
    task_id = start(starter, DPMK)
    with services.sessions() as session:
        schema = services.runtime.task_detail(users["dpmk.penerima"], task_id)["schema"]
    form = to_form(schema, {k: v for k, v in STEP_DATA[(DPMK, "step1")].items() if k != "bukti_multimedia"})
    results = []

    def post(color):
        client = login(app, "dpmk.penerima")
        data = {**form, "bukti_multimedia__upload": (io.BytesIO(png_bytes(color=color, size=(40, 40))), "f.png")}
        results.append(client.post(f"/tasks/{task_id}", data=data, content_type="multipart/form-data").status_code)

    threads = [threading.Thread(target=post, args=((200, i, 0),)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [302, 409], results
    with services.sessions() as session:
        rows = session.scalars(select(Attachment)).all()
        done = session.get(HumanTask, task_id)
    assert len(rows) == 1 and done.data["bukti_multimedia"] == [rows[0].sha256]
    files = [p.name for p in (Path(services.settings.data_dir) / "files").rglob("*") if p.is_file()]
    assert files == [rows[0].sha256]
