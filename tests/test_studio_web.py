"""The studio's web edge: only the office's process owners, CSRF on every change (also the JSON
saves), other offices' SOPs unseen, bad bodies a 4xx, downloads and the form preview escaped."""
from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from engine.models import User
from webui import create_app

from .sopdata import DPMK

PASSWORD = "sandi-uji-123"


@pytest.fixture
def app(services, demo):
    fast = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    with services.sessions.begin() as session:
        for user in session.scalars(select(User)):
            user.password_hash = fast
    return create_app(services=services, config={"TESTING": True})


def _client(app, username):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


def _csrf(client, path):
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_access_csrf_and_bad_bodies(app):
    staff = _client(app, "dpmk.kasubbag")
    assert staff.get("/studio/").status_code == 403
    assert staff.get(f"/studio/{DPMK}").status_code == 403
    other = _client(app, "dinsos.pemilik")
    assert other.get(f"/studio/{DPMK}").status_code == 404  # another office's SOP: not found in theirs
    assert other.get(f"/studio/{DPMK}/versions/1.zip").status_code == 404

    owner = _client(app, "dpmk.pemilik")
    page = owner.get(f"/studio/{DPMK}")
    assert page.status_code == 200 and b"studio-lib.min.js" in page.data and b"cdn" not in page.data.lower()
    draft = owner.get(f"/studio/{DPMK}/draft.json").get_json()
    body = {"files": draft["files"], "lock_version": draft["lock_version"]}
    assert owner.post(f"/studio/{DPMK}/draft", json=body).status_code == 400  # no CSRF token
    token = _csrf(owner, f"/studio/{DPMK}")
    saved = owner.post(f"/studio/{DPMK}/draft", json=body, headers={"X-CSRFToken": token})
    assert saved.status_code == 200 and saved.get_json()["problems"] == []
    stale = owner.post(f"/studio/{DPMK}/draft", json=body, headers={"X-CSRFToken": token})
    assert stale.status_code == 409 and "Dewi Anggraini" in stale.get_json()["detail"]
    for bad in ({"files": "x", "lock_version": 1}, {"files": {}, "lock_version": "1"}, [1]):
        assert owner.post(f"/studio/{DPMK}/draft", json=bad, headers={"X-CSRFToken": token}).status_code == 400
    evil = {"files": {"../../x": "y", "process.bpmn": "<x/>"}, "lock_version": saved.get_json()["lock_version"]}
    assert owner.post(f"/studio/{DPMK}/draft", json=evil, headers={"X-CSRFToken": token}).status_code == 422
    # publish without a note: refused, nothing deployed, back to the editor with the reason
    refused = owner.post(f"/studio/{DPMK}/publish", data={"csrf_token": token, "note": "",
                                                           "lock_version": saved.get_json()["lock_version"]})
    assert refused.status_code == 302 and refused.headers["Location"].endswith(f"/studio/{DPMK}")


def test_preview_is_escaped_and_zip_downloads(app):
    owner = _client(app, "dpmk.pemilik")
    token = _csrf(owner, "/studio/")
    schema = {"type": "object", "properties": {"x": {"type": "string", "title": "<script>alert(1)</script>"}}}
    html = owner.post(f"/studio/{DPMK}/preview", json={"schema": schema}, headers={"X-CSRFToken": token})
    assert html.status_code == 200 and b"<script>alert" not in html.data and b"&lt;script&gt;" in html.data
    assert owner.post(f"/studio/{DPMK}/preview", json={"schema": "x"}, headers={"X-CSRFToken": token}).status_code == 400
    zipped = owner.get(f"/studio/{DPMK}/versions/1.zip")
    assert zipped.status_code == 200 and zipped.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(zipped.data)).namelist()
    assert f"{DPMK}/process.bpmn" in names and f"{DPMK}/forms/step1.schema.json" in names
    assert owner.get(f"/studio/{DPMK}/versions/9.zip").status_code == 404
    # an upload that is not a process: a clear message, no draft
    bad = owner.post("/studio/upload", data={"csrf_token": token, "key": "x-1",
                                              "file": (io.BytesIO(b"not a zip"), "folder.zip")},
                     content_type="multipart/form-data", follow_redirects=True)
    assert bad.status_code == 200 and "Tidak dapat dibuat".encode() in bad.data and b"not a zip archive" in bad.data


def test_a_copy_and_a_new_sop_open_as_clean_drafts(app):
    owner = _client(app, "dpmk.pemilik")
    token = _csrf(owner, "/studio/")
    copied = owner.post("/studio/copy", data={"csrf_token": token, "source": DPMK, "key": "dpmk-salinan",
                                              "name": "Salinan <b>"})
    assert copied.status_code == 302 and copied.headers["Location"].endswith("/studio/dpmk-salinan")
    draft = owner.get("/studio/dpmk-salinan/draft.json").get_json()
    assert draft["problems"] == [] and '"name": "Salinan <b>"' in draft["files"]["sop.json"]
    new = owner.post("/studio/new", data={"csrf_token": token, "key": "sop-baru", "name": "SOP Baru", "lane": "Sekdin"})
    assert new.status_code == 302
    assert owner.get("/studio/sop-baru/draft.json").get_json()["problems"] == []
    index = owner.get("/studio/").get_data(as_text=True)
    assert "dpmk-salinan" in index and "sop-baru" in index and "<b>" not in index
    bad = owner.post("/studio/new", data={"csrf_token": token, "key": "Bad Key!", "name": "x"}, follow_redirects=True)
    assert "huruf kecil" in bad.get_data(as_text=True)


def test_every_problem_is_listed_on_its_element(app):
    """A save with three independent problems (a lane with no name, a Mutu Baku under a minute, a
    condition on a field no form has) answers with all three, each on its element, with its line."""
    owner = _client(app, "dpmk.pemilik")
    token = _csrf(owner, f"/studio/{DPMK}")  # opening the editor makes the draft
    draft = owner.get(f"/studio/{DPMK}/draft.json").get_json()
    files = dict(draft["files"])
    bpmn = files["process.bpmn"]
    for old, new in (('<bpmn:lane id="lane_sekdin" name="Sekdin">', '<bpmn:lane id="lane_sekdin" name=" ">'),
                     (">PT120M<", ">PT0M<"),
                     ('persetujuan_sekdin == "TIDAK"', 'persetujuan_kadin == "TIDAK"')):
        assert bpmn.count(old) == 1, old
        bpmn = bpmn.replace(old, new)
    files["process.bpmn"] = bpmn
    saved = owner.post(f"/studio/{DPMK}/draft", json={"files": files, "lock_version": draft["lock_version"]},
                       headers={"X-CSRFToken": token})
    assert saved.status_code == 200
    problems = saved.get_json()["problems"]
    lines = bpmn.splitlines()
    line = lambda needle: next(no for no, text in enumerate(lines, 1) if needle in text)  # noqa: E731
    assert [(p["file"], p["element_id"], p["line"]) for p in problems] == [
        ("process.bpmn", "lane_sekdin", line('id="lane_sekdin"')),
        ("process.bpmn", "step1_mutu_baku", line(">PT0M<")),
        ("process.bpmn", "flow_step3_decision_tidak", line("persetujuan_kadin")),
    ]
    assert all(p["message"] for p in problems)
    # kept with the draft: reopening the editor shows the same list
    assert owner.get(f"/studio/{DPMK}/draft.json").get_json()["problems"] == problems
