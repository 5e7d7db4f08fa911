"""poll_token_secret: poll_accounts.token_secret, the sealed token secret of an OAuth 1.0a
account (Flickr signs every request with the token and its secret)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("poll_accounts", sa.Column("token_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll_accounts") as batch:
        batch.drop_column("token_secret")
