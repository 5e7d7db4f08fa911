"""connector accounts: poll_accounts, poll_seen, mastodon_apps, discord_reactions, discord_guilds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "poll_accounts",
        sa.Column("id", Id, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=255), server_default=sa.text("''"),
                  nullable=False),
        sa.Column("platform_user_id", sa.String(length=255), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'active'"),
                  nullable=False),
        sa.Column("next_poll_at", sa.DateTime(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.Column("baseline_done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=True),
        sa.Column("window_requests", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("state IN ('active', 'relink', 'off')",
                           name=op.f("ck_poll_accounts_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_accounts")),
        sa.UniqueConstraint("platform", "instance", "platform_user_id",
                            name="uq_poll_accounts_identity"),
    )
    op.create_index("ix_poll_accounts_due", "poll_accounts",
                    ["platform", "state", "next_poll_at"])
    op.create_table(
        "poll_seen",
        sa.Column("account_id", Id, nullable=False),
        sa.Column("content_id", sa.String(length=512), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["poll_accounts.id"], ondelete="CASCADE",
                                name=op.f("fk_poll_seen_account_id_poll_accounts")),
        sa.PrimaryKeyConstraint("account_id", "content_id", name="pk_poll_seen"),
    )
    op.create_table(
        "mastodon_apps",
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_mastodon_apps")),
    )
    op.create_table(
        "discord_reactions",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("emoji", sa.String(length=128), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("guild_id", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name="pk_discord_reactions"),
    )
    op.create_table(
        "discord_guilds",
        sa.Column("guild_id", sa.String(length=32), nullable=False),
        sa.Column("emoji", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", name=op.f("pk_discord_guilds")),
    )


def downgrade() -> None:
    op.drop_table("discord_guilds")
    op.drop_table("discord_reactions")
    op.drop_table("mastodon_apps")
    op.drop_table("poll_seen")
    op.drop_index("ix_poll_accounts_due", table_name="poll_accounts")
    op.drop_table("poll_accounts")
