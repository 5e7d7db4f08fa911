"""inbox_pending_only: a drain deletes the inbox rows it records (in the batch's transaction)
instead of marking them processed, so the inbox holds pending rows only: processed rows are
dropped with `processed_at` and its two indexes (every event is in `events` once recorded)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM inbox WHERE processed_at IS NOT NULL")
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("processed_at")


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("processed_at", sa.DateTime(), nullable=True))
    op.create_index("ix_inbox_pending", "inbox", ["id"],
                    sqlite_where=sa.text("processed_at IS NULL"),
                    postgresql_where=sa.text("processed_at IS NULL"))
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
