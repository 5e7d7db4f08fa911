"""notifications: outbox, creators' opt-outs, members' settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", Id, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("identity_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'pending'"),
                  nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('pledges_waiting', 'pledgee_joined')",
                           name="ck_notification_outbox_kind"),
        sa.CheckConstraint("channel IN ('email', 'discord')",
                           name="ck_notification_outbox_channel"),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed', 'skipped')",
                           name="ck_notification_outbox_state"),
        sa.CheckConstraint("(state = 'pending') = (next_attempt_at IS NOT NULL)",
                           name="ck_notification_outbox_pending_due"),
        sa.CheckConstraint("(state = 'sent') = (sent_at IS NOT NULL)",
                           name="ck_notification_outbox_sent_time"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_notification_outbox_identity_id_identities"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_notification_outbox_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_notification_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_notification_outbox_dedupe_key"),
    )
    op.create_index("ix_notification_outbox_due", "notification_outbox",
                    ["state", "next_attempt_at"])
    op.create_index("ix_notification_outbox_sent", "notification_outbox", ["kind", "sent_at"])
    op.create_table(
        "notification_optouts",
        sa.Column("identity_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_notification_optouts_identity_id_identities"),
        sa.PrimaryKeyConstraint("identity_id", name="pk_notification_optouts"),
    )
    op.create_table(
        "notification_settings",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("pledgee_joined", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_notification_settings_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_notification_settings"),
    )


def downgrade() -> None:
    op.drop_table("notification_settings")
    op.drop_table("notification_optouts")
    op.drop_index("ix_notification_outbox_sent", table_name="notification_outbox")
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
