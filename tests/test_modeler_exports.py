"""BPMN exported by other modelling tools (tests/fixtures/modelers): each either deploys and
runs, or is refused in one line with file, element and line; never a traceback, never a
stored version after a refusal."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.accounts import create_user, get_or_create_office, user_by_name
from engine.cli import main
from engine.models import HumanTask, ProcessInstance, ProcessVersion
from engine.offices import create_group

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "modelers"
EXPECT = {
    "camunda-modeler-5": None,  # deploys and runs
    "bpmn-io-new-diagram": "element 'Process_1': the file has no executable process",
    "signavio": "element 'sid-0b7f1a2c-55aa-4f0e-8f0c-6c3c0f4e9d21': the file has no executable process",
    "camunda-8-zeebe": "process.bpmn:27 element 'terima': the user task names no form",
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_export_deploys_and_runs_or_is_refused_in_one_line(services, name):
    with services.sessions.begin() as session:
        office = get_or_create_office(session, "panggungharjo", "Kalurahan Panggungharjo")
        for lane, user in (("Petugas Pelayanan", "petugas"), ("Lurah", "lurah")):
            create_group(session, "panggungharjo", lane)
            create_user(session, user, "rahasia-123", user, office, groups=(lane,))
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(services.settings.data_dir)}
    result = CliRunner().invoke(main, ["deploy", str(FIXTURES / name)], env=env, catch_exceptions=False)
    with services.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(ProcessVersion))
    if EXPECT[name] is not None:
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and EXPECT[name] in lines[0], result.output
        assert stored == 0
        return
    assert result.exit_code == 0 and stored == 1, result.output
    rt = services.runtime
    with services.sessions() as session:
        petugas, lurah = user_by_name(session, "petugas").id, user_by_name(session, "lurah").id
    for decision in ("YA", "TIDAK"):
        iid = rt.start(petugas, "surat-domisili", f"Keputusan {decision}")
        for user, data in ((petugas, {"nama_pemohon": "Budi", "nik": "3402011203870001"}),
                           (lurah, {"keputusan_lurah": decision}),
                           (petugas, {"nomor_surat": "470/1"})):
            with services.sessions() as session:
                task = session.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                               HumanTask.state == "ready")).first()
            if task is None:
                break
            rt.complete(user, task.id, data, claim=True)  # claim and complete
        with services.sessions() as session:
            assert session.get(ProcessInstance, iid).status == "completed"
