"""Registers: numbers issued inside the step's completion, per office, register and year;
no two completions share one, a rollback leaves no gap, a cancelled instance keeps its own."""
import multiprocessing as mp
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import registers
from engine.deploy import deploy_folder
from engine.errors import DeployError, Forbidden, FormInvalid
from engine.models import HumanTask, Office, Register, RegisterEntry
from engine.sqltx import SqlTx
from engine.uow import UnitOfWork

from .helpers import open_task, work_step
from .sopdata import DPMK, STEP_DATA

WIB = ZoneInfo("Asia/Jakarta")
PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def _entries(services, code="agenda"):
    with services.sessions() as session:
        return session.execute(select(RegisterEntry.seq, RegisterEntry.number, RegisterEntry.instance_id,
                                      RegisterEntry.cancelled_at, RegisterEntry.title, RegisterEntry.kind,
                                      RegisterEntry.classification, RegisterEntry.location)
                               .join(Register, Register.id == RegisterEntry.register_id)
                               .where(Register.code == code).order_by(RegisterEntry.year, RegisterEntry.seq)).all()


def _at(services, t: datetime):
    services.runtime.clock = lambda: t.astimezone(timezone.utc)


def test_template_checks_and_render():
    assert registers.check_template("{keamanan}/{klasifikasi}/{nomor:5}/{unit}")
    for bad in ("", "{nomor}/{nomor}", "{tahun}", "{nomor}/{x}", "{nomor}/}", "{nomor.__class__}/{nomor}"):
        with pytest.raises(registers.TemplateError):
            registers.check_template(bad)
    assert registers.render("{keamanan}/{klasifikasi}/{nomor:5}/{unit}", seq=22, day=datetime(2026, 3, 1).date(),
                            unit="DPMK", security="B", classification="400.14.3") == "B/400.14.3/00022/DPMK"
    assert registers.render("{nomor:3}/{bulan_romawi}/{tahun}", seq=7, day=datetime(2026, 11, 2).date(),
                            unit="", security="B", classification=None) == "007/XI/2026"


def test_numbers_in_order_kept_after_tidak_archive_classified_and_year_reset(services, demo):
    rt = services.runtime
    _at(services, datetime(2026, 11, 23, 9, 0, tzinfo=WIB))
    first = rt.start(demo["dpmk.penerima"], DPMK, "Berita pertama")
    second = rt.start(demo["dpmk.penerima"], DPMK, "Berita kedua")
    work_step(services, demo, DPMK, first, "step1")
    work_step(services, demo, DPMK, second, "step1")
    with services.sessions() as session:
        done = session.scalars(select(HumanTask).where(HumanTask.bpmn_id == "step1").order_by(HumanTask.id)).all()
        assert [t.data["nomor_agenda"] for t in done] == ["001/DPMK/2026", "002/DPMK/2026"]
    # TIDAK at step 3 returns to step 1: completing it again keeps the instance's number
    work_step(services, demo, DPMK, first, "step2")
    work_step(services, demo, DPMK, first, "step3", reject=True)
    work_step(services, demo, DPMK, first, "step1")
    rows = _entries(services)
    assert [(r.seq, r.number, r.instance_id) for r in rows] == [(1, "001/DPMK/2026", first), (2, "002/DPMK/2026", second)]
    assert rows[0].title == STEP_DATA[(DPMK, "step1")]["judul_berita"] and rows[0].kind == "Kalurahan"
    for step in ("step2", "step3", "step4", "step5"):
        work_step(services, demo, DPMK, first, step)
    archive = _entries(services, "arsip")
    assert [(r.seq, r.number, r.classification, r.location) for r in archive] == [
        (1, "B/400.14.1.3/00001/DPMK", "400.14.1.3", "Filing kabinet A, laci 2")]
    # a new year starts at 1 again
    _at(services, datetime(2027, 1, 4, 9, 0, tzinfo=WIB))
    third = rt.start(demo["dpmk.penerima"], DPMK, "Berita tahun baru")
    work_step(services, demo, DPMK, third, "step1")
    assert [r.number for r in _entries(services)][-1] == "001/DPMK/2027"


