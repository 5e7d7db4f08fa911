"""money in and out: provider_payments, payout_details, payout_batches, payouts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provider_payments",
        sa.Column("id", Id, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("problem", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("state IN ('credited', 'unmatched')",
                           name=op.f("ck_provider_payments_state")),
        sa.CheckConstraint("(state = 'credited') = (user_id IS NOT NULL)",
                           name=op.f("ck_provider_payments_credited_user")),
        sa.CheckConstraint("(state = 'unmatched') = (problem IS NOT NULL)",
                           name=op.f("ck_provider_payments_unmatched_problem")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_provider_payments_amount_not_negative")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_provider_payments_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_payments")),
        sa.UniqueConstraint("provider", "payment_id", name="uq_provider_payments_payment"),
    )
    op.create_table(
        "payout_details",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("holder_name", sa.String(length=70), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_payout_details_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_payout_details")),
    )
    op.create_table(
        "payout_batches",
        sa.Column("id", Id, nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("payouts", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("payouts > 0 AND total > 0", name=op.f("ck_payout_batches_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_batches")),
        sa.UniqueConstraint("message_id", name=op.f("uq_payout_batches_message_id")),
    )
    op.create_table(
        "payouts",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'requested'"),
                  nullable=False),
        sa.Column("holder_name", sa.String(length=70), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("request_key", sa.String(length=200), nullable=False),
        sa.Column("batch_id", Id, nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("exported_at", sa.DateTime(), nullable=True),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount_positive")),
        sa.CheckConstraint("state IN ('requested', 'exported', 'paid', 'failed')",
                           name=op.f("ck_payouts_state")),
        sa.CheckConstraint("(batch_id IS NULL) = (exported_at IS NULL)",
                           name=op.f("ck_payouts_batch_has_time")),
        sa.CheckConstraint("state NOT IN ('exported', 'paid') OR batch_id IS NOT NULL",
                           name=op.f("ck_payouts_exported_in_batch")),
        sa.CheckConstraint("state <> 'requested' OR batch_id IS NULL",
                           name=op.f("ck_payouts_requested_not_exported")),
        sa.CheckConstraint("(state IN ('paid', 'failed')) = (settled_at IS NOT NULL)",
                           name=op.f("ck_payouts_settled")),
        sa.ForeignKeyConstraint(["batch_id"], ["payout_batches.id"],
                                name=op.f("fk_payouts_batch_id_payout_batches")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_payouts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("request_key", name=op.f("uq_payouts_request_key")),
    )
    op.create_index("ix_payouts_state", "payouts", ["state"])
    op.create_index("ix_payouts_user", "payouts", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_payouts_user", table_name="payouts")
    op.drop_index("ix_payouts_state", table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("payout_batches")
    op.drop_table("payout_details")
    op.drop_table("provider_payments")
