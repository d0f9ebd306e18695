"""Incidents instead of tracebacks: run-time errors of a deployed process stop the instance
visibly, tell its owners and supervisors, and are retried after a fix (SQLite and PostgreSQL).

Each process passes deploy's checks (engine/bpmn.py) and fails only with the data of a case:
a condition over a field the form does not require, a timer whose duration comes from a form
field, a script task (scripts enabled for the installation) over a form field.
"""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from engine import audit
from engine.accounts import create_user, get_or_create_office, user_by_name
from engine.config import DeployLimits
from engine.deploy import deploy_folder
from engine.errors import Conflict, Forbidden, FormInvalid, OtherOffice
from engine.models import AuditEvent, HumanTask, Incident, Notification, ProcessInstance
from engine.offices import create_group, set_membership
from engine.runtime import Runtime
from engine.services import Services
from webui.metrics import open_incidents

from .test_readme_kelurahan import write_readme_folder

OFFICE = "panggungharjo"
PASSWORD = "sandi-uji-123"
FAST_HASH = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
TERIMA = {"nama_pemohon": "Budi Santoso", "nik": "3402011203870001"}


# ---- the office, its people, and processes that fail only at run time -----------------------
@pytest.fixture
def people(services):
    with services.sessions.begin() as session:
        office = get_or_create_office(session, OFFICE, "Kalurahan Panggungharjo")
        other = get_or_create_office(session, "sumbermulyo", "Kalurahan Sumbermulyo")
        for lane in ("Petugas Pelayanan", "Lurah"):
            create_group(session, OFFICE, lane)
        for name, roles, locale, office_ in (("pgh.petugas", ("staff",), "id", office),
                                             ("pgh.lurah", ("staff", "supervisor"), "id", office),
                                             ("pgh.pemilik", ("staff", "process_owner"), "en", office),
                                             ("smb.pemilik", ("staff", "process_owner"), "id", other)):
            create_user(session, name, PASSWORD, name.title(), office_, roles=roles, locale=locale)
            user_by_name(session, name).password_hash = FAST_HASH
        set_membership(session, OFFICE, "Petugas Pelayanan", "pgh.petugas", True)
        set_membership(session, OFFICE, "Lurah", "pgh.lurah", True)
    with services.sessions() as session:
        return {n: user_by_name(session, n).id for n in ("pgh.petugas", "pgh.lurah", "pgh.pemilik", "smb.pemilik")}


def edit(folder, file, old, new):
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_field(folder, form, name, schema):
    path = folder / "forms" / form
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["properties"][name] = schema
    path.write_text(json.dumps(doc), encoding="utf-8")


def optional_decision(folder):
    """The Lurah's form no longer requires keputusan_lurah: deploy passes, a case without it fails."""
    path = folder / "forms" / "setujui.schema.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["required"] = []
    path.write_text(json.dumps(doc), encoding="utf-8")
    return folder


def insert_after_terima(folder, element_xml, element_id):
    """Put an element between `terima` and `setujui` (in the Petugas lane)."""
    edit(folder, "process.bpmn", '<bpmn:sequenceFlow id="f_terima" sourceRef="terima" targetRef="setujui" />',
         f'<bpmn:sequenceFlow id="f_terima" sourceRef="terima" targetRef="{element_id}" />\n'
         f'    <bpmn:sequenceFlow id="f_after" sourceRef="{element_id}" targetRef="setujui" />')
    edit(folder, "process.bpmn", "<bpmn:incoming>f_terima</bpmn:incoming>", "<bpmn:incoming>f_after</bpmn:incoming>")
    edit(folder, "process.bpmn", '<bpmn:endEvent id="selesai"', element_xml + '\n    <bpmn:endEvent id="selesai"')
    edit(folder, "process.bpmn", "<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef>",
         f"<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef>\n        <bpmn:flowNodeRef>{element_id}</bpmn:flowNodeRef>")