def test_unknown_classification_code_is_a_field_error(services, demo):
    iid = services.runtime.start(demo["dpmk.penerima"], DPMK, "Klasifikasi")
    work_step(services, demo, DPMK, iid, "step1")
    with pytest.raises(FormInvalid) as err:
        work_step(services, demo, DPMK, iid, "step2", data={"paraf_kabid_ada": True, "klasifikasi_arsip": "999.1"})
    assert "klasifikasi_arsip" in err.value.errors


def test_cancelled_instance_keeps_its_number_marked(services, demo):
    rt = services.runtime
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Dibatalkan")
    work_step(services, demo, DPMK, iid, "step1")
    with pytest.raises(Forbidden):
        rt.cancel(demo["dpmk.penerima"], iid, "bukan supervisor")
    rt.cancel(demo["dpmk.kasubbag"], iid, "Berita ditarik pengirim")
    other = rt.start(demo["dpmk.penerima"], DPMK, "Berikutnya")
    work_step(services, demo, DPMK, other, "step1")
    rows = _entries(services)
    assert [(r.seq, r.instance_id, r.cancelled_at is not None) for r in rows] == [(1, iid, True), (2, other, False)]
    with services.sessions() as session:
        assert not session.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                           HumanTask.state == "ready")).all()


def test_deploy_refuses_a_register_the_office_does_not_keep(services, demo, tmp_path):
    folder = tmp_path / "dpmk-pemutakhiran-website"
    shutil.copytree(PROCESSES / DPMK, folder)
    bpmn = folder / "process.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="register" value="arsip"', 'name="register" value="surat-keluar"'))
    with services.sessions.begin() as session, pytest.raises(DeployError) as err:
        deploy_folder(session, folder, services.runtime.store)
    assert "surat-keluar" in str(err.value) and "agenda, arsip" in str(err.value) and "step5" in str(err.value)
    with services.sessions.begin() as session:
        office = session.scalar(select(Office).where(Office.code == "dpmk"))
        registers.define(session, office.id, "surat-keluar", name="Buku Surat Keluar",
                         template="{keamanan}/{klasifikasi}/{nomor:5}/{unit}", unit="DPMK")
    with services.sessions.begin() as session:
        assert deploy_folder(session, folder, services.runtime.store).created


def test_a_typed_number_field_in_the_form_is_refused(services, demo, tmp_path):
    folder = tmp_path / "dpmk-pemutakhiran-website"
    shutil.copytree(PROCESSES / DPMK, folder)
    form = folder / "forms" / "step1.schema.json"
    form.write_text(form.read_text().replace('"properties": {', '"properties": {"nomor_agenda": {"type": "string"},', 1))
    with services.sessions.begin() as session, pytest.raises(DeployError) as err:
        deploy_folder(session, folder, services.runtime.store)
    assert "nomor_agenda" in str(err.value) and "issued, not typed" in str(err.value)


# ---- PostgreSQL: many processes at once ------------------------------------------------------

