"""oauth linking: oauth_pending, claim_contests, mastodon_apps.redirect_uris

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oauth_pending",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=255), server_default=sa.text("''"),
                  nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("code_verifier", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("purpose IN ('link', 'login')", name="ck_oauth_pending_purpose"),
        sa.CheckConstraint("(purpose = 'link') = (user_id IS NOT NULL)",
                           name="ck_oauth_pending_link_has_user"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_oauth_pending_user_id_users"),
        sa.PrimaryKeyConstraint("state_hash", name="pk_oauth_pending"),
    )
    op.create_index("ix_oauth_pending_expires_at", "oauth_pending", ["expires_at"])
    op.create_table(
        "claim_contests",
        sa.Column("id", Id, nullable=False),
        sa.Column("identity_id", Id, nullable=False),
        sa.Column("claimant_id", Id, nullable=False),
        sa.Column("holder_id", Id, nullable=False),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'open'"),
                  nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", Id, nullable=True),
        sa.CheckConstraint("state IN ('open', 'awarded', 'rejected')",
                           name="ck_claim_contests_state"),
        sa.CheckConstraint("(state = 'open') = (resolved_at IS NULL)",
                           name="ck_claim_contests_resolved_has_time"),
        sa.CheckConstraint("(resolved_at IS NULL) = (resolved_by IS NULL)",
                           name="ck_claim_contests_resolved_has_who"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_claim_contests_identity_id_identities"),
        sa.ForeignKeyConstraint(["claimant_id"], ["users.id"],
                                name="fk_claim_contests_claimant_id_users"),
        sa.ForeignKeyConstraint(["holder_id"], ["users.id"],
                                name="fk_claim_contests_holder_id_users"),
        sa.ForeignKeyConstraint(["resolved_by"], ["users.id"],
                                name="fk_claim_contests_resolved_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_claim_contests"),
    )
    op.create_index("ix_claim_contests_state", "claim_contests", ["state", "identity_id"])
    op.add_column("mastodon_apps", sa.Column("redirect_uris", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mastodon_apps") as batch_op:
        batch_op.drop_column("redirect_uris")
    op.drop_index("ix_claim_contests_state", table_name="claim_contests")
    op.drop_table("claim_contests")
    op.drop_index("ix_oauth_pending_expires_at", table_name="oauth_pending")
    op.drop_table("oauth_pending")
