"""dashboard indexes

The supervisor dashboard (engine/stats.py) aggregates completed steps of one office over a
period: (office_id, state, completed_at) finds them, and on PostgreSQL the INCLUDE columns
make it an index-only scan (no heap visits for 1M rows), which keeps the overview and the
per-officer view under 300 ms (see bench/README.md, Dashboard). SQLite gets the same key
columns without INCLUDE.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-22 02:10:00
"""
from alembic import op


revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None

DONE_INCLUDE = ['version_id', 'bpmn_id', 'completed_by_id', 'assignee_id', 'due_at', 'paused_at', 'working_minutes']


def upgrade() -> None:
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_dash_done', ['office_id', 'state', 'completed_at'], unique=False,
                              postgresql_include=DONE_INCLUDE)


def downgrade() -> None:
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_dash_done')
