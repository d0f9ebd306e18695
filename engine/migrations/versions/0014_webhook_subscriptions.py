"""event webhooks: subscriptions per office, event deliveries in the outbox, the attempt log (issue 13)

Revision ID: 0014
Revises: 0017
Create Date: 2026-12-01 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0017'  # after main's 0017 (studio drafts); given as 0008
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("events", sa.String(300), nullable=False),
        sa.Column("secret_box", sa.String(400), nullable=False),
        sa.Column("secret_hint", sa.String(16), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name="fk_webhook_subscription_office_id_office",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_id"], ["user_account.id"],
                                name="fk_webhook_subscription_created_by_id_user_account", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscription"),
    )
    op.create_index("ix_webhook_subscription_office", "webhook_subscription", ["office_id", "active"])
    with op.batch_alter_table("delivery") as batch:
        batch.alter_column("notification_id", existing_type=BigId, nullable=True)
        batch.alter_column("recipient_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("subscription_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("event", sa.String(40), nullable=True))
        batch.add_column(sa.Column("event_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.create_foreign_key("fk_delivery_subscription_id_webhook_subscription", "webhook_subscription",
                                 ["subscription_id"], ["id"], ondelete="CASCADE")
        batch.create_unique_constraint("uq_delivery_subscription_event", ["subscription_id", "event_id"])
        batch.create_index("ix_delivery_subscription", ["subscription_id", "id"])
    op.create_table(
        "webhook_attempt",
        sa.Column("id", BigId, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], name="fk_webhook_attempt_delivery_id_delivery",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempt"),
    )
    op.create_index("ix_webhook_attempt_delivery", "webhook_attempt", ["delivery_id", "attempt"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempt_delivery", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    op.execute("DELETE FROM delivery WHERE subscription_id IS NOT NULL")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_subscription")
        batch.drop_constraint("uq_delivery_subscription_event", type_="unique")
        batch.drop_constraint("fk_delivery_subscription_id_webhook_subscription", type_="foreignkey")
        batch.drop_column("payload")
        batch.drop_column("event_id")
        batch.drop_column("event")
        batch.drop_column("subscription_id")
        batch.alter_column("recipient_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("notification_id", existing_type=BigId, nullable=False)
    op.drop_index("ix_webhook_subscription_office", table_name="webhook_subscription")
    op.drop_table("webhook_subscription")
