"""Incidents: run-time errors of an instance, visible and retried (issue 10)

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-01 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", BigId, nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", BigId, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.String(200), nullable=False),
        sa.Column("element_name", sa.String(300), nullable=False),
        sa.Column("task_guid", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name="fk_incident_office_id_office"),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"], ondelete="CASCADE",
                                name="fk_incident_instance_id_process_instance"),
        sa.ForeignKeyConstraint(["version_id"], ["process_version.id"],
                                name="fk_incident_version_id_process_version"),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["user_account.id"],
                                name="fk_incident_resolved_by_id_user_account"),
        sa.PrimaryKeyConstraint("id", name="pk_incident"),
    )
    op.create_index("ix_incident_office_open", "incident", ["office_id", "resolved_at", "id"])
    op.create_index("ix_incident_instance", "incident", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_instance", table_name="incident")
    op.drop_index("ix_incident_office_open", table_name="incident")
    op.drop_table("incident")
