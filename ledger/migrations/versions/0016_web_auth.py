"""web auth: server-side sessions (web_sessions), verified e-mail addresses, e-mail unique
without regard to case

Existing addresses that differ only in case: the oldest login keeps it, the others lose it
(their owners can add an address again and verify it). Existing addresses start unverified.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-01 10:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
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
    op.execute(
        "UPDATE logins SET email = NULL WHERE email IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM logins AS older WHERE lower(older.email) = lower(logins.email) "
        "AND older.user_id < logins.user_id)")
    with op.batch_alter_table("logins") as batch:
        batch.drop_constraint("uq_logins_email", type_="unique")
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
    op.create_index("uq_logins_email_lower", "logins", [sa.text("lower(email)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_logins_email_lower", table_name="logins")
    with op.batch_alter_table("logins") as batch:
        batch.drop_column("email_verified_at")
        batch.create_unique_constraint("uq_logins_email", ["email"])
    op.drop_table("web_sessions")
