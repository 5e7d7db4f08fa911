"""catalog: details and tags of things flattred with the Flattr button

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CATEGORY_CHECK = "category IN ('text', 'images', 'video', 'audio', 'software', 'people', 'rest')"


def upgrade() -> None:
    op.create_table(
        "thing_details",
        sa.Column("thing_id", Id, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(CATEGORY_CHECK, name=op.f("ck_thing_details_category")),
        sa.ForeignKeyConstraint(["thing_id"], ["things.id"],
                                name="fk_thing_details_thing_id_things"),
        sa.PrimaryKeyConstraint("thing_id", name="pk_thing_details"),
    )
    op.create_index("ix_thing_details_category", "thing_details", ["category"])
    op.create_table(
        "thing_tags",
        sa.Column("thing_id", Id, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["thing_id"], ["things.id"], name="fk_thing_tags_thing_id_things"),
        sa.PrimaryKeyConstraint("thing_id", "tag", name="pk_thing_tags"),
    )
    op.create_index("ix_thing_tags_tag", "thing_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_thing_tags_tag", table_name="thing_tags")
    op.drop_table("thing_tags")
    op.drop_index("ix_thing_details_category", table_name="thing_details")
    op.drop_table("thing_details")
