"""Registers (Buku Agenda, Daftar Arsip), their counters and entries, office letterheads,
publication checks (issue 15). Adds tables only; existing offices get the two default
registers (the same ones a new office gets, engine/registers.py DEFAULT_REGISTERS).

Revision ID: 0015
Revises: 0016 (given: 0008)
Create Date: 2026-12-01 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0016'  # re-chained after main's 0016 at the merge (task: after 0008)
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "register",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", ondelete="CASCADE",
                                                          name="fk_register_office_id_office"), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("security", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_register"),
        sa.UniqueConstraint("office_id", "code", name="uq_register_office_code"),
    )
    op.create_table(
        "register_counter",
        sa.Column("register_id", sa.Integer(), sa.ForeignKey("register.id", ondelete="CASCADE",
                                                            name="fk_register_counter_register_id_register"),
                  nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("register_id", "year", name="pk_register_counter"),
    )
    op.create_table(
        "register_entry",
        sa.Column("id", BIG, nullable=False),
        sa.Column("register_id", sa.Integer(), sa.ForeignKey("register.id", ondelete="CASCADE",
                                                            name="fk_register_entry_register_id_register"),
                  nullable=False),
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", name="fk_register_entry_office_id_office"),
                  nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(200), nullable=False),
        sa.Column("classification", sa.String(40), nullable=True),
        sa.Column("instance_id", BIG, sa.ForeignKey("process_instance.id", ondelete="SET NULL",
                                                    name="fk_register_entry_instance_id_process_instance"),
                  nullable=True),
        sa.Column("human_task_id", BIG, sa.ForeignKey("human_task.id", ondelete="SET NULL",
                                                      name="fk_register_entry_human_task_id_human_task"),
                  nullable=True),
        sa.Column("step", sa.String(200), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(200), nullable=True),
        sa.Column("sender", sa.String(200), nullable=True),
        sa.Column("location", sa.String(200), nullable=True),
        sa.Column("doc_date", sa.Date(), nullable=True),
        sa.Column("issued_at", UTC, nullable=False),
        sa.Column("issued_by_id", sa.Integer(), sa.ForeignKey("user_account.id",
                                                             name="fk_register_entry_issued_by_id_user_account"),
                  nullable=True),
        sa.Column("cancelled_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_register_entry"),
        sa.UniqueConstraint("register_id", "year", "seq", name="uq_register_entry_seq"),
        sa.UniqueConstraint("register_id", "instance_id", name="uq_register_entry_instance"),
    )
    op.create_index("ix_register_entry_office", "register_entry", ["office_id", "register_id", "issued_at"])
    op.create_table(
        "office_paper",
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", ondelete="CASCADE",
                                                          name="fk_office_paper_office_id_office"), nullable=False),
        sa.Column("kop", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("office_id", name="pk_office_paper"),
    )
    op.create_table(
        "publication_check",
        sa.Column("id", BIG, nullable=False),
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", name="fk_publication_check_office_id_office"),
                  nullable=False),
        sa.Column("instance_id", BIG, sa.ForeignKey("process_instance.id", ondelete="CASCADE",
                                                    name="fk_publication_check_instance_id_process_instance"),
                  nullable=False),
        sa.Column("human_task_id", BIG, sa.ForeignKey("human_task.id", ondelete="SET NULL",
                                                      name="fk_publication_check_human_task_id_human_task"),
                  nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("expected_title", sa.String(300), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("title_found", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
        sa.Column("checked_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_publication_check"),
    )
    op.create_index("ix_publication_check_instance", "publication_check", ["instance_id", "id"])
    # the default registers of the offices that exist (a new office gets them when created)
    bind = op.get_bind()
    offices = bind.execute(sa.text("SELECT id, code FROM office")).fetchall()
    register = sa.table("register", *(sa.column(c) for c in
                                      ("office_id", "code", "name", "kind", "template", "unit", "security")))
    rows = []
    for office_id, code in offices:
        unit = code.upper()[:32]
        rows.append({"office_id": office_id, "code": "agenda", "name": "Buku Agenda", "kind": "agenda",
                     "template": "{nomor:3}/{unit}/{tahun}", "unit": unit, "security": "B"})
        rows.append({"office_id": office_id, "code": "arsip", "name": "Daftar Arsip", "kind": "arsip",
                     "template": "{keamanan}/{klasifikasi}/{nomor:5}/{unit}", "unit": unit, "security": "B"})
    if rows:
        op.bulk_insert(register, rows)


def downgrade() -> None:
    op.drop_index("ix_publication_check_instance", table_name="publication_check")
    op.drop_table("publication_check")
    op.drop_table("office_paper")
    op.drop_index("ix_register_entry_office", table_name="register_entry")
    op.drop_table("register_entry")
    op.drop_table("register_counter")
    op.drop_table("register")
