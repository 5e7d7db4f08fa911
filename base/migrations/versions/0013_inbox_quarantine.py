"""inbox_quarantine: inbox events the worker could not record, set aside for an operator

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 10:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox_quarantine",
        sa.Column("id", Id, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("inbox_id", Id, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.CheckConstraint("state IN ('quarantined', 'retried', 'discarded')",
                           name="ck_inbox_quarantine_state"),
        sa.CheckConstraint("attempts >= 1", name="ck_inbox_quarantine_attempts_positive"),
        sa.CheckConstraint("first_seen <= last_seen", name="ck_inbox_quarantine_seen_in_order"),
        sa.UniqueConstraint("platform", "event_id", name="uq_inbox_quarantine_event"),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_quarantine"),
    )


def downgrade() -> None:
    op.drop_table("inbox_quarantine")
