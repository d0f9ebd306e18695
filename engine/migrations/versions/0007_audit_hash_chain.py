"""tamper-evident audit trail: a hash per audit row, chained per instance (or office), and the
chain's head on its owner row; existing rows are chained in id order

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("process_instance") as batch:
        batch.add_column(sa.Column("audit_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("office") as batch:
        batch.add_column(sa.Column("audit_hash", sa.String(length=64), nullable=True))
    _chain_existing_rows(op.get_bind())


def _chain_existing_rows(conn) -> None:
    """Hash the rows already there, as the unit of work would have (engine/audit.py row_hash)."""
    from engine.audit import chain_key, row_hash  # the one definition of a row's hash
    meta = sa.MetaData()
    audit = sa.Table("audit_event", meta, autoload_with=conn)
    instance = sa.Table("process_instance", meta, autoload_with=conn)
    office = sa.Table("office", meta, autoload_with=conn)
    heads: dict = {}
    updates = []
    rows = conn.execute(sa.select(audit.c.id, audit.c.office_id, audit.c.instance_id, audit.c.human_task_id,
                                  audit.c.user_id, audit.c.at, audit.c.kind, audit.c.step, audit.c.data)
                        .order_by(audit.c.id))
    for r in rows.mappings():
        key = chain_key(r["instance_id"], r["office_id"])
        value = row_hash(heads.get(key) if key[1] is not None else None, dict(r))
        heads[key] = value
        updates.append({"row_id": r["id"], "value": value})
    if updates:
        conn.execute(audit.update().where(audit.c.id == sa.bindparam("row_id")).values(hash=sa.bindparam("value")),
                     updates)
    for (kind, owner), value in heads.items():
        if owner is None:
            continue
        table = instance if kind == "instance" else office
        conn.execute(table.update().where(table.c.id == owner).values(audit_hash=value))


def downgrade() -> None:
    with op.batch_alter_table("office") as batch:
        batch.drop_column("audit_hash")
    with op.batch_alter_table("process_instance") as batch:
        batch.drop_column("audit_hash")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("hash")
