"""The REST API through Flask's test client, on SQLite and PostgreSQL: the same engine rules
as the web (office, lane, state), token scope, revocation and expiry, ETag/If-Match, problem
details, rate limits, evidence checks, and the documentation page."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select, update

from engine import tokens
from engine.models import ApiToken, HumanTask, ProcessInstance, User
from tests.api_live import make_token, now
from tests.sopdata import DPMK, STEP_DATA
from webui import create_app


@pytest.fixture
def app(services, demo):
    return create_app(services=services, config={"TESTING": True, "LAJUR_API_LIMIT": "100000/minute"})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def start(client, token, subject="Musrenbang Kalurahan") -> dict:
    r = client.post("/api/v1/instances", json={"process": DPMK, "subject": subject}, headers=bearer(token))
    assert r.status_code == 201, r.data
    return r.json


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_a_step_from_start_to_the_next_lane(app, services):
    client = app.test_client()
    penerima = make_token(services, "dpmk.penerima")
    started = start(client, penerima)
    task_id = started["open_tasks"][0]
    r = client.get(f"/api/v1/tasks/{task_id}", headers=bearer(penerima))
    assert r.status_code == 200 and r.json["may_act"] and r.json["form_schema"]["type"] == "object"
    assert r.json["lane"] == "Petugas Penerima Berita/Informasi" and r.json["sop_step"]["requirements"]
    etag = r.headers["ETag"]
    # the starter holds step 1; giving it back to the lane changes the step
    assert client.post(f"/api/v1/tasks/{task_id}/unclaim", headers={**bearer(penerima), "If-Match": etag}).status_code == 200
    # the old ETag is stale now, and a stale write changes nothing
    r = client.put(f"/api/v1/tasks/{task_id}/draft", json={"data": {"judul_berita": "x"}},
                   headers={**bearer(penerima), "If-Match": etag})
    assert r.status_code == 412 and r.mimetype == "application/problem+json"
    with services.sessions() as db:
        assert db.get(HumanTask, task_id).draft is None
    # evidence: upload, then complete with its hash
    r = client.post(f"/api/v1/tasks/{task_id}/evidence", headers=bearer(penerima),
                    data={"field": "bukti_multimedia", "file": (io.BytesIO(png()), "foto.png")})
    assert r.status_code == 201, r.data
    assert r.json["mime"] == "image/png"
    data = {**STEP_DATA[(DPMK, "step1")], "bukti_multimedia": [r.json["sha256"]]}
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=bearer(penerima))
    assert r.status_code == 409  # nobody holds it: claim first, or say "claim": true
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data, "claim": True}, headers=bearer(penerima))
    assert r.status_code == 200, r.data
    (next_id,) = r.json["opened"]
    # done: a second completion is a conflict; the next step waits in the Kasubbag lane
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=bearer(penerima))
    assert r.status_code == 409 and r.json["status"] == 409
    kasubbag = make_token(services, "dpmk.kasubbag")
    group = client.get("/api/v1/tasks?view=group", headers=bearer(kasubbag)).json["items"]
    assert [t["id"] for t in group] == [next_id]
    done = client.get("/api/v1/tasks?view=done", headers=bearer(penerima)).json["items"]
    assert [t["id"] for t in done] == [task_id]
    detail = client.get(f"/api/v1/instances/{started['id']}", headers=bearer(kasubbag)).json
    assert [s["state"] for s in detail["steps"]] == ["completed", "ready"]
    assert [e["kind"] for e in detail["audit"]][:4] == ["instance_started", "task_ready", "task_unclaimed",
                                                         "task_claimed"]


def test_form_errors_are_field_problems_and_change_nothing(app, services):
    client = app.test_client()
    token = make_token(services, "dpmk.penerima")
    task_id = start(client, token)["open_tasks"][0]
    data = {**STEP_DATA[(DPMK, "step1")], "bukti_multimedia": ["a" * 64]}  # a hash that is no file of the office
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=bearer(token))
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert [e["pointer"] for e in r.json["errors"]] == ["/data/bukti_multimedia"]
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {"judul_berita": 5}}, headers=bearer(token))
    assert r.status_code == 422
    pointers = {e["pointer"] for e in r.json["errors"]}
    assert "/data/judul_berita" in pointers and "/data/isi_berita" in pointers
    r = client.post("/api/v1/instances", json={"process": DPMK}, headers=bearer(token))
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "subject"
    assert client.post("/api/v1/notifications/read", json=[], headers=bearer(token)).status_code == 422
    assert client.post("/api/v1/notifications/read", data="{", content_type="application/json",
                       headers=bearer(token)).status_code == 400
    with services.sessions() as db:
        assert db.get(HumanTask, task_id).state == "ready"
        assert db.scalar(select(ProcessInstance.id).order_by(ProcessInstance.id.desc())) == 1


def test_another_offices_ids_look_missing(app, services):
    client = app.test_client()
    dpmk = make_token(services, "dpmk.penerima")
    started = start(client, dpmk)
    task_id, instance_id = started["open_tasks"][0], started["id"]
    dinsos = make_token(services, "dinsos.petugas")
    missing_task, missing_instance = 999_999, 999_998
    calls = [
        ("get", "/api/v1/tasks/{t}", None), ("post", "/api/v1/tasks/{t}/claim", None),
        ("post", "/api/v1/tasks/{t}/unclaim", None), ("post", "/api/v1/tasks/{t}/reassign", {"to": "dinsos.ketua"}),
        ("put", "/api/v1/tasks/{t}/draft", {"data": {}}), ("post", "/api/v1/tasks/{t}/complete", {"data": {}}),
        ("get", "/api/v1/instances/{i}", None),
    ]
    for method, path, body in calls:
        answers = []
        for t, i in ((task_id, instance_id), (missing_task, missing_instance)):
            r = getattr(client, method)(path.format(t=t, i=i), json=body, headers=bearer(dinsos))
            answers.append((r.status_code, {k: v for k, v in r.json.items() if k != "instance"}))
        assert answers[0] == answers[1] == (404, answers[1][1]), (path, answers)
        assert answers[0][0] == 404
    r = client.post(f"/api/v1/tasks/{task_id}/evidence", headers=bearer(dinsos),
                    data={"field": "bukti_multimedia", "file": (io.BytesIO(png()), "x.png")})
    assert r.status_code == 404
    assert client.get(f"/api/v1/processes/{DPMK}", headers=bearer(dinsos)).status_code == 404
    assert client.get(f"/api/v1/processes/{DPMK}/versions", headers=bearer(dinsos)).status_code == 404
    assert client.get("/api/v1/instances", headers=bearer(dinsos)).json["items"] == []
    assert client.get("/api/v1/instances?q=Musrenbang", headers=bearer(dinsos)).json["items"] == []
    with services.sessions() as db:
        task = db.get(HumanTask, task_id)
        # still held by its starter, no draft, open: the other office changed nothing
        assert task.assignee_id == task.instance.started_by_id and task.draft is None and task.state == "ready"


def test_lane_rules_are_the_engines(app, services):
    client = app.test_client()
    task_id = start(client, make_token(services, "dpmk.penerima"))["open_tasks"][0]
    operator = make_token(services, "dpmk.operator")  # same office, another lane
    r = client.post(f"/api/v1/tasks/{task_id}/claim", headers=bearer(operator))
    assert r.status_code == 403 and "lane" in r.json["detail"]
    assert client.get(f"/api/v1/tasks/{task_id}", headers=bearer(operator)).json["may_act"] is False
    r = client.post("/api/v1/instances", json={"process": DPMK, "subject": "x"}, headers=bearer(operator))
    assert r.status_code == 403


def test_read_scope_reads_but_never_writes(app, services):
    client = app.test_client()
    task_id = start(client, make_token(services, "dpmk.penerima"))["open_tasks"][0]
    reader = make_token(services, "dpmk.penerima", scope="read")
    assert client.get("/api/v1/tasks?view=group", headers=bearer(reader)).status_code == 200
    for path in (f"/api/v1/tasks/{task_id}/unclaim", "/api/v1/notifications/read"):
        r = client.post(path, json={}, headers=bearer(reader))
        assert r.status_code == 403 and r.json["type"].endswith("insufficient-scope")
    r = client.post("/api/v1/instances", json={"process": DPMK, "subject": "y"}, headers=bearer(reader))
    assert r.status_code == 403
    with services.sessions() as db:
        task = db.get(HumanTask, task_id)
        assert task.assignee_id == task.instance.started_by_id  # still its starter's: nothing written
        assert len(db.scalars(select(ProcessInstance.id)).all()) == 1


def test_revoked_and_expired_tokens_are_refused(app, services):
    client = app.test_client()
    token = make_token(services, "dpmk.penerima")
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    with services.sessions.begin() as db:
        user_id = db.scalar(select(User.id).where(User.username == "dpmk.penerima"))
        (row,) = tokens.list_tokens(db, user_id)
        tokens.revoke_token(db, user_id, row.id, now())
    r = client.get("/api/v1/tasks", headers=bearer(token))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    expiring = make_token(services, "dpmk.penerima", days=1)
    assert client.get("/api/v1/tasks", headers=bearer(expiring)).status_code == 200
    with services.sessions.begin() as db:
        db.execute(update(ApiToken).where(ApiToken.revoked_at.is_(None)).values(expires_at=now() - timedelta(seconds=1)))
    assert client.get("/api/v1/tasks", headers=bearer(expiring)).status_code == 401
    # a token of a deactivated user stops at once too
    other = make_token(services, "dpmk.kasubbag")
    with services.sessions.begin() as db:
        db.execute(update(User).where(User.username == "dpmk.kasubbag").values(active=False))
    assert client.get("/api/v1/tasks", headers=bearer(other)).status_code == 401
    for header in ({}, {"Authorization": "Basic eDp5"}, bearer("lajur_000000000000_guess"), bearer(token + "x")):
        r = client.get("/api/v1/tasks", headers=header)
        assert r.status_code == 401 and r.mimetype == "application/problem+json"


def test_tokens_are_stored_hashed_and_shown_once_on_the_profile_page(app, services):
    from tests.test_web import FAST_HASH, PASSWORD
    with services.sessions.begin() as db:
        db.execute(update(User).where(User.username == "dpmk.penerima").values(password_hash=FAST_HASH))
    web = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    assert web.post("/login", data={"username": "dpmk.penerima", "password": PASSWORD}).status_code == 302
    page = web.post("/profile/tokens", data={"name": "CMS website", "scope": "write", "days": "30"})
    assert page.status_code == 200
    token = re.search(r'id="new-token">([^<]+)<', page.get_data(as_text=True)).group(1)
    with services.sessions() as db:
        row = db.scalar(select(ApiToken))
        assert row.token_hash != token and token not in (row.token_hash, row.prefix, row.name)
    assert token not in web.get("/profile/tokens").get_data(as_text=True)  # shown once
    assert app.test_client().get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    bad = web.post("/profile/tokens", data={"name": "", "scope": "admin", "days": "0"})
    assert bad.status_code == 422
    assert web.post(f"/profile/tokens/{row.id}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/tasks", headers=bearer(token)).status_code == 401


def test_service_account_works_its_lane_and_cannot_sign_in(app, services):
    from engine.accounts import authenticate, office_by_code
    with services.sessions.begin() as db:
        tokens.create_service_account(db, office_by_code(db, "dpmk"), "dpmk.cms", "CMS Website",
                                      ("Petugas Penerima Berita/Informasi",))
    with services.sessions() as db:
        assert authenticate(db, "dpmk.cms", "!service") is None
    client = app.test_client()
    token = make_token(services, "dpmk.cms")
    started = start(client, token, "Berita dari CMS")
    assert client.post(f"/api/v1/tasks/{started['open_tasks'][0]}/claim", headers=bearer(token)).status_code == 200


def test_rate_limit_per_token(services, demo):
    app = create_app(services=services, config={"TESTING": True, "LAJUR_API_LIMIT": "3/minute"})
    client = app.test_client()
    first, second = make_token(services, "dpmk.penerima"), make_token(services, "dpmk.kasubbag")
    codes = [client.get("/api/v1/tasks", headers=bearer(first)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.get("/api/v1/tasks", headers=bearer(first))
    assert int(r.headers["Retry-After"]) >= 1 and r.mimetype == "application/problem+json"
    assert client.get("/api/v1/tasks", headers=bearer(second)).status_code == 200  # per token


def test_cursor_pages_cover_every_row_once(app, services):
    client = app.test_client()
    token = make_token(services, "dpmk.penerima")
    for n in range(7):
        start(client, token, f"Berita {n}")
    seen, cursor = [], None
    while True:
        r = client.get("/api/v1/instances", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})},
                       headers=bearer(token))
        seen += [i["id"] for i in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(7, 0, -1))
    tasks, cursor = [], None
    while True:
        r = client.get("/api/v1/tasks", query_string={"view": "mine", "limit": 2, **({"cursor": cursor} if cursor else {})},
                       headers=bearer(token))
        tasks += [t["id"] for t in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    assert sorted(tasks) == list(range(1, 8))
    assert client.get("/api/v1/instances?cursor=bm9wZQ", headers=bearer(token)).status_code == 422
    assert [i["subject"] for i in client.get("/api/v1/instances?q=berita 3", headers=bearer(token)).json["items"]] \
        == ["Berita 3"]


def test_openapi_31_document_and_vendored_docs_page(app):
    client = app.test_client()
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    ops = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert {"listProcesses", "startInstance", "listTasks", "completeTask", "uploadEvidence", "listNotifications",
            "getDashboard", "computeDueTime"} <= ops
    problem = doc["paths"]["/api/v1/tasks/{task_id}/complete"]["post"]["responses"]["409"]
    assert "application/problem+json" in problem["content"]
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[1]
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_calendar_and_due_time(app, services):
    client = app.test_client()
    token = make_token(services, "dpmk.penerima", scope="read")
    cal = client.get("/api/v1/calendar?year=2026", headers=bearer(token)).json
    assert cal["office"] == "dpmk" and any(h["day"] == "2026-08-17" for h in cal["holidays"])
    # Friday 2026-12-04 15:30 WIB + 120 working minutes: 60 that day (to 16:30), 60 on Monday from 07:30
    r = client.get("/api/v1/calendar/due", query_string={"start": "2026-12-04T15:30:00+07:00", "mutu_baku": "PT120M"},
                   headers=bearer(token))
    assert r.status_code == 200 and r.json["due_at"] == "2026-12-07T01:30:00Z"
    bad = client.get("/api/v1/calendar/due", query_string={"start": "2026-12-04T15:30:00+07:00", "mutu_baku": "P1Y"},
                     headers=bearer(token))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "mutu_baku"


def test_dashboard_is_for_supervisors(app, services):
    client = app.test_client()
    assert client.get("/api/v1/dashboard/overview", headers=bearer(make_token(services, "dpmk.penerima"))) \
        .status_code == 403
    r = client.get("/api/v1/dashboard/overview", headers=bearer(make_token(services, "dpmk.kasubbag")))
    assert r.status_code == 200 and r.json["tables"][0]["name"] == "overview"


def test_instance_filters(app, services):
    client = app.test_client()
    token = make_token(services, "dpmk.penerima")
    first = start(client, token, "Musrenbang")
    start(client, token, "Bimtek")
    kasubbag = make_token(services, "dpmk.kasubbag")

    def ids(**query):
        r = client.get("/api/v1/instances", query_string=query, headers=bearer(kasubbag))
        assert r.status_code == 200, r.data
        return [i["id"] for i in r.json["items"]]
    assert ids(officer="dpmk.penerima") == [2, 1] and ids(officer="dpmk.kasubbag") == []
    assert ids(status="running") == [2, 1] and ids(status="completed") == []
    assert ids(process=DPMK) == [2, 1] and ids(process="nope") == []
    assert ids(late="false") == [2, 1] and ids(late="true") == []
    with services.sessions.begin() as db:  # the first step of the first instance is now past due
        db.execute(update(HumanTask).where(HumanTask.id == first["open_tasks"][0])
                   .values(due_at=now() - timedelta(minutes=5)))
    assert ids(late="true") == [1]
    today = now().astimezone(ZoneInfo("Asia/Jakarta")).date().isoformat()  # the filter's days are WIB days
    assert ids(started_from=today, started_to=today) == [2, 1]
    assert ids(started_to="2020-01-01") == []
    # a WIB day begins at 17:00 UTC the day before: an instance started at 00:30 WIB on 2 March
    # belongs to 2 March whatever the UTC date says (SQLite keeps the UTC wall time as text)
    with services.sessions.begin() as db:
        db.execute(update(ProcessInstance).where(ProcessInstance.id == first["id"])
                   .values(started_at=datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc)))
    assert ids(started_from="2026-03-02", started_to="2026-03-02") == [1]
    assert ids(started_from="2026-03-01", started_to="2026-03-01") == []


def test_spectree_guard():
    """What the API relies on in spectree beyond its decorators (pinned exactly in pyproject):
    the pydantic adapter class it subclasses and the BaseFile type it documents uploads with."""
    from importlib.metadata import version

    from pydantic import ValidationError
    from spectree.model_adapter.pydantic_adapter import BaseFile, PydanticModelAdapter

    from webui.api.base import _Models
    from webui.api.schemas import EvidenceForm

    assert version("spectree") == "3.0.0"
    assert issubclass(_Models, PydanticModelAdapter)
    assert EvidenceForm.model_json_schema()["properties"]["file"]["format"] == "binary"
    assert BaseFile.validate(object) is object
    try:
        EvidenceForm.model_validate({"field": "x", "extra": io.BytesIO(b"\x00")})
    except ValidationError as exc:
        errors = _Models().validation_errors(exc)
    assert errors and all("input" not in e for e in errors)
