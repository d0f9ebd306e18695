"""hostile input: session epoch and sign-in lockout, shared login throttling, upload quotas

Revision ID: 0009
Revises: 0010 (was 0006; re-chained after main brought 0010)
Create Date: 2026-12-01 04:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("attachment") as batch:
        batch.add_column(sa.Column("human_task_id", BigId, nullable=True))
        batch.add_column(sa.Column("instance_id", BigId, nullable=True))
        batch.add_column(sa.Column("kept", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_foreign_key(op.f("fk_attachment_human_task_id_human_task"), "human_task",
                                 ["human_task_id"], ["id"], ondelete="SET NULL")
        batch.create_foreign_key(op.f("fk_attachment_instance_id_process_instance"), "process_instance",
                                 ["instance_id"], ["id"], ondelete="SET NULL")
        batch.create_index(op.f("ix_attachment_human_task_id"), ["human_task_id"])
        batch.create_index(op.f("ix_attachment_instance_id"), ["instance_id"])
    # uploads made before this revision are kept: nothing recorded which step they were for
    op.execute("UPDATE attachment SET kept = " + ("1" if op.get_bind().dialect.name == "sqlite" else "true"))
    op.create_table(
        "login_failure",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index("ix_login_failure_username_at", "login_failure", ["username", "at"])
    op.create_index("ix_login_failure_address_at", "login_failure", ["address", "at"])
    op.create_index(op.f("ix_login_failure_at"), "login_failure", ["at"])


def downgrade() -> None:
    op.drop_table("login_failure")
    with op.batch_alter_table("attachment") as batch:
        batch.drop_index(op.f("ix_attachment_instance_id"))
        batch.drop_index(op.f("ix_attachment_human_task_id"))
        batch.drop_constraint(op.f("fk_attachment_instance_id_process_instance"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_attachment_human_task_id_human_task"), type_="foreignkey")
        batch.drop_column("kept")
        batch.drop_column("instance_id")
        batch.drop_column("human_task_id")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("session_epoch")