def timer_from_form(folder):
    """A waiting period (masa sanggah) whose duration the Petugas types in."""
    add_field(folder, "terima.schema.json", "masa_sanggah", {"type": "string", "title": "Masa sanggah",
                                                             "maxLength": 20})
    insert_after_terima(folder, '<bpmn:intermediateCatchEvent id="sanggah" name="Masa sanggah">'
                                '<bpmn:incoming>f_terima</bpmn:incoming><bpmn:outgoing>f_after</bpmn:outgoing>'
                                '<bpmn:timerEventDefinition id="sanggah_timer"><bpmn:timeDuration>masa_sanggah'
                                '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>',
                        "sanggah")
    return folder


def script_over_form(folder):
    """A script task computing the fee from a number the Petugas types as text."""
    add_field(folder, "terima.schema.json", "jumlah_lembar", {"type": "string", "title": "Jumlah lembar",
                                                              "maxLength": 10})
    insert_after_terima(folder, '<bpmn:scriptTask id="hitung_biaya" name="Menghitung biaya">'
                                '<bpmn:incoming>f_terima</bpmn:incoming><bpmn:outgoing>f_after</bpmn:outgoing>'
                                '<bpmn:script>biaya = int(jumlah_lembar) * 1000</bpmn:script></bpmn:scriptTask>',
                        "hitung_biaya")
    return folder


def deploy(services, folder, allow_scripts=False):
    with services.sessions.begin() as session:
        deploy_folder(session, folder, services.runtime.store, limits=DeployLimits(allow_scripts=allow_scripts))


def open_steps(services, instance_id):
    with services.sessions() as session:
        return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                            HumanTask.state == "ready")))


def step(rt, services, user_id, instance_id, bpmn_id, data):
    (task,) = open_steps(services, instance_id)
    assert task.bpmn_id == bpmn_id
    rt.claim(user_id, task.id)
    return task, rt.complete(user_id, task.id, data)


def instance(services, instance_id) -> ProcessInstance:
    with services.sessions() as session:
        return session.get(ProcessInstance, instance_id)


def incidents_of(services, instance_id) -> list[Incident]:
    with services.sessions() as session:
        return list(session.scalars(select(Incident).where(Incident.instance_id == instance_id).order_by(Incident.id)))


def audit_kinds(services, instance_id) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == instance_id)
                                    .order_by(AuditEvent.id)))


def gauge(services) -> int:
    with services.engine.connect() as conn:
        return open_incidents(conn)


def stopped_at_gateway(services, people, tmp_path):
    """A case whose Lurah leaves the decision empty: the gateway cannot choose."""
    deploy(services, optional_decision(write_readme_folder(tmp_path / "surat-domisili")))
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi Santoso")
    step(rt, services, people["pgh.petugas"], iid, "terima", TERIMA)
    task, opened = step(rt, services, people["pgh.lurah"], iid, "setujui", {"catatan": "lengkap"})
    return iid, task, opened


