"""The tamper-evident audit trail (engine/audit.py, written by engine/uow.py): every row the
engine writes is chained; an edited, deleted or cut-off row is found, by the engine function
and by `lajur audit verify`."""
from click.testing import CliRunner
from sqlalchemy import select, update

from engine.audit import verify
from engine.cli import main
from engine.models import AuditEvent

from .helpers import work_step
from .sopdata import DPMK
from .test_sla import at, wib


def _instance_with_history(services, demo) -> int:
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Jejak audit")
    work_step(services, demo, DPMK, iid, "step1")
    work_step(services, demo, DPMK, iid, "step2")
    rt.set_override(None, "dpmk", wib(2026, 11, 25, 0, 0).date(), False, "rapat")  # an office-chain row
    return iid


def _ids(services, iid):
    with services.sessions() as session:
        return list(session.scalars(select(AuditEvent.id).where(AuditEvent.instance_id == iid)
                                    .order_by(AuditEvent.id)))


def test_an_intact_trail_verifies_and_every_row_is_chained(services, demo):
    iid = _instance_with_history(services, demo)
    with services.sessions() as session:
        result = verify(session)
        hashes = session.scalars(select(AuditEvent.hash)).all()
    assert result.broken is None and result.rows == len(hashes) >= 8
    assert all(h and len(h) == 64 for h in hashes) and len(set(hashes)) == len(hashes)
    with services.sessions() as session:
        assert verify(session, iid).broken is None


def test_an_edited_row_is_found_by_the_engine_and_the_cli(services, demo, monkeypatch):
    iid = _instance_with_history(services, demo)
    victim = _ids(services, iid)[3]
    with services.sessions.begin() as session:  # someone edits the trail behind the engine's back
        session.execute(update(AuditEvent).where(AuditEvent.id == victim).values(data={"nomor_agenda": "palsu"}))
    with services.sessions() as session:
        broken = verify(session).broken
        assert broken is not None and broken.audit_id == victim and broken.instance_id == iid
        assert verify(session, iid).broken.audit_id == victim
    monkeypatch.setenv("LAJUR_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("LAJUR_DATA_DIR", str(services.settings.data_dir))
    out = CliRunner().invoke(main, ["audit", "verify"])
    assert out.exit_code == 1 and f"audit row {victim}" in out.output


def test_a_deleted_row_and_a_cut_off_end_are_found(services, demo):
    iid = _instance_with_history(services, demo)
    ids = _ids(services, iid)
    with services.sessions.begin() as session:
        session.execute(AuditEvent.__table__.delete().where(AuditEvent.id == ids[2]))
    with services.sessions() as session:
        assert verify(session, iid).broken.audit_id == ids[3]  # the row after the gap no longer links
    with services.sessions.begin() as session:
        session.execute(AuditEvent.__table__.delete().where(AuditEvent.id.in_(ids[2:])))
    with services.sessions() as session:
        broken = verify(session, iid).broken
        assert broken is not None and broken.audit_id is None and "missing" in broken.reason
