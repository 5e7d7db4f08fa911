"""bluesky: the Jetstream consumer's like keys and cursor, and Bluesky account claims

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bluesky_likes",
        sa.Column("did", sa.String(length=255), nullable=False),
        sa.Column("rkey", sa.String(length=512), nullable=False),
        sa.Column("subject_uri", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("did", "rkey", name="pk_bluesky_likes"),
    )
    op.create_table(
        "stream_cursors",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="pk_stream_cursors"),
    )
    op.create_table(
        "bluesky_claims",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("did", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=253), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_bluesky_claims_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_bluesky_claims"),
        sa.UniqueConstraint("user_id", "did", name="uq_bluesky_claims_user_did"),
    )


def downgrade() -> None:
    op.drop_table("bluesky_claims")
    op.drop_table("stream_cursors")
    op.drop_table("bluesky_likes")