# ---- a condition that fails at run time -----------------------------------------------------
def test_condition_over_missing_field_opens_an_incident_and_a_data_fix_resumes(services, people, tmp_path):
    rt = services.runtime
    iid, task, opened = stopped_at_gateway(services, people, tmp_path)

    # the command returned normally; the Lurah's completion is kept, the instance stopped at the gateway
    assert opened == [] and opened.incident is not None
    assert instance(services, iid).status == "incident"
    with services.sessions() as session:
        done = session.get(HumanTask, task.id)
    assert done.state == "completed" and done.data["catatan"] == "lengkap" and "paraf_setujui" in done.data
    (inc,) = incidents_of(services, iid)
    assert (inc.id, inc.kind, inc.element_id, inc.element_name) == (opened.incident, "expression", "keputusan",
                                                                   "Disetujui?")
    assert inc.resolved_at is None and inc.attempts == 1 and inc.version_id == instance(services, iid).version_id
    assert "keputusan_lurah" in inc.message and "does not have" in inc.message and "\n" not in inc.message
    assert "keputusan_lurah" in inc.detail["text"]["id"] and "tidak ada" in inc.detail["text"]["id"]
    assert inc.detail["missing"] == ["keputusan_lurah"] and inc.detail["reason"] == "missing_data"
    assert inc.snapshot["catatan"] == "lengkap" and inc.snapshot["nik"] == TERIMA["nik"]
    assert audit_kinds(services, iid)[-2:] == ["task_completed", "incident_opened"]
    assert open_steps(services, iid) == []
    assert gauge(services) == 1

    # the owner (English) and the supervisor (Indonesian) were told in the app; the Petugas was not
    with services.sessions() as session:
        notes = {n.user_id: n for n in session.scalars(select(Notification).where(Notification.level == "incident"))}
    assert set(notes) == {people["pgh.pemilik"], people["pgh.lurah"]}
    assert notes[people["pgh.pemilik"]].subject.startswith("[Lajur] Incident: Surat Keterangan Domisili")
    assert "Disetujui?" in notes[people["pgh.lurah"]].body and "Pemilik proses" in notes[people["pgh.lurah"]].body
    assert notes[people["pgh.lurah"]].link == f"/instances/{iid}" and notes[people["pgh.lurah"]].inapp

    # who may retry: the office's process owner; not the supervisor, not another office's owner
    with pytest.raises(Forbidden):
        rt.retry_incident(people["pgh.lurah"], inc.id)
    with pytest.raises(OtherOffice):
        rt.retry_incident(people["smb.pemilik"], inc.id)
    with pytest.raises(OtherOffice):
        rt.list_incidents(people["smb.pemilik"], OFFICE)
    assert rt.list_incidents(people["smb.pemilik"]) == []
    with pytest.raises(Forbidden):
        rt.list_incidents(people["pgh.petugas"])
    assert [r.id for r in rt.list_incidents(people["pgh.lurah"])] == [inc.id]

    # corrected data is validated and restricted to the forms' fields; a refusal changes nothing
    for bad in ({"keputusan_lurah": "MUNGKIN"}, {"tidak_ada": "x"}, {"paraf_setujui": {"user": "x"}}):
        with pytest.raises(FormInvalid):
            rt.retry_incident(people["pgh.pemilik"], inc.id, bad)
    assert incidents_of(services, iid)[0].attempts == 1

    # a retry without a fix fails the same way: attempts counted, nothing else changes
    result = rt.retry_incident(people["pgh.pemilik"], inc.id)
    assert not result.resolved and "keputusan_lurah" in result.message
    (inc,) = incidents_of(services, iid)
    assert inc.attempts == 2 and inc.resolved_at is None and instance(services, iid).status == "incident"
    assert audit_kinds(services, iid)[-1] == "incident_retry_failed"

    # the fix: the owner sets the decision; the gateway runs again and the instance goes on
    result = rt.retry_incident(people["pgh.pemilik"], inc.id, {"keputusan_lurah": "YA"})
    assert result.resolved and result.new_incident is None
    (inc,) = incidents_of(services, iid)
    assert inc.resolved_at is not None and inc.resolved_by_id == people["pgh.pemilik"] and inc.attempts == 3
    assert instance(services, iid).status == "running" and gauge(services) == 0
    with services.sessions() as session:
        resolved = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                            AuditEvent.kind == "incident_resolved")).one()
    assert resolved.data["changed"] == {"keputusan_lurah": {"from": None, "to": "YA"}}
    with pytest.raises(Conflict):
        rt.retry_incident(people["pgh.pemilik"], inc.id)
    step(rt, services, people["pgh.petugas"], iid, "terbitkan", {"nomor_surat": "470/12/2026"})
    assert instance(services, iid).status == "completed"
    with services.sessions() as session:  # every incident row is on the instance's hash chain
        assert audit.verify(session).broken is None


