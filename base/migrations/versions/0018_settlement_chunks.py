"""settlement_chunks: a run's givers in chunks that several processes claim and settle at once;
transfers.idempotency_key in byte order ("C" collation) on PostgreSQL

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 10:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_chunks",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("low < high", name=op.f("ck_settlement_chunks_range")),
        sa.PrimaryKeyConstraint("month", "low", name=op.f("pk_settlement_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("transfers", "idempotency_key",
                        type_=sa.String(length=200, collation="C"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("transfers", "idempotency_key", type_=sa.String(length=200))
    op.drop_table("settlement_chunks")
