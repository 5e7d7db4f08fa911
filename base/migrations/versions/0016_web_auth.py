"""web auth: server-side sessions (web_sessions), verified e-mail addresses, a verified address
unique without regard to case

Existing addresses stay where they are, unverified (nothing checked them), so addresses that
differ only in case may stay on several logins; the first owner to follow a confirmation link
gets it, and the others can never confirm it. Notices wait until an address is verified.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01 10:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("last_seen_at >= created_at",
                           name="ck_web_sessions_seen_after_created"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_web_sessions_user_id_users"),
        sa.PrimaryKeyConstraint("id_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_seen", "web_sessions", ["last_seen_at"])
    with op.batch_alter_table("logins") as batch:
        batch.drop_constraint("uq_logins_email", type_="unique")
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
    op.create_index("uq_logins_email_lower", "logins", [sa.text("lower(email)")], unique=True,
                    postgresql_where=sa.text("email_verified_at IS NOT NULL"),
                    sqlite_where=sa.text("email_verified_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("uq_logins_email_lower", table_name="logins")
    with op.batch_alter_table("logins") as batch:
        batch.drop_column("email_verified_at")
        batch.create_unique_constraint("uq_logins_email", ["email"])
    op.drop_table("web_sessions")