def test_incompatible_types_in_a_condition(services, people, tmp_path):
    """`jumlah > 3` over a text field: the condition cannot compare, in plain words; fixed as a number."""
    folder = write_readme_folder(tmp_path / "surat-domisili")
    add_field(folder, "setujui.schema.json", "jumlah", {"type": ["string", "integer"]})
    edit(folder, "process.bpmn", 'keputusan_lurah == "YA"</bpmn:conditionExpression>',
         'keputusan_lurah == "YA" and jumlah &gt; 3</bpmn:conditionExpression>')
    edit(folder, "process.bpmn", 'keputusan_lurah == "TIDAK"</bpmn:conditionExpression>',
         'keputusan_lurah == "TIDAK" or jumlah &lt;= 3</bpmn:conditionExpression>')
    optional_decision(folder)
    deploy(services, folder)
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Sari")
    step(rt, services, people["pgh.petugas"], iid, "terima", TERIMA)
    _, opened = step(rt, services, people["pgh.lurah"], iid, "setujui", {"keputusan_lurah": "YA", "jumlah": "lima"})
    (inc,) = incidents_of(services, iid)
    assert opened.incident == inc.id and inc.kind == "expression" and inc.detail["reason"] == "evaluation"
    assert "'>' not supported" in inc.message and inc.detail["names"] == ["jumlah", "keputusan_lurah"]
    assert rt.retry_incident(people["pgh.pemilik"], inc.id, {"jumlah": 5}).resolved
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["terbitkan"]


# ---- a timer that fails ---------------------------------------------------------------------
def test_timer_with_a_bad_duration_opens_an_incident_and_fires_after_the_fix(services, people, tmp_path):
    deploy(services, timer_from_form(write_readme_folder(tmp_path / "surat-domisili")))
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    _, opened = step(rt, services, people["pgh.petugas"], iid, "terima", {**TERIMA, "masa_sanggah": "tiga hari"})
    (inc,) = incidents_of(services, iid)
    assert opened.incident == inc.id and (inc.kind, inc.element_id) == ("timer", "sanggah")
    assert "'tiga hari' is not an ISO 8601 duration" in inc.message and "Pewaktu" in inc.detail["text"]["id"]
    assert instance(services, iid).status == "incident" and instance(services, iid).next_timer_at is None
    assert rt.run_due_timers() == 0  # an instance in incident is not picked by the tick

    result = rt.retry_incident(people["pgh.pemilik"], inc.id, {"masa_sanggah": "PT5M"})
    assert result.resolved, result.message
    inst = instance(services, iid)
    assert inst.status == "running" and inst.next_timer_at is not None and open_steps(services, iid) == []
    # the tick fires it once its time came: the Lurah's step opens
    later = Runtime(services.sessions, clock=lambda: rt.now() + timedelta(minutes=6))
    assert later.run_due_timers() == 1
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["setujui"]


def test_a_failure_after_a_timer_fires_opens_an_incident_from_the_tick(services, people, tmp_path):
    """The tick (not a user) runs into the error: the instance stops there, the command returns."""
    folder = timer_from_form(write_readme_folder(tmp_path / "surat-domisili"))
    add_field(folder, "terima.schema.json", "prioritas", {"type": "string", "enum": ["tinggi", "biasa"]})
    edit(folder, "process.bpmn", '<bpmn:sequenceFlow id="f_after" sourceRef="sanggah" targetRef="setujui" />',
         '<bpmn:sequenceFlow id="f_after" sourceRef="sanggah" targetRef="prioritas_gw" />\n'
         '    <bpmn:sequenceFlow id="f_hi" sourceRef="prioritas_gw" targetRef="setujui">'
         '<bpmn:conditionExpression>prioritas == "tinggi"</bpmn:conditionExpression></bpmn:sequenceFlow>\n'
         '    <bpmn:sequenceFlow id="f_lo" sourceRef="prioritas_gw" targetRef="setujui">'
         '<bpmn:conditionExpression>prioritas == "biasa"</bpmn:conditionExpression></bpmn:sequenceFlow>')
    edit(folder, "process.bpmn", "<bpmn:incoming>f_after</bpmn:incoming>",
         "<bpmn:incoming>f_hi</bpmn:incoming><bpmn:incoming>f_lo</bpmn:incoming>")
    edit(folder, "process.bpmn", '<bpmn:endEvent id="selesai"',
         '<bpmn:exclusiveGateway id="prioritas_gw" name="Prioritas?"><bpmn:incoming>f_after</bpmn:incoming>'
         '<bpmn:outgoing>f_hi</bpmn:outgoing><bpmn:outgoing>f_lo</bpmn:outgoing></bpmn:exclusiveGateway>\n'
         '    <bpmn:endEvent id="selesai"')
    edit(folder, "process.bpmn", "<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef>",
         "<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef><bpmn:flowNodeRef>prioritas_gw</bpmn:flowNodeRef>")
    deploy(services, folder)
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    _, opened = step(rt, services, people["pgh.petugas"], iid, "terima", {**TERIMA, "masa_sanggah": "PT5M"})
    assert opened.incident is None and instance(services, iid).status == "running"
    later = Runtime(services.sessions, clock=lambda: rt.now() + timedelta(minutes=6))
    assert later.run_due_timers() == 1
    (inc,) = incidents_of(services, iid)
    assert (inc.kind, inc.element_id) == ("expression", "prioritas_gw") and "prioritas" in inc.detail["missing"]
    assert instance(services, iid).status == "incident" and later.run_due_timers() == 0
    assert audit_kinds(services, iid)[-2:] == ["timer_fired", "incident_opened"]
    assert later.retry_incident(None, inc.id, {"prioritas": "biasa"}).resolved  # the console operator
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["setujui"]


