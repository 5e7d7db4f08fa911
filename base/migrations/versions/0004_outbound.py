"""outbound webhooks: outbound_endpoints, outbound_deliveries, outbound_attempts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbound_endpoints",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("event_types", sa.String(length=255), nullable=False),
        sa.Column("partner", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=255), nullable=True),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_outbound_endpoints_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_endpoints")),
    )
    op.create_index("ix_outbound_endpoints_user", "outbound_endpoints", ["user_id"])
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", Id, nullable=False),
        sa.Column("endpoint_id", Id, nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'pending'"),
                  nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')",
                           name=op.f("ck_outbound_deliveries_state")),
        sa.CheckConstraint("(state = 'pending') = (next_attempt_at IS NOT NULL)",
                           name=op.f("ck_outbound_deliveries_pending_due")),
        sa.ForeignKeyConstraint(["endpoint_id"], ["outbound_endpoints.id"],
                                name=op.f("fk_outbound_deliveries_endpoint_id_outbound_endpoints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_deliveries")),
        sa.UniqueConstraint("endpoint_id", "event_key", name="uq_outbound_deliveries_event"),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_outbound_deliveries_webhook_id")),
    )
    op.create_index("ix_outbound_deliveries_due", "outbound_deliveries",
                    ["state", "next_attempt_at"])
    op.create_table(
        "outbound_attempts",
        sa.Column("id", Id, nullable=False),
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["outbound_deliveries.id"],
                                name=op.f("fk_outbound_attempts_delivery_id_outbound_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_attempts")),
    )
    op.create_index("ix_outbound_attempts_delivery", "outbound_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_attempts_delivery", table_name="outbound_attempts")
    op.drop_table("outbound_attempts")
    op.drop_index("ix_outbound_deliveries_due", table_name="outbound_deliveries")
    op.drop_table("outbound_deliveries")
    op.drop_index("ix_outbound_endpoints_user", table_name="outbound_endpoints")
    op.drop_table("outbound_endpoints")
