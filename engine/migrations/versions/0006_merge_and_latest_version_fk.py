"""merge the reminder and dashboard branches; add the process_definition -> latest version key

The initial schema declared this foreign key with use_alter (the two tables point at each
other), which Alembic's create_table leaves out on PostgreSQL; SQLite has it inline.

Revision ID: 0006
Revises: 0003, 0005
Create Date: 2026-11-22 02:55:00
"""
from alembic import op

revision = '0006'
down_revision = ('0003', '0005')
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key("fk_definition_latest_version", "process_definition", "process_version",
                              ["latest_version_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_definition_latest_version", "process_definition", type_="foreignkey")
