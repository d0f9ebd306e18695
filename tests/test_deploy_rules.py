"""Deploy refuses what would strand an instance, and nothing of a process runs before permission.

The base process is the README's kelurahan SOP; each test breaks one rule and checks the
refusal names file, element and line in one line, and that nothing was stored.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from engine.accounts import create_user, get_or_create_office, user_by_name
from engine.bpmn import load_process_folder
from engine.config import DeployLimits
from engine.deploy import deploy_folder
from engine.errors import DeployError, Forbidden
from engine.expressions import ExpressionError, check, evaluate, script_engine
from engine.models import Group, ProcessVersion
from engine.offices import create_group
from engine.services import Services

from .test_readme_kelurahan import write_readme_folder

OFFICE = "panggungharjo"
LANES = ("Petugas Pelayanan", "Lurah")


@pytest.fixture
def folder(tmp_path):
    return write_readme_folder(tmp_path / "surat-domisili")


def edit(folder, old, new, file="process.bpmn"):
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(folder, needle, file="process.bpmn"):
    for no, line in enumerate((folder / file).read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return no
    raise AssertionError(needle)


def refused(folder, limits=None) -> DeployError:
    with pytest.raises(DeployError) as err:
        load_process_folder(folder, limits)
    message = str(err.value)
    assert "\n" not in message and " at 0x" not in message and "Traceback" not in message
    return err.value


@pytest.fixture
def office(services):
    with services.sessions.begin() as session:
        get_or_create_office(session, OFFICE, "Kalurahan Panggungharjo")
        for lane in LANES:
            create_group(session, OFFICE, lane)
    return OFFICE


def versions(services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(ProcessVersion))


# ---- rule 3: lanes are groups of the office --------------------------------------------------
def test_lane_must_name_an_existing_group(services, office, folder):
    edit(folder, 'name="Lurah"', 'name="Lurahh"')
    with pytest.raises(DeployError) as err:
        with services.sessions.begin() as session:
            deploy_folder(session, folder, services.runtime.store)
    message = str(err.value)
    assert "'Lurahh'" in message and "Lurah, Petugas Pelayanan" in message and "--create-groups" in message
    assert err.value.element_id == "setujui" and err.value.line == line_of(folder, 'name="Lurahh"')
    assert versions(services) == 0
    with services.sessions() as session:  # no group was created by the refusal
        assert session.scalar(select(func.count()).select_from(Group).where(Group.name == "Lurahh")) == 0
    with services.sessions.begin() as session:
        result = deploy_folder(session, folder, services.runtime.store, create_groups=True)
        assert result.created and result.created_groups == ("Lurahh",)


def test_supervisor_lane_must_exist_too(services, office, folder):
    edit(folder, '"supervisor_lanes": ["Lurah"]', '"supervisor_lanes": ["Carik"]', file="sop.json")
    with pytest.raises(DeployError, match="supervisor lane.*'Carik'"):
        with services.sessions.begin() as session:
            deploy_folder(session, folder, services.runtime.store)
    assert versions(services) == 0


# ---- conditions: names exist, language restricted --------------------------------------------
def test_condition_name_no_form_has(folder):
    edit(folder, 'keputusan_lurah == "YA"', 'keputusan_lurahh == "YA"')
    err = refused(folder)
    assert err.element_id == "f_ya" and err.line == line_of(folder, "keputusan_lurahh")
    assert "'keputusan_lurahh' is not a field of any form" in err.reason


def test_condition_name_filled_only_later_is_refused(folder):
    edit(folder, 'keputusan_lurah == "YA"', 'nomor_surat == "YA"')
    err = refused(folder)
    assert err.element_id == "f_ya" and "not filled on every path before the gateway" in err.reason


def test_engine_variable_paraf_is_known(folder):
    edit(folder, 'keputusan_lurah == "YA"', 'keputusan_lurah == "YA" and paraf_setujui is not None')
    assert load_process_folder(folder).steps["setujui"]["paraf"]


@pytest.mark.parametrize("condition", [
    "__import__('os').system('id')", "().__class__.__bases__", "open('/etc/passwd')", "keputusan_lurah.upper()",
    "[x for x in keputusan_lurah]", "lambda: 1", "keputusan_lurah ** 99999",
])
def test_conditions_outside_the_language_are_refused_with_line(folder, condition):
    edit(folder, 'keputusan_lurah == "YA"', condition.replace("'", "&apos;"))
    err = refused(folder)
    assert err.element_id == "f_ya" and err.line == line_of(folder, "<bpmn:conditionExpression>")
    assert err.file.endswith("process.bpmn")


def test_run_time_enforces_the_same_language():
    assert evaluate('a == "YA" and len(b) > 1 and x in ["p", "q"]', {"a": "YA", "b": [1, 2], "x": "p"}) is True
    assert check('lower(a) == "ya"') == frozenset({"a"})
    for bad in ("().__class__", "__import__('os')", "getattr(a, 'x')", "a.__class__"):
        with pytest.raises(ExpressionError):
            evaluate(bad, {"a": "x"})
    engine = script_engine(allow_scripts=False)
    with pytest.raises(ExpressionError):
        engine.environment.evaluate("open('/etc/passwd')", {})
    with pytest.raises(RuntimeError, match="disabled"):
        engine.environment.execute("x = 1", {})


# ---- executable, start, end ------------------------------------------------------------------
def test_non_executable_process_is_refused(folder):
    edit(folder, 'isExecutable="true"', 'isExecutable="false"')
    err = refused(folder)
    assert err.element_id == "surat_domisili" and err.line == line_of(folder, 'isExecutable="false"')


def test_process_id_naming_a_non_executable_process_is_refused(folder):
    edit(folder, 'isExecutable="true"', 'isExecutable="false"')
    edit(folder, '"key": "surat-domisili",', '"key": "surat-domisili", "process_id": "surat_domisili",', "sop.json")
    assert "isExecutable" in refused(folder).reason


def test_first_wait_must_be_a_user_task(folder):
    edit(folder, '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="terima" />',
         '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="tunggu" />'
         '<bpmn:sequenceFlow id="f_tunggu" sourceRef="tunggu" targetRef="terima" />')
    edit(folder, '<bpmn:userTask id="terima"', '<bpmn:manualTask id="tunggu"><bpmn:incoming>f_start</bpmn:incoming>'
         '<bpmn:outgoing>f_tunggu</bpmn:outgoing></bpmn:manualTask>\n<bpmn:userTask id="terima"')
    err = refused(folder)
    assert err.element_id == "tunggu" and "manualTask" in err.reason


def test_receive_task_is_refused(folder):
    edit(folder, '<bpmn:endEvent id="ditolak"', '<bpmn:receiveTask id="tunggu_pesan" />\n<bpmn:endEvent id="ditolak"')
    err = refused(folder)
    assert err.element_id == "tunggu_pesan" and "receive" in err.reason


def test_every_path_reaches_an_end(folder):
    # TIDAK goes to a gateway that only loops back to itself: an instance there is stuck
    edit(folder, 'sourceRef="keputusan" targetRef="ditolak"', 'sourceRef="keputusan" targetRef="putar"')
    edit(folder, '<bpmn:endEvent id="ditolak"', '<bpmn:exclusiveGateway id="putar" />'
         '<bpmn:sequenceFlow id="f_putar" sourceRef="putar" targetRef="putar" />\n<bpmn:endEvent id="ditolak"')
    err = refused(folder)
    assert err.element_id == "putar" and "reaches an end" in err.reason


# ---- Mutu Baku -------------------------------------------------------------------------------
@pytest.mark.parametrize("duration,why", [("PT0M", "under 1 minute"), ("PT30S", "under 1 minute"),
                                          ("P9999999D", "ceiling"), ("P31D", "ceiling")])
def test_mutu_baku_bounds(folder, duration, why):
    edit(folder, "<bpmn:timeDuration>PT1H</bpmn:timeDuration>", f"<bpmn:timeDuration>{duration}</bpmn:timeDuration>")
    err = refused(folder)
    assert err.element_id == "setujui_mutu_baku" and why in err.reason
    assert err.line == line_of(folder, f">{duration}<")


def test_mutu_baku_ceiling_is_configurable(folder):
    edit(folder, "<bpmn:timeDuration>PT1H</bpmn:timeDuration>", "<bpmn:timeDuration>P31D</bpmn:timeDuration>")
    assert load_process_folder(folder, DeployLimits(max_mutu_baku_minutes=40 * 450)).steps["setujui"]


def test_user_task_without_timer(folder):
    edit(folder, 'attachedToRef="terbitkan"', 'attachedToRef="setujui"')
    err = refused(folder)
    assert err.element_id == "setujui" and "exactly one timer" in err.reason


# ---- size, DOCTYPE, scripts, names -----------------------------------------------------------
def test_file_size_limit(services, office, folder):
    edit(folder, "<bpmn:process ", "<!-- " + "x" * 50_000 + " -->\n<bpmn:process ")
    err = refused(folder, DeployLimits(max_bytes=20_000))
    assert "at most 20,000" in err.reason and err.file.endswith("process.bpmn")
    with pytest.raises(DeployError):
        with services.sessions.begin() as session:
            deploy_folder(session, folder, services.runtime.store, limits=DeployLimits(max_bytes=20_000))
    assert versions(services) == 0


def test_doctype_is_refused(folder):
    edit(folder, '<?xml version="1.0" encoding="UTF-8"?>',
         '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lol [<!ENTITY a "aaaa">]>')
    err = refused(folder)
    assert err.line == 2 and "DOCTYPE" in err.reason


SCRIPT_TASK = ('<bpmn:scriptTask id="catat" name="Catat"><bpmn:incoming>f_start</bpmn:incoming>'
               '<bpmn:outgoing>f_catat</bpmn:outgoing><bpmn:script>open({path!r}, "a").close()</bpmn:script>'
               '</bpmn:scriptTask>\n')


def add_script_task(folder, path):
    edit(folder, '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="terima" />',
         '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="catat" />'
         '<bpmn:sequenceFlow id="f_catat" sourceRef="catat" targetRef="terima" />')
    edit(folder, '<bpmn:userTask id="terima"', SCRIPT_TASK.format(path=str(path)) + '<bpmn:userTask id="terima"')


def test_script_tasks_are_refused_unless_enabled(folder, tmp_path):
    add_script_task(folder, tmp_path / "touched")
    err = refused(folder)
    assert err.element_id == "catat" and "LAJUR_ALLOW_SCRIPTS" in err.reason
    assert load_process_folder(folder, DeployLimits(allow_scripts=True)).facts["start_lanes"] == ["Petugas Pelayanan"]


def test_names_with_newlines_are_shown_escaped(services, office, folder):
    edit(folder, 'name="Lurah"', 'name="Lu&#10;rah"')
    with pytest.raises(DeployError) as err:
        with services.sessions.begin() as session:
            deploy_folder(session, folder, services.runtime.store)
    assert "'Lu\\nrah'" in str(err.value) and "\n" not in str(err.value)


# ---- sop.json --------------------------------------------------------------------------------
def test_sop_json_may_not_restate_the_bpmn(folder):
    edit(folder, '"terima": {"text"', '"terima": {"actor": "Camat", "mutu_baku_minutes": 999, "text"', "sop.json")
    err = refused(folder)
    assert err.file.endswith("sop.json") and "actor" in err.reason and err.line == line_of(folder, '"terima"', "sop.json")


def test_sop_json_steps_match_the_user_tasks(folder):
    edit(folder, '"terbitkan": {', '"terbitkan_lama": {', "sop.json")
    err = refused(folder)
    assert "terbitkan_lama" in err.reason and err.file.endswith("sop.json")


# ---- nothing runs before permission (item 1) -------------------------------------------------
def test_start_page_and_refused_start_run_nothing(settings, backend, tmp_path, folder):
    svc = Services.from_settings(dataclasses.replace(settings, allow_scripts=True))
    if backend == "postgresql":
        from .conftest import _truncate_pg
        _truncate_pg(svc)
    touched = tmp_path / "touched"
    add_script_task(folder, touched)
    try:
        with svc.sessions.begin() as session:
            office = get_or_create_office(session, OFFICE, "Kalurahan Panggungharjo")
            for lane in LANES:
                create_group(session, OFFICE, lane)
            for name, lanes in (("petugas", ("Petugas Pelayanan",)), ("lurah", ("Lurah",))):
                create_user(session, name, "rahasia-123", name, office, groups=lanes)
            deploy_folder(session, folder, svc.runtime.store, limits=svc.settings.deploy_limits)
        with svc.sessions() as session:
            petugas, lurah = user_by_name(session, "petugas").id, user_by_name(session, "lurah").id
            for user in ("petugas", "lurah"):
                user_by_name(session, user).password_hash = generate_password_hash("x", "pbkdf2:sha256:1000")
            session.commit()
        assert [d.key for d in svc.runtime.startable(petugas)] == ["surat-domisili"]
        assert svc.runtime.startable(lurah) == []
        from webui import create_app
        app = create_app(services=svc, config={"TESTING": True, "WTF_CSRF_ENABLED": False})
        pages = {}
        for user in ("petugas", "lurah"):
            client = app.test_client()
            assert client.post("/login", data={"username": user, "password": "x"}).status_code == 302
            pages[user] = client.get("/start")
            assert pages[user].status_code == 200
        # the card's total Mutu Baku and actors come from the BPMN (30 + 60 + 15 minutes)
        html = pages["petugas"].get_data(as_text=True)
        assert "1 jam 45 menit" in html and "Petugas Pelayanan, Lurah" in html
        assert "Surat Keterangan Domisili" not in pages["lurah"].get_data(as_text=True)
        with pytest.raises(Forbidden):
            svc.runtime.start(lurah, "surat-domisili", "Ditolak")
        assert not touched.exists()  # neither the start pages nor the refused start ran the script
        svc.runtime.start(petugas, "surat-domisili", "Boleh")
        assert touched.exists()  # an authorised start runs it
    finally:
        svc.dispose()


def test_huge_timer_version_does_not_break_the_start_page(services, office, folder):
    """A version stored with an absurd Mutu Baku (deploy now refuses it) must not 500 the start page."""
    edit(folder, "<bpmn:timeDuration>PT1H</bpmn:timeDuration>", "<bpmn:timeDuration>P9999999D</bpmn:timeDuration>")
    with services.sessions.begin() as session:
        deploy_folder(session, folder, services.runtime.store, limits=DeployLimits(max_mutu_baku_minutes=1e12))
        create_user(session, "petugas", "rahasia-123", "Petugas", get_or_create_office(session, OFFICE, ""),
                    groups=("Petugas Pelayanan",))
        user_by_name(session, "petugas").password_hash = generate_password_hash("x", "pbkdf2:sha256:1000")
    from webui import create_app
    client = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    assert client.post("/login", data={"username": "petugas", "password": "x"}).status_code == 302
    page = client.get("/start")
    assert page.status_code == 200 and "Surat Keterangan Domisili" in page.get_data(as_text=True)


def test_facts_are_stored_on_the_version(services, office, folder):
    with services.sessions.begin() as session:
        version = deploy_folder(session, folder, services.runtime.store).version
        assert version.facts == {"start_lanes": ["Petugas Pelayanan"], "steps": ["terima", "setujui", "terbitkan"],
                                 "lanes": ["Petugas Pelayanan", "Lurah"], "total_mutu_baku_minutes": 105.0}
        assert json.dumps(version.steps["setujui"]["no"]) == "2"


def test_versions_deployed_before_facts_were_stored_get_them_from_their_bpmn(services, office, folder):
    """Migration 0008 leaves older versions without facts: they are derived statically on first use."""
    from engine.runtime import Runtime
    from sqlalchemy import update
    with services.sessions.begin() as session:
        version_id = deploy_folder(session, folder, services.runtime.store).version.id
        create_user(session, "petugas", "rahasia-123", "Petugas", get_or_create_office(session, OFFICE, ""),
                    groups=("Petugas Pelayanan",))
        session.execute(update(ProcessVersion).where(ProcessVersion.id == version_id).values(facts=None))
    with services.sessions() as session:
        petugas = user_by_name(session, "petugas").id
    fresh = Runtime(services.sessions)
    assert [d.key for d in fresh.startable(petugas)] == ["surat-domisili"]
    assert fresh.start(petugas, "surat-domisili", "Versi lama")


def test_timer_expression_outside_the_language(folder):
    edit(folder, "<bpmn:timeDuration>PT1H</bpmn:timeDuration>",
         "<bpmn:timeDuration>__import__('os').getenv('X')</bpmn:timeDuration>")
    err = refused(folder)
    assert err.element_id == "setujui_mutu_baku" and err.line == line_of(folder, "__import__")


def test_independent_problems_are_all_found_in_one_pass(folder):
    """A lane with no name, a Mutu Baku under a minute and a condition on a field no form has:
    three problems on three elements, in the order deploy has always checked (the first is the one
    a refusal names), each with its line."""
    edit(folder, '<bpmn:lane id="lane_lurah" name="Lurah">', '<bpmn:lane id="lane_lurah" name="">')
    edit(folder, "<bpmn:timeDuration>PT15M</bpmn:timeDuration>", "<bpmn:timeDuration>PT0M</bpmn:timeDuration>")
    edit(folder, 'keputusan_lurah == "TIDAK"', 'keputusan_camat == "TIDAK"')
    err = refused(folder)
    assert [(p.element_id, p.line) for p in err.problems] == [
        ("lane_lurah", line_of(folder, 'id="lane_lurah"')),
        ("terbitkan_mutu_baku", line_of(folder, "PT0M")),
        ("f_tidak", line_of(folder, "keputusan_camat")),
    ]
    assert "lane has no name" in err.problems[0].reason and "under 1 minute" in err.problems[1].reason
    assert "'keputusan_camat' is not a field of any form" in err.problems[2].reason
    assert all(p.file == "surat-domisili/process.bpmn" for p in err.problems)
    # it reads as the first problem, with the count of the others
    assert err.element_id == "lane_lurah" and str(err).endswith("(and 2 more problems)")


def test_a_broken_step_is_not_also_reported_elsewhere(folder):
    """A step whose form is missing: one problem on it, not a second one on the condition that
    reads its fields, nor a missing sop.json step."""
    edit(folder, "forms/setujui.schema.json", "forms/hilang.schema.json")
    err = refused(folder)
    assert [p.element_id for p in err.problems] == ["setujui"] and "not found" in err.reason


def test_an_unreadable_file_stops_at_once(folder):
    edit(folder, "<bpmn:laneSet", "<bpmn:laneSet <")
    err = refused(folder)
    assert len(err.problems) == 1 and "XML syntax error" in err.reason


def test_the_remembered_parse_answers_as_the_full_one(folder):
    """SpiffWorkflow's parse is remembered per document meaning (bpmnspec.spiff_specs): the same
    text gives the same package from the cache, and any change of the process is read afresh."""
    from engine import bpmnspec
    first = load_process_folder(folder)
    hits = bpmnspec._specs.cache_info().hits
    again = load_process_folder(folder)
    assert bpmnspec._specs.cache_info().hits == hits + 1
    assert again.content_hash == first.content_hash and again.steps == first.steps
    assert sorted(again.spec.task_specs) == sorted(first.spec.task_specs)
    # a change the SpiffWorkflow stage refuses is found, though the previous text was remembered
    edit(folder, 'sourceRef="terbitkan" targetRef="selesai"', 'sourceRef="terbitkan" targetRef="tidak_ada"')
    err = refused(folder)
    assert err.element_id == "terbitkan" and "(tidak_ada)" in err.reason
    edit(folder, 'targetRef="tidak_ada"', 'targetRef="selesai"')
    assert load_process_folder(folder).content_hash == first.content_hash


@pytest.mark.parametrize("form, why", [("../../../etc/passwd", "not found in the process folder"),
                                       ("/etc/passwd", "not found in the process folder"),
                                       ("forms/../sop.json", 'a JSON Schema of "type": "object"')])
def test_a_draft_in_memory_is_read_as_the_folder_on_disk(folder, form, why):
    """The studio reads a draft with `DraftFiles`, deploy reads a folder with `FolderFiles`: one
    validator, the same answers, for a valid folder and for a form name that leads out of it."""
    from engine.bpmn import DraftFiles, load_process
    files = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
             for p in folder.rglob("*") if p.is_file()}
    on_disk, in_memory = load_process_folder(folder), load_process(DraftFiles(folder.name, files))
    assert in_memory.content_hash == on_disk.content_hash and in_memory.steps == on_disk.steps
    edit(folder, 'value="forms/setujui.schema.json"', f'value="{form}"')
    files["process.bpmn"] = (folder / "process.bpmn").read_text(encoding="utf-8")
    disk = refused(folder)
    with pytest.raises(DeployError) as memory:
        load_process(DraftFiles(folder.name, files))
    assert (memory.value.reason, memory.value.element_id, memory.value.line) == (disk.reason, disk.element_id, disk.line)
    assert why in disk.reason