# ---- a script task error --------------------------------------------------------------------
@pytest.fixture
def script_services(settings, backend, people, services):
    svc = Services.from_settings(dataclasses.replace(settings, allow_scripts=True))
    yield svc
    svc.dispose()


def test_script_task_error_opens_an_incident_and_reruns_after_the_fix(script_services, people, tmp_path):
    services = script_services
    deploy(services, script_over_form(write_readme_folder(tmp_path / "surat-domisili")), allow_scripts=True)
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    _, opened = step(rt, services, people["pgh.petugas"], iid, "terima", {**TERIMA, "jumlah_lembar": "dua"})
    (inc,) = incidents_of(services, iid)
    assert opened.incident == inc.id and (inc.kind, inc.element_id, inc.element_name) == (
        "script", "hitung_biaya", "Menghitung biaya")
    assert "ValueError" in inc.message and "line 1" in inc.message and inc.snapshot["jumlah_lembar"] == "dua"
    result = rt.retry_incident(people["pgh.pemilik"], inc.id, {"jumlah_lembar": "2"})
    assert result.resolved, result.message
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["setujui"]
    with services.sessions() as session:
        state = session.get(ProcessInstance, iid).state
    assert '"biaya": 2000' in json.dumps(state)


def test_a_script_on_an_installation_without_scripts_is_an_incident_not_a_crash(script_services, services, people,
                                                                               tmp_path):
    """Deployed while scripts were allowed, run after they were switched off: a clear incident."""
    deploy(script_services, script_over_form(write_readme_folder(tmp_path / "surat-domisili")), allow_scripts=True)
    rt = services.runtime  # allow_scripts is off here
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    step(rt, services, people["pgh.petugas"], iid, "terima", {**TERIMA, "jumlah_lembar": "2"})
    (inc,) = incidents_of(services, iid)
    assert inc.kind == "script" and inc.detail["reason"] == "scripts_disabled" and "LAJUR_ALLOW_SCRIPTS" in inc.message


