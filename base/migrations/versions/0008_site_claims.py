"""site claims: a member's claim of a web site's host name and its verification token

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "site_claims",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_site_claims_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_site_claims"),
        sa.UniqueConstraint("user_id", "host", name="uq_site_claims_user_host"),
    )


def downgrade() -> None:
    op.drop_table("site_claims")
