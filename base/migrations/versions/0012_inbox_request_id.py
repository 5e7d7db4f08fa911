"""inbox.hub_request_id: the hub's X-Request-ID of the request that delivered each event

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbox", sa.Column("hub_request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("hub_request_id")
