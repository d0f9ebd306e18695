"""A pause of a step's clock is a request a supervisor decides (issue 14, finding 9)

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-01 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0014'  # chain: 0008, 0013 incidents, 0017 drafts, 0014 webhooks, 0016
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("office") as batch:
        batch.add_column(sa.Column("pause_mode", sa.String(16), nullable=False, server_default="approval"))
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "pause_request",
        sa.Column("id", big, nullable=False),
        sa.Column("human_task_id", big, sa.ForeignKey("human_task.id", ondelete="CASCADE",
                                                      name="fk_pause_request_human_task_id_human_task"),
                  nullable=False),
        sa.Column("instance_id", big, sa.ForeignKey("process_instance.id", ondelete="CASCADE",
                                                    name="fk_pause_request_instance_id_process_instance"),
                  nullable=False),
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", name="fk_pause_request_office_id_office"),
                  nullable=False),
        sa.Column("requested_by_id", sa.Integer(),
                  sa.ForeignKey("user_account.id", name="fk_pause_request_requested_by_id_user_account"),
                  nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(),
                  sa.ForeignKey("user_account.id", name="fk_pause_request_decided_by_id_user_account"),
                  nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pause_request"),
    )
    op.create_index("ix_pause_request_task", "pause_request", ["human_task_id", "status"])
    op.create_index("ix_pause_request_office_status", "pause_request", ["office_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_pause_request_office_status", table_name="pause_request")
    op.drop_index("ix_pause_request_task", table_name="pause_request")
    op.drop_table("pause_request")
    with op.batch_alter_table("office") as batch:
        batch.drop_column("pause_mode")
