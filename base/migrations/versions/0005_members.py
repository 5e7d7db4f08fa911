"""members: logins (passwords, e-mail, operator flag)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logins",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("operator", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_logins_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_logins"),
        sa.UniqueConstraint("email", name="uq_logins_email"),
    )


def downgrade() -> None:
    op.drop_table("logins")