# ---- the CLI: one line and a non-zero exit ---------------------------------------------------
def test_cli_prints_one_line_and_exits_non_zero_then_retries(services, people, tmp_path, monkeypatch):
    folder = optional_decision(write_readme_folder(tmp_path / "surat-domisili"))
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    def lajur(*args):
        return runner.invoke(__import__("engine.cli", fromlist=["main"]).main, list(args), env=env)

    assert lajur("deploy", str(folder)).exit_code == 0
    iid = int(re.search(r"instance (\d+)", lajur("start", "pgh.petugas", "surat-domisili", "--subject", "X").output)[1])
    (t1,) = open_steps(services, iid)
    assert lajur("complete", "pgh.petugas", str(t1.id), "--data", json.dumps(TERIMA)).exit_code == 0
    (t2,) = open_steps(services, iid)
    result = lajur("complete", "pgh.lurah", str(t2.id), "--data", '{"catatan": "ok"}')
    assert result.exit_code == 3 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "incident" in lines[0] and "keputusan_lurah" in lines[0] and "notified" in lines[0]
    (inc,) = incidents_of(services, iid)

    listed = lajur("incidents", "list", "--office", OFFICE)
    assert listed.exit_code == 0 and f"#{inc.id}" in listed.output and "OPEN" in listed.output
    assert "0 incident(s)" in lajur("incidents", "list", "--office", "sumbermulyo").output
    failed = lajur("incidents", "retry", str(inc.id))
    assert failed.exit_code == 3 and len(failed.output.strip().splitlines()) == 1
    bad = lajur("incidents", "retry", str(inc.id), "--set", "keputusan_lurah=MUNGKIN")
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1 and "keputusan_lurah" in bad.output
    refused = lajur("incidents", "retry", str(inc.id), "--as", "pgh.lurah", "--set", "keputusan_lurah=YA")
    assert refused.exit_code == 1 and "process owner" in refused.output
    ok = lajur("incidents", "retry", str(inc.id), "--as", "pgh.pemilik", "--set", "keputusan_lurah=TIDAK")
    assert ok.exit_code == 0 and "resolved" in ok.output, ok.output
    assert instance(services, iid).status == "completed"  # TIDAK ends the case
    assert "resolved" in lajur("incidents", "list", "--all").output


# ---- the web: a page, never a 500 ------------------------------------------------------------
def login(app, username):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data[:300]
    return client