def _completer(settings, user_id, task_ids, barrier, results):
    from engine.services import Services
    services = Services.from_settings(settings)
    try:
        barrier.wait(timeout=60)
        for task_id in task_ids:
            try:
                started = time.perf_counter()
                services.runtime.complete(user_id, task_id, STEP_DATA[(DPMK, "step1")])
                results.put(("ok", (time.perf_counter() - started) * 1000))
            except Exception as exc:  # noqa: BLE001 - reported to the test
                results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        services.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_fifty_completions_from_five_processes_get_fifty_numbers_no_gap(services, demo, settings):
    rt = services.runtime
    _at(services, datetime(2026, 11, 23, 9, 0, tzinfo=WIB))
    tasks = [open_task(services, rt.start(demo["dpmk.penerima"], DPMK, f"Serentak {i}")).id for i in range(50)]
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=_completer, args=(settings, demo["dpmk.penerima"], tasks[i::5], barrier, results))
             for i in range(5)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in range(50)]
    for p in procs:
        p.join(timeout=60)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    ms = sorted(v for _, v in outcomes)
    print(f"50 completions from 5 processes: median {ms[25]:.0f} ms, max {ms[-1]:.0f} ms per completion")
    rows = _entries(services)
    assert sorted(r.seq for r in rows) == list(range(1, 51))
    assert len({r.number for r in rows}) == 50 and len({r.instance_id for r in rows}) == 50
    with services.sessions() as session:  # each step's data holds the number of its own entry
        data = {t.instance_id: t.data["nomor_agenda"] for t in session.scalars(
            select(HumanTask).where(HumanTask.id.in_(tasks)))}
    assert data == {r.instance_id: r.number for r in rows}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_rolled_back_number_is_given_to_the_next_completion(services, demo):
    """A transaction holds number 1 (the counter row locked); a completion waits for it; the
    first rolls back; the completion gets number 1: no gap."""
    rt = services.runtime
    _at(services, datetime(2026, 11, 23, 9, 0, tzinfo=WIB))
    task = open_task(services, rt.start(demo["dpmk.penerima"], DPMK, "Menunggu"))
    with services.sessions() as session:
        register_id = session.scalar(select(Register.id).join(Office).where(Office.code == "dpmk",
                                                                            Register.code == "agenda"))
    holder = services.sessions()
    holder.begin()
    assert UnitOfWork(SqlTx(holder)).take_number(register_id, 2026) == 1
    done = []
    worker = threading.Thread(target=lambda: done.append(rt.complete(demo["dpmk.penerima"], task.id,
                                                                     STEP_DATA[(DPMK, "step1")])))
    worker.start()
    time.sleep(1.0)
    assert not done, "the completion must wait for the counter row"
    holder.rollback()
    holder.close()
    worker.join(timeout=30)
    assert done
    assert [(r.seq, r.number) for r in _entries(services)] == [(1, "001/DPMK/2026")]


def test_a_failed_completion_gives_its_number_back(services, demo):
    """A completion that fails after taking its number (here: an evidence row is missing at
    the last write) rolls back and the next one gets the same number."""
    rt = services.runtime
    _at(services, datetime(2026, 11, 23, 9, 0, tzinfo=WIB))
    first = open_task(services, rt.start(demo["dpmk.penerima"], DPMK, "Gagal"))
    original = UnitOfWork.flush
    failing = {"on": True}

    def flush(self):
        if failing["on"] and any(stmt is not None and "register_entry" in str(stmt.core) for stmt, _, _ in self._writes):
            raise RuntimeError("disk full")
        return original(self)
    UnitOfWork.flush = flush
    try:
        with pytest.raises(RuntimeError):
            rt.complete(demo["dpmk.penerima"], first.id, STEP_DATA[(DPMK, "step1")])
    finally:
        UnitOfWork.flush = original
    assert _entries(services) == []
    rt.complete(demo["dpmk.penerima"], first.id, STEP_DATA[(DPMK, "step1")])
    assert [(r.seq, r.number) for r in _entries(services)] == [(1, "001/DPMK/2026")]


def test_deploy_refuses_an_unknown_default_classification(services, demo, tmp_path):
    folder = tmp_path / "dpmk-pemutakhiran-website"
    shutil.copytree(PROCESSES / DPMK, folder)
    sop = folder / "sop.json"
    sop.write_text(sop.read_text().replace('"classification": "400.14.1.3"', '"classification": "999.1"'))
    with services.sessions.begin() as session, pytest.raises(DeployError) as err:
        deploy_folder(session, folder, services.runtime.store)
    assert "999.1" in str(err.value) and "sop.json" in str(err.value)
