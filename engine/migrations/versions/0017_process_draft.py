"""process_draft: SOPs being edited in the browser studio (issue 11)

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-01 07:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_draft",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("office_id", sa.Integer(), sa.ForeignKey("office.id", ondelete="CASCADE",
                                                          name="fk_process_draft_office_id_office"), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("based_on_version", sa.Integer(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.Column("editor_id", sa.Integer(), sa.ForeignKey("user_account.id", ondelete="SET NULL",
                                                          name="fk_process_draft_editor_id_user_account"),
                  nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_process_draft"),
        sa.UniqueConstraint("office_id", "key", name="uq_process_draft_office_id"),
    )


def downgrade() -> None:
    op.drop_table("process_draft")
