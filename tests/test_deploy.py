"""Deploying process folders: refusals say file, element and line, and store nothing."""
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.accounts import create_user, office_by_code, user_by_name
from engine.bpmn import load_process_folder, normalise_timer_expression
from engine.deploy import deploy_folder
from engine.errors import DeployError, Forbidden
from engine.models import AuditEvent, ProcessVersion

from .helpers import open_task, work_step
from .sopdata import DPMK

SRC = Path(__file__).resolve().parent.parent / "processes" / DPMK


@pytest.fixture
def folder(tmp_path):
    dst = tmp_path / DPMK
    shutil.copytree(SRC, dst)
    return dst


def _edit(folder, old, new, count=1):
    path = folder / "process.bpmn"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def _line_of(folder, needle):
    for no, line in enumerate((folder / "process.bpmn").read_text().splitlines(), 1):
        if needle in line:
            return no
    raise AssertionError(needle)


def test_both_shipped_processes_validate():
    for key in ("dpmk-pemutakhiran-website", "dinsos-website-medsos"):
        package = load_process_folder(SRC.parent / key)
        assert len(package.steps) == (5 if key == DPMK else 4)


def test_bare_and_quoted_iso_durations_both_work():
    assert normalise_timer_expression("PT120M") == "'PT120M'"
    assert normalise_timer_expression('"PT60M"') == '"PT60M"'
    assert normalise_timer_expression("timedelta(minutes=5)") == "timedelta(minutes=5)"
    package = load_process_folder(SRC)
    assert [s["mutu_baku_minutes"] for s in package.steps.values()] == [120, 15, 15, 5, 5]


def test_malformed_xml_names_file_and_line(folder):
    _edit(folder, '<bpmn:userTask id="step3"', '<bpmn:userTask id="step3" <broken')
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.file.endswith("process.bpmn") and err.value.line == _line_of(folder, "<broken")
    assert "XML" in str(err.value)


def test_schema_violation_names_element_and_line(folder):
    _edit(folder, '<bpmn:exclusiveGateway id="step1_merge">', '<bpmn:exclusiveGateway id="step1_merge" bogus="1">')
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.line == _line_of(folder, 'bogus="1"')
    assert err.value.element_id == "step1_merge"


def test_bad_condition_names_the_flow(folder):
    _edit(folder, 'persetujuan_sekdin == "YA"', 'persetujuan_sekdin == = "YA"')
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "flow_step3_decision_ya"
    assert err.value.line == _line_of(folder, '== = "YA"')
    assert "process.bpmn" in str(err.value) and "flow_step3_decision_ya" in str(err.value)


def test_missing_form_file(folder):
    (folder / "forms" / "step2.schema.json").unlink()
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "step2" and "not found" in str(err.value)


def test_invalid_json_schema(folder):
    (folder / "forms" / "step2.schema.json").write_text(json.dumps({"type": "objekt"}))
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert "step2.schema.json" in err.value.file and "JSON Schema" in str(err.value)


def test_interrupting_or_missing_timer(folder):
    _edit(folder, 'id="step4_mutu_baku" name="Mutu Baku 5 menit" cancelActivity="false"',
          'id="step4_mutu_baku" name="Mutu Baku 5 menit" cancelActivity="true"')
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "step4_mutu_baku" and "non-interrupting" in str(err.value)


def test_bad_duration(folder):
    _edit(folder, ">PT15M<", ">PT15X<")
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "step2_mutu_baku"


def test_user_task_outside_any_lane(folder):
    _edit(folder, "<bpmn:flowNodeRef>step4</bpmn:flowNodeRef>", "")
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "step4" and "lane" in str(err.value)


def test_bad_reminder_policy(folder):
    _edit(folder, '<spiffworkflow:property name="formJsonSchemaFilename" value="forms/step2.schema.json" />',
          '<spiffworkflow:property name="formJsonSchemaFilename" value="forms/step2.schema.json" />'
          '<spiffworkflow:property name="reminders" value="warn@80%:everyone" />')
    with pytest.raises(DeployError) as err:
        load_process_folder(folder)
    assert err.value.element_id == "step2" and "everyone" in str(err.value)


def _versions(services):
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(ProcessVersion))


def test_refused_deploy_stores_nothing(services, demo, folder):
    before = _versions(services)
    _edit(folder, 'persetujuan_sekdin == "YA"', 'persetujuan_sekdin ==')
    with pytest.raises(DeployError):
        with services.sessions.begin() as session:
            deploy_folder(session, folder, services.runtime.store)
    assert _versions(services) == before


def test_only_a_process_owner_of_the_office_may_deploy(services, demo, folder):
    _edit(folder, "Mutu Baku 120 menit", "Mutu Baku 120 menit (revisi)")
    with services.sessions.begin() as session:
        create_user(session, "dinsos.owner2", "rahasia-123", "Owner Dinsos", office_by_code(session, "dinsos"),
                    roles=("process_owner",))
    for who in ("dpmk.penerima", "dpmk.sekdin", "dinsos.owner2"):
        with pytest.raises(Forbidden):
            with services.sessions.begin() as session:
                deploy_folder(session, folder, services.runtime.store, deployed_by=user_by_name(session, who))
    with services.sessions.begin() as session:
        result = deploy_folder(session, folder, services.runtime.store,
                               deployed_by=user_by_name(session, "dpmk.pemilik"))
        assert result.created and result.version.version == 2
    with services.sessions() as session:
        assert session.scalar(select(func.count()).where(AuditEvent.kind == "process_deployed")) == 3


def test_redeploy_unchanged_is_not_a_new_version(services, demo):
    before = _versions(services)
    with services.sessions.begin() as session:
        result = deploy_folder(session, SRC, services.runtime.store)
    assert not result.created and _versions(services) == before


def test_running_instances_stay_on_their_version(services, demo, folder):
    rt = services.runtime
    old = rt.start(demo["dpmk.penerima"], DPMK, "Versi lama")
    work_step(services, demo, DPMK, old, "step1")
    # version 2: step 2's Mutu Baku becomes 30 minutes and the step is renamed
    _edit(folder, ">PT15M<", ">PT30M<")
    _edit(folder, 'name="Memeriksa', 'name="(v2) Memeriksa')
    with services.sessions.begin() as session:
        v2 = deploy_folder(session, folder, rt.store).version
        v2_id = v2.id
    new = rt.start(demo["dpmk.penerima"], DPMK, "Versi baru")
    work_step(services, demo, DPMK, new, "step1")
    old_task, new_task = open_task(services, old), open_task(services, new)
    assert old_task.version_id != v2_id and new_task.version_id == v2_id
    assert old_task.mutu_baku_minutes == 15 and new_task.mutu_baku_minutes == 30
    for step in ["step2", "step3", "step4", "step5"]:
        work_step(services, demo, DPMK, old, step)
    with services.sessions() as session:
        from engine.models import ProcessInstance
        assert session.get(ProcessInstance, old).status == "completed"
        assert session.get(ProcessInstance, old).version_id != v2_id
