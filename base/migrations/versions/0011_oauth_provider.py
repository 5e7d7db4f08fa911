"""oauth provider: third-party apps, authorization codes and Bearer tokens (hashed)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oauth_apps",
        sa.Column("id", Id, nullable=False),
        sa.Column("owner_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_oauth_apps_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_apps"),
        sa.UniqueConstraint("client_id", name="uq_oauth_apps_client_id"),
    )
    op.create_index("ix_oauth_apps_owner", "oauth_apps", ["owner_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["oauth_apps.id"],
                                name="fk_oauth_codes_app_id_oauth_apps"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_oauth_codes_user_id_users"),
        sa.PrimaryKeyConstraint("code_hash", name="pk_oauth_codes"),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["oauth_apps.id"],
                                name="fk_oauth_tokens_app_id_oauth_apps"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_oauth_tokens_user_id_users"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_oauth_tokens"),
    )
    op.create_index("ix_oauth_tokens_code", "oauth_tokens", ["code_hash"])
    op.create_index("ix_oauth_tokens_user", "oauth_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_tokens_user", table_name="oauth_tokens")
    op.drop_index("ix_oauth_tokens_code", table_name="oauth_tokens")
    op.drop_table("oauth_tokens")
    op.drop_table("oauth_codes")
    op.drop_index("ix_oauth_apps_owner", table_name="oauth_apps")
    op.drop_table("oauth_apps")
