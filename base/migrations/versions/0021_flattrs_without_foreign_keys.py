"""flattrs_without_foreign_keys: flattrs.giver_id and thing_id lose their foreign keys, whose
per-row triggers were half of an ingest batch's flattrs insert on PostgreSQL; `ledger verify`
checks both references instead (users and things are never deleted)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 17:00:00
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FOREIGN_KEYS = (("fk_flattrs_giver_id_users", "users", "giver_id"),
                ("fk_flattrs_thing_id_things", "things", "thing_id"))


def upgrade() -> None:
    with op.batch_alter_table("flattrs") as batch:
        for name, _, _ in FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("flattrs") as batch:
        for name, table, column in FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], ["id"])
