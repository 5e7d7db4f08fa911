"""thing_details.submitted_by (who submitted a web thing: never its owner) and things.url
looked up by an index (one lookup for every URL the API shows)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 10:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("thing_details") as batch:
        batch.add_column(sa.Column("submitted_by", Id, nullable=True))
        batch.create_foreign_key("fk_thing_details_submitted_by_users", "users",
                                 ["submitted_by"], ["id"])
    op.create_index("ix_things_url", "things", ["url"], postgresql_using="hash")


def downgrade() -> None:
    op.drop_index("ix_things_url", table_name="things")
    with op.batch_alter_table("thing_details") as batch:
        batch.drop_constraint("fk_thing_details_submitted_by_users", type_="foreignkey")
        batch.drop_column("submitted_by")