def test_web_completion_list_instance_page_and_retry(services, people, tmp_path):
    from webui import create_app
    deploy(services, optional_decision(write_readme_folder(tmp_path / "surat-domisili")))
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False})
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili <Budi>")
    step(rt, services, people["pgh.petugas"], iid, "terima", TERIMA)
    (task,) = open_steps(services, iid)

    lurah = login(app, "pgh.lurah")
    response = lurah.post(f"/tasks/{task.id}", data={"catatan": "lengkap"}, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "SOP berhenti karena masalah" in page and "Pemilik proses dan supervisor sudah diberi tahu" in page
    (inc,) = incidents_of(services, iid)
    assert "lajur_incidents_open 1.0" in app.test_client().get("/metrics").get_data(as_text=True)

    # the list: supervisors and owners of the office; staff get a 403 page; other offices see nothing
    listing = lurah.get("/incidents").get_data(as_text=True)
    assert f"/instances/{iid}#incident-{inc.id}" in listing and "Domisili &lt;Budi&gt;" in listing
    assert login(app, "pgh.petugas").get("/incidents").status_code == 403
    assert f"#incident-{inc.id}" not in login(app, "smb.pemilik").get("/incidents").get_data(as_text=True)

    # the instance page: the supervisor sees error, element and data, but no retry form
    detail = lurah.get(f"/instances/{iid}").get_data(as_text=True)
    assert "Berhenti: insiden" in detail and "keputusan_lurah" in detail and "lengkap" in detail
    assert f"/incidents/{inc.id}/retry" not in detail
    assert lurah.post(f"/incidents/{inc.id}/retry", data={"field": "keputusan_lurah", "value": "YA"}).status_code == 403

    # the owner (English): retry form with the named field; a wrong value is a message, not a 500
    owner = login(app, "pgh.pemilik")
    detail = owner.get(f"/instances/{iid}").get_data(as_text=True)
    assert f"/incidents/{inc.id}/retry" in detail and 'name="value"' in detail and "does not have" in detail
    response = owner.post(f"/incidents/{inc.id}/retry", data={"field": "keputusan_lurah", "value": "MUNGKIN"},
                          follow_redirects=True)
    assert response.status_code == 200 and "MUNGKIN" in response.get_data(as_text=True)
    assert incidents_of(services, iid)[0].resolved_at is None
    response = owner.post(f"/incidents/{inc.id}/retry", data={"field": "keputusan_lurah", "value": "YA"},
                          follow_redirects=True)
    assert response.status_code == 200
    assert incidents_of(services, iid)[0].resolved_at is not None
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["terbitkan"]
    assert f"#incident-{inc.id}" in owner.get("/incidents?state=all").get_data(as_text=True)
    assert owner.post("/incidents/999999/retry").status_code == 404
    assert "lajur_incidents_open 0.0" in owner.get("/metrics").get_data(as_text=True)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1


def test_a_script_failing_at_start_leaves_a_started_instance_in_incident(script_services, people, tmp_path):
    services = script_services
    folder = write_readme_folder(tmp_path / "surat-domisili")
    edit(folder, "process.bpmn", '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="terima" />',
         '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="nomor" />\n'
         '    <bpmn:sequenceFlow id="f_nomor" sourceRef="nomor" targetRef="terima" />')
    edit(folder, "process.bpmn", "<bpmn:incoming>f_start</bpmn:incoming>\n      <bpmn:outgoing>f_terima",
         "<bpmn:incoming>f_nomor</bpmn:incoming>\n      <bpmn:outgoing>f_terima")
    edit(folder, "process.bpmn", '<bpmn:endEvent id="selesai"',
         '<bpmn:scriptTask id="nomor" name="Memberi nomor agenda"><bpmn:incoming>f_start</bpmn:incoming>'
         '<bpmn:outgoing>f_nomor</bpmn:outgoing><bpmn:script>nomor_agenda = agenda_terakhir + 1</bpmn:script>'
         '</bpmn:scriptTask>\n    <bpmn:endEvent id="selesai"')
    edit(folder, "process.bpmn", "<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef>",
         "<bpmn:flowNodeRef>selesai</bpmn:flowNodeRef><bpmn:flowNodeRef>nomor</bpmn:flowNodeRef>")
    deploy(services, folder, allow_scripts=True)
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    (inc,) = incidents_of(services, iid)
    assert instance(services, iid).status == "incident" and inc.kind == "script" and inc.element_id == "nomor"
    assert inc.detail["missing"] == ["agenda_terakhir"] and open_steps(services, iid) == []
    assert audit_kinds(services, iid) == ["instance_started", "incident_opened"]
    # only form fields may be set: the script's input is no form field, so the fix is a new version
    with pytest.raises(FormInvalid):
        rt.retry_incident(people["pgh.pemilik"], inc.id, {"agenda_terakhir": 7})
    # the fix as a new version: the instance moved to it (what `migrate-instances` does; here by
    # hand, with the lock_version bump every instance write makes), then the retry runs it
    edit(folder, "process.bpmn", "nomor_agenda = agenda_terakhir + 1", "nomor_agenda = 1")
    deploy(services, folder, allow_scripts=True)
    with services.sessions.begin() as session:
        from engine.models import ProcessDefinition
        latest = session.scalar(select(ProcessDefinition.latest_version_id))
        moved = session.get(ProcessInstance, iid)
        assert moved.version_id != latest
        moved.version_id, moved.lock_version = latest, moved.lock_version + 1
    result = rt.retry_incident(people["pgh.pemilik"], inc.id)
    assert result.resolved, result.message
    assert [t.bpmn_id for t in open_steps(services, iid)] == ["terima"]
    assert instance(services, iid).status == "running"


def test_api_completion_reports_the_incident(services, people, tmp_path):
    from webui import create_app
    from .api_live import make_token
    deploy(services, optional_decision(write_readme_folder(tmp_path / "surat-domisili")))
    rt = services.runtime
    iid = rt.start(people["pgh.petugas"], "surat-domisili", "Domisili Budi")
    step(rt, services, people["pgh.petugas"], iid, "terima", TERIMA)
    (task,) = open_steps(services, iid)
    app = create_app(services=services, config={"TESTING": True, "LAJUR_API_LIMIT": "100000/minute"})
    token = make_token(services, "pgh.lurah")
    r = app.test_client().post(f"/api/v1/tasks/{task.id}/complete", json={"data": {"catatan": "ok"}},
                               headers={"Authorization": f"Bearer {token}"})
    (inc,) = incidents_of(services, iid)
    assert r.status_code == 200 and r.json == {"opened": [], "incident": inc.id}
