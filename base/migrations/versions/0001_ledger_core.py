"""ledger core: users, accounts, transfers, identities, things, flattrs, pledges, settlement

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:40:17.768086
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('like', 'unlike')", name=op.f("ck_events_kind")),
        sa.PrimaryKeyConstraint("platform", "event_id", name=op.f("pk_events")),
    )
    op.create_table(
        "ledger_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_closed_month", sa.String(length=7), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_ledger_clock_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_clock")),
    )
    op.create_table(
        "settlement_runs",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("next_giver_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("givers", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("flattrs", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("fees", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "(state = 'done') = (finished_at IS NOT NULL)", name=op.f("ck_settlement_runs_finished")
        ),
        sa.CheckConstraint("state IN ('running', 'done')", name=op.f("ck_settlement_runs_state")),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_settlement_runs")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "budget IS NULL OR budget >= 0", name=op.f("ck_users_budget_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "(kind = 'system') = (user_id IS NULL)",
            name=op.f("ck_accounts_user_accounts_have_user"),
        ),
        sa.CheckConstraint(
            "kind = 'system' OR balance >= 0", name=op.f("ck_accounts_user_balance_not_negative")
        ),
        sa.CheckConstraint("kind IN ('funds', 'revenue', 'system')", name=op.f("ck_accounts_kind")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_accounts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
        sa.UniqueConstraint("user_id", "kind", name="uq_accounts_user_kind"),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("platform_user_id", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column(
            "linked_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("flattr_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "claimed_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "(claimed_by IS NULL) = (claimed_at IS NULL)", name=op.f("ck_identities_claim_has_time")
        ),
        sa.ForeignKeyConstraint(
            ["claimed_by"], ["users.id"], name=op.f("fk_identities_claimed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["linked_user_id"], ["users.id"], name=op.f("fk_identities_linked_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("platform", "platform_user_id", name="uq_identities_platform_user"),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_claimed_by", ["claimed_by"], unique=False)
        batch_op.create_index("ix_identities_linked_user", ["linked_user_id"], unique=False)

    op.create_table(
        "settlement_snapshot",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "funds_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "revenue_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("funds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("funded", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "amount >= 0 AND amount <= funds AND amount <= budget",
            name=op.f("ck_settlement_snapshot_amount"),
        ),
        sa.ForeignKeyConstraint(
            ["funds_account_id"],
            ["accounts.id"],
            name=op.f("fk_settlement_snapshot_funds_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["revenue_account_id"],
            ["accounts.id"],
            name=op.f("fk_settlement_snapshot_revenue_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_settlement_snapshot_user_id_users")
        ),
        sa.PrimaryKeyConstraint("month", "user_id", name=op.f("pk_settlement_snapshot")),
    )
    op.create_table(
        "things",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("content_id", sa.String(length=512), nullable=False),
        sa.Column(
            "owner_identity_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_identity_id"],
            ["identities.id"],
            name=op.f("fk_things_owner_identity_id_identities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_things")),
        sa.UniqueConstraint("platform", "content_id", name="uq_things_platform_content"),
    )
    with op.batch_alter_table("things", schema=None) as batch_op:
        batch_op.create_index("ix_things_owner", ["owner_identity_id"], unique=False)

    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("debit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "credit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transfers_amount_positive")),
        sa.CheckConstraint("debit_id <> credit_id", name=op.f("ck_transfers_two_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_transfers_idempotency_key")),
    )
    op.create_table(
        "flattrs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("giver_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("thing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("source_event_id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=16), server_default=sa.text("'like'"), nullable=False),
        sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retracted_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "source IN ('like', 'subscription', 'button')", name=op.f("ck_flattrs_source")
        ),
        sa.ForeignKeyConstraint(["giver_id"], ["users.id"], name=op.f("fk_flattrs_giver_id_users")),
        sa.ForeignKeyConstraint(
            ["thing_id"], ["things.id"], name=op.f("fk_flattrs_thing_id_things")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flattrs")),
    )
    with op.batch_alter_table("flattrs", schema=None) as batch_op:
        batch_op.create_index("ix_flattrs_month_giver", ["month", "giver_id"], unique=False)
        batch_op.create_index("ix_flattrs_thing", ["thing_id"], unique=False)
        batch_op.create_index(
            "uq_flattrs_once_per_month",
            ["giver_id", "thing_id", "month"],
            unique=True,
            sqlite_where=sa.text("retracted_at IS NULL"),
            postgresql_where=sa.text("retracted_at IS NULL"),
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("thing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("start_month", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("months IN (3, 6, 12)", name=op.f("ck_subscriptions_months")),
        sa.ForeignKeyConstraint(
            ["thing_id"], ["things.id"], name=op.f("fk_subscriptions_thing_id_things")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscriptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_start", ["start_month"], unique=False)

    op.create_table(
        "pledges",
        sa.Column(
            "flattr_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("giver_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "identity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column(
            "state", sa.String(length=16), server_default=sa.text("'waiting'"), nullable=False
        ),
        sa.Column("counted_month", sa.String(length=7), nullable=True),
        sa.CheckConstraint(
            "(state = 'counted') = (counted_month IS NOT NULL)",
            name=op.f("ck_pledges_counted_month"),
        ),
        sa.CheckConstraint(
            "state IN ('waiting', 'counted', 'lapsed', 'retracted')", name=op.f("ck_pledges_state")
        ),
        sa.ForeignKeyConstraint(
            ["flattr_id"], ["flattrs.id"], name=op.f("fk_pledges_flattr_id_flattrs")
        ),
        sa.ForeignKeyConstraint(["giver_id"], ["users.id"], name=op.f("fk_pledges_giver_id_users")),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_pledges_identity_id_identities")
        ),
        sa.PrimaryKeyConstraint("flattr_id", name=op.f("pk_pledges")),
    )
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.create_index("ix_pledges_giver_state", ["giver_id", "state"], unique=False)
        batch_op.create_index("ix_pledges_identity_state", ["identity_id", "state"], unique=False)

    op.create_table(
        "shares",
        sa.Column(
            "flattr_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("giver_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "receiver_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("share", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("giver_id <> receiver_id", name=op.f("ck_shares_no_self_flattr")),
        sa.CheckConstraint("share = fee + net", name=op.f("ck_shares_share_is_fee_plus_net")),
        sa.CheckConstraint(
            "share >= 0 AND fee >= 0 AND net >= 0", name=op.f("ck_shares_not_negative")
        ),
        sa.PrimaryKeyConstraint("flattr_id", name=op.f("pk_shares")),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index("ix_shares_month_giver", ["month", "giver_id"], unique=False)
        batch_op.create_index("ix_shares_receiver_month", ["receiver_id", "month"], unique=False)
    op.create_table(
        "unlikes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("giver_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("thing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["giver_id"], ["users.id"], name=op.f("fk_unlikes_giver_id_users")),
        sa.ForeignKeyConstraint(
            ["thing_id"], ["things.id"], name=op.f("fk_unlikes_thing_id_things")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unlikes")),
    )
    op.create_index("ix_unlikes_thing_giver", "unlikes", ["thing_id", "giver_id", "occurred_at"])
    op.execute("INSERT INTO ledger_clock (id, last_closed_month) VALUES (1, NULL)")


def downgrade() -> None:
    op.drop_index("ix_unlikes_thing_giver", table_name="unlikes")
    op.drop_table("unlikes")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index("ix_shares_receiver_month")
        batch_op.drop_index("ix_shares_month_giver")

    op.drop_table("shares")
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_index("ix_pledges_identity_state")
        batch_op.drop_index("ix_pledges_giver_state")

    op.drop_table("pledges")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_start")

    op.drop_table("subscriptions")
    with op.batch_alter_table("flattrs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_flattrs_once_per_month",
            sqlite_where=sa.text("retracted_at IS NULL"),
            postgresql_where=sa.text("retracted_at IS NULL"),
        )
        batch_op.drop_index("ix_flattrs_thing")
        batch_op.drop_index("ix_flattrs_month_giver")

    op.drop_table("flattrs")
    op.drop_table("transfers")
    with op.batch_alter_table("things", schema=None) as batch_op:
        batch_op.drop_index("ix_things_owner")

    op.drop_table("things")
    op.drop_table("settlement_snapshot")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_linked_user")
        batch_op.drop_index("ix_identities_claimed_by")

    op.drop_table("identities")
    op.drop_table("accounts")
    op.drop_table("users")
    op.drop_table("settlement_runs")
    op.drop_table("ledger_clock")
    op.drop_table("events")
