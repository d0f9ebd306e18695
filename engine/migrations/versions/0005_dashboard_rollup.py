"""dashboard rollup: completed steps per office and WIB day/month/year

The supervisor dashboard (engine/stats.py) reads the completed-step figures of days that are
over (in WIB) from these tables instead of aggregating `human_task` again: a completed step
never changes, so a past day's figures are immutable. `stats_block` records which blocks
(office, span d/w/m/y = day, week inside a month, month, year; first day) are built; each
block's rows hold, per (SOP version, step) and per (SOP version, step, officer), the counts
and the distinct working minutes (rounded to 2 decimals) with their counts, so medians and
p90 stay exact. Built lazily by engine.stats
(`ensure_rollup`), never twice: the primary keys are the guard (INSERT .. ON CONFLICT DO NOTHING).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BLOCK = ['office_id', 'span', 'day']


def _figures():
    return [
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('bpmn_id', sa.String(length=200), nullable=False),
    ]


def _counts():
    return [
        sa.Column('completed', sa.Integer(), nullable=False),
        sa.Column('with_due', sa.Integer(), nullable=False),
        sa.Column('on_time', sa.Integer(), nullable=False),
        sa.Column('late', sa.Integer(), nullable=False),
        sa.Column('durations', sa.LargeBinary(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table('stats_block',
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('span', sa.String(length=1), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_stats_block_office_id_office')),
    sa.PrimaryKeyConstraint('office_id', 'span', 'day', name=op.f('pk_stats_block'))
    )
    op.create_table('stats_step_block',
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('span', sa.String(length=1), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *_figures(), *_counts(),
    sa.ForeignKeyConstraint(BLOCK, ['stats_block.office_id', 'stats_block.span', 'stats_block.day'],
                            name=op.f('fk_stats_step_block_office_id_stats_block'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['process_version.id'],
                            name=op.f('fk_stats_step_block_version_id_process_version')),
    sa.PrimaryKeyConstraint('office_id', 'span', 'day', 'version_id', 'bpmn_id', name=op.f('pk_stats_step_block'))
    )
    op.create_table('stats_officer_block',
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('span', sa.String(length=1), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *_figures(),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    *_counts(),
    sa.ForeignKeyConstraint(BLOCK, ['stats_block.office_id', 'stats_block.span', 'stats_block.day'],
                            name=op.f('fk_stats_officer_block_office_id_stats_block'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['process_version.id'],
                            name=op.f('fk_stats_officer_block_version_id_process_version')),
    sa.ForeignKeyConstraint(['officer_id'], ['user_account.id'],
                            name=op.f('fk_stats_officer_block_officer_id_user_account')),
    sa.PrimaryKeyConstraint('office_id', 'span', 'day', 'version_id', 'bpmn_id', 'officer_id',
                            name=op.f('pk_stats_officer_block'))
    )


def downgrade() -> None:
    op.drop_table('stats_officer_block')
    op.drop_table('stats_step_block')
    op.drop_table('stats_block')
