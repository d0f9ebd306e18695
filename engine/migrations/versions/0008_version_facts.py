"""process_version.facts: the facts of a version derived from its BPMN at deploy

Versions deployed before this revision have none; the runtime derives them from the stored
BPMN on first use (engine.bpmn.facts_from_xml), statically, without running anything.

Revision ID: 0008
Revises: 0010
Create Date: 2026-12-01 04:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0009'  # re-chained after main's 0010 (the integrator's ordering)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_version") as batch:
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("process_version") as batch:
        batch.drop_column("facts")
