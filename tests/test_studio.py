"""The studio's engine side (issue 11): drafts checked by deploy's own validator, publish
through deploy's path, zips in and out, access and concurrent saves. Both databases."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.deploy import deploy_folder
from engine.errors import Conflict, Forbidden
from engine.models import AuditEvent, ProcessDefinition, ProcessVersion
from engine.studio import drafts, imports
from engine.studio.files import DraftFilesInvalid, version_files, write_folder

from .sopdata import DPMK

FIXTURES = Path(__file__).parent / "fixtures"


def _open(services, demo, user="dpmk.pemilik"):
    with services.sessions.begin() as db:
        return drafts.open_draft(db, demo[user], "dpmk", DPMK)


def _save(services, demo, files, seen, user="dpmk.pemilik"):
    with services.sessions.begin() as db:
        return drafts.save(db, demo[user], "dpmk", DPMK, files, seen)


def test_a_draft_opens_from_the_latest_version_and_checks_clean(services, demo):
    draft = _open(services, demo)
    assert draft.based_on_version == 1 and draft.problems == []
    assert set(draft.files) >= {"process.bpmn", "sop.json", "forms/step1.schema.json"}
    again = _open(services, demo)  # the same draft, not a second one
    assert again.lock_version == draft.lock_version


def test_problems_carry_the_element_and_publish_is_refused(services, demo):
    draft = _open(services, demo)
    files = dict(draft.files)
    # a lane whose name is no group of the office: every such lane is named, on its lane element
    files["process.bpmn"] = files["process.bpmn"].replace('name="Kasubbag"', 'name="Kasubag"')
    saved = _save(services, demo, files, draft.lock_version)
    assert [(p["element_id"], p["file"]) for p in saved.problems] == [("lane_kasubbag", "process.bpmn")]
    assert "Kasubag" in saved.problems[0]["message"]
    # a condition on a field no form has any more: deploy's own message, on the flow
    files = dict(draft.files)
    form = json.loads(files["forms/step3.schema.json"])
    form["properties"].pop("persetujuan_sekdin")
    form["required"] = [r for r in form["required"] if r != "persetujuan_sekdin"]
    files["forms/step3.schema.json"] = json.dumps(form)
    saved = _save(services, demo, files, saved.lock_version)
    # both of the decision's flows read it: each is marked (the validator collects every problem)
    assert [p["element_id"] for p in saved.problems] == ["flow_step3_decision_ya", "flow_step3_decision_tidak"]
    assert all("persetujuan_sekdin" in p["message"] for p in saved.problems)
    with services.sessions.begin() as db, pytest.raises(drafts.PublishRefused):
        drafts.publish(db, demo["dpmk.pemilik"], "dpmk", DPMK, saved.lock_version, "coba", services.runtime.store)
    with services.sessions() as db:
        assert db.scalar(select(ProcessVersion).where(ProcessVersion.version == 2)) is None


def test_publish_makes_version_2_through_deploy_with_its_note(services, demo):
    draft = _open(services, demo)
    files = dict(draft.files)
    files["process.bpmn"] = files["process.bpmn"].replace(">PT15M<", ">PT20M<")
    saved = _save(services, demo, files, draft.lock_version)
    assert saved.problems == []
    with services.sessions.begin() as db, pytest.raises(drafts.PublishRefused):
        drafts.publish(db, demo["dpmk.pemilik"], "dpmk", DPMK, saved.lock_version, "  ", services.runtime.store)
    with services.sessions.begin() as db:
        number = drafts.publish(db, demo["dpmk.pemilik"], "dpmk", DPMK, saved.lock_version,
                                "Mutu Baku langkah 2 menjadi 20 menit", services.runtime.store)
    assert number == 2
    with services.sessions() as db:
        v2 = db.scalar(select(ProcessVersion).where(ProcessVersion.version == 2))
        assert v2.steps["step2"]["mutu_baku_minutes"] == 20 and v2.deployed_by_id == demo["dpmk.pemilik"]
        kinds = [a.kind for a in db.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert kinds[-2:] == ["process_deployed", "process_published"]
        assert drafts.change_notes(db, v2.definition.office_id, DPMK) == {2: "Mutu Baku langkah 2 menjadi 20 menit"}
        assert drafts.get(db, demo["dpmk.pemilik"], "dpmk", DPMK) is None  # the draft is gone


def test_only_the_offices_process_owners_and_no_stale_save(services, demo):
    for user in ("dpmk.kasubbag", "dinsos.pemilik", "admin"):
        with services.sessions.begin() as db, pytest.raises(Forbidden):
            drafts.open_draft(db, demo[user], "dpmk", DPMK)
    draft = _open(services, demo)
    _save(services, demo, draft.files, draft.lock_version)
    with pytest.raises(Conflict, match="Dewi Anggraini"):  # the second owner is told who saved
        _save(services, demo, draft.files, draft.lock_version)


@pytest.mark.parametrize("files,why", [
    ({"../etc/passwd": "x", "process.bpmn": "<x/>"}, "not part of a process folder"),
    ({"sop.json": "{}"}, "no process.bpmn"),
    ({"process.bpmn": "x" * (2 * 1024 * 1024 + 1)}, "at most"),
    ({"process.bpmn": "<x/>", "forms/a.json": "\x00"}, "NUL"),
])
def test_bad_files_are_refused_before_anything_is_read(services, demo, files, why):
    draft = _open(services, demo)
    with pytest.raises(DraftFilesInvalid, match=why):
        _save(services, demo, files, draft.lock_version)


def test_a_doctype_is_a_problem_like_in_deploy(services, demo):
    draft = _open(services, demo)
    files = dict(draft.files)
    files["process.bpmn"] = files["process.bpmn"].replace("?>", '?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1)
    saved = _save(services, demo, files, draft.lock_version)
    assert "DOCTYPE" in saved.problems[0]["message"]


def test_round_trip_a_downloaded_zip_deploys_as_the_same_process(services, demo, tmp_path):
    with services.sessions() as db:
        v1 = db.scalar(select(ProcessVersion).join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
                       .where(ProcessDefinition.key == DPMK))
        data = imports.zip_of(version_files(v1), DPMK)
        hash1, steps1, forms1 = v1.content_hash, v1.steps, v1.forms
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp_path)
    with services.sessions.begin() as db:
        deployed = deploy_folder(db, tmp_path / DPMK, services.runtime.store)
    # the same content: deploy sees nothing new (the same steps, lanes, timers and forms)
    assert deployed.created is False and deployed.version.content_hash == hash1
    assert deployed.version.steps == steps1 and deployed.version.forms == forms1
    # and the zip reads back into the same draft files
    assert imports.files_from_zip(data) == version_files(deployed.version)


def test_a_single_bpmn_from_another_modeler_becomes_a_draft_with_problems(services, demo):
    xml = (FIXTURES / "modelers" / "bpmn-io-new-diagram" / "process.bpmn").read_text(encoding="utf-8")
    files = imports.files_from_bpmn(xml, "dpmk", "DPMK", "dari-camunda")
    with services.sessions.begin() as db:
        problems = drafts.create(db, demo["dpmk.pemilik"], "dpmk", "dari-camunda", files)
    assert problems and problems[0]["message"]
    with services.sessions.begin() as db, pytest.raises(Conflict):
        drafts.create(db, demo["dpmk.pemilik"], "dpmk", "dari-camunda", files)


def test_a_new_sop_from_scratch_checks_clean_and_publishes(services, demo, tmp_path):
    files = imports.new_sop("surat-baru", "Surat <Baru>", "dpmk", "DPMK", "Kasubbag")
    with services.sessions.begin() as db:
        assert drafts.create(db, demo["dpmk.pemilik"], "dpmk", "surat-baru", files) == []
    with services.sessions.begin() as db:
        seen = drafts.get(db, demo["dpmk.pemilik"], "dpmk", "surat-baru").lock_version
        assert drafts.publish(db, demo["dpmk.pemilik"], "dpmk", "surat-baru", seen, "SOP baru",
                              services.runtime.store) == 1
    write_folder(tmp_path / "x", files)  # the folder is what deploy reads
    assert (tmp_path / "x" / "forms" / "step1.schema.json").is_file()


SHARED_SOP = Path(__file__).resolve().parent.parent.parent / "shared" / "sop" / "sop-dpmk-pemutakhiran-website.txt"


@pytest.mark.skipif(not SHARED_SOP.exists(), reason="../shared/sop is not beside the repository")
def test_an_sop_document_becomes_a_draft_with_its_import_notes_and_problems(services, demo):
    key, files, notes = imports.files_from_sopdoc(SHARED_SOP.read_bytes(), SHARED_SOP.name, "dpmk", "DPMK",
                                                  "dpmk-dari-dokumen")
    assert key == "dpmk-dari-dokumen" and "process.bpmn" in files and "problems.json" in files
    with services.sessions.begin() as db:
        problems = drafts.create(db, demo["dpmk.pemilik"], "dpmk", key, files)
    # the lanes the document names are not all DPMK's groups, or an unread row left a step open:
    # either way the validator says so on an element, and nothing was guessed
    assert problems and all(p["message"] for p in problems)
    assert isinstance(notes, list)
    with pytest.raises(DraftFilesInvalid, match="not .pdf"):
        imports.files_from_sopdoc(b"%PDF", "sop.pdf", "dpmk", "DPMK")
