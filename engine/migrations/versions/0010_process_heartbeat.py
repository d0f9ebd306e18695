"""process heartbeats: workers, beats and the deadline tick (issue 17)

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("info", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_heartbeat")),
        sa.UniqueConstraint("kind", "name", name="uq_process_heartbeat_kind_name"),
    )


def downgrade() -> None:
    op.drop_table("process_heartbeat")
