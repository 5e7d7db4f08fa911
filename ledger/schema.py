"""The ledger's tables (SQLAlchemy Core), with the invariants the database itself enforces.

Conventions: money is BIGINT minor units; times are naive UTC; a month is the text `YYYY-MM`.
A transfer moves `amount` from its debit account to its credit account, so an account's balance
is the sum of its credits minus the sum of its debits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")
Money = BigInteger
Month = String(7)


def _fk(table: str, **kwargs: Any) -> ForeignKey:
    return ForeignKey(f"{table}.id", **kwargs)


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("budget", Money, nullable=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("budget IS NULL OR budget >= 0", name="budget_not_negative"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("user_id", Id, _fk("users"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("balance", Money, nullable=False, server_default=text("0")),
    CheckConstraint("kind IN ('funds', 'revenue', 'system')", name="kind"),
    CheckConstraint("kind = 'system' OR balance >= 0", name="user_balance_not_negative"),
    CheckConstraint("(kind = 'system') = (user_id IS NULL)", name="user_accounts_have_user"),
    UniqueConstraint("user_id", "kind", name="uq_accounts_user_kind"),
)

# `transfers` and `shares` are written by the million at settlement and never updated, and
# `flattrs` by the thousand in every ingest batch; they carry no foreign keys, whose per-row
# triggers cost PostgreSQL 70% of a settlement run and half of a batch's flattrs insert.
# `ledger verify` checks their references instead (users and things are never deleted).
transfers = Table(
    "transfers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("debit_id", Id, nullable=False),
    Column("credit_id", Id, nullable=False),
    Column("amount", Money, nullable=False),
    Column("reason", Text, nullable=False),
    # byte order ("C") on PostgreSQL: settlement inserts keys by the million, in this order
    Column("idempotency_key", String(200).with_variant(String(200, collation="C"), "postgresql"),
           nullable=False, unique=True),
    Column("month", Month, nullable=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("debit_id <> credit_id", name="two_accounts"),
)

identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("platform_user_id", String(255), nullable=False),
    Column("username", String(255), nullable=True),
    Column("linked_user_id", Id, _fk("users"), nullable=True),
    Column("flattr_enabled", Boolean, nullable=False, server_default=true()),
    Column("claimed_by", Id, _fk("users"), nullable=True),
    Column("claimed_at", DateTime, nullable=True),
    UniqueConstraint("platform", "platform_user_id", name="uq_identities_platform_user"),
    CheckConstraint("(claimed_by IS NULL) = (claimed_at IS NULL)", name="claim_has_time"),
    Index("ix_identities_linked_user", "linked_user_id"),
    Index("ix_identities_claimed_by", "claimed_by"),
)

things = Table(
    "things",
    metadata,
    Column("id", Id, primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("content_id", String(512), nullable=False),
    Column("owner_identity_id", Id, _fk("identities"), nullable=False),
    Column("url", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("platform", "content_id", name="uq_things_platform_content"),
    Index("ix_things_owner", "owner_identity_id"),
    # looking a thing up by the URL the API shows (hash: URLs may outgrow a B-tree entry)
    Index("ix_things_url", "url", postgresql_using="hash"),
)

events = Table(
    "events",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("received_at", DateTime, nullable=False),
    CheckConstraint("kind IN ('like', 'unlike')", name="kind"),
)

# no foreign keys (see `transfers`): `ledger verify` checks giver_id and thing_id
flattrs = Table(
    "flattrs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("giver_id", Id, nullable=False),
    Column("thing_id", Id, nullable=False),
    Column("month", Month, nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("source_event_id", String(255), nullable=False),
    Column("source", String(16), nullable=False, server_default=text("'like'")),
    Column("late", Boolean, nullable=False, server_default=false()),
    Column("retracted_at", DateTime, nullable=True),
    CheckConstraint("source IN ('like', 'subscription', 'button')", name="source"),
    Index(
        "uq_flattrs_once_per_month",
        "giver_id",
        "thing_id",
        "month",
        unique=True,
        sqlite_where=text("retracted_at IS NULL"),
        postgresql_where=text("retracted_at IS NULL"),
    ),
    Index("ix_flattrs_month_giver", "month", "giver_id"),
    Index("ix_flattrs_thing", "thing_id"),
)

unlikes = Table(
    "unlikes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("giver_id", Id, _fk("users"), nullable=False),
    Column("thing_id", Id, _fk("things"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Index("ix_unlikes_thing_giver", "thing_id", "giver_id", "occurred_at"),
)

pledges = Table(
    "pledges",
    metadata,
    Column("flattr_id", Id, _fk("flattrs"), primary_key=True),
    Column("giver_id", Id, _fk("users"), nullable=False),
    Column("identity_id", Id, _fk("identities"), nullable=False),
    Column("month", Month, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'waiting'")),
    Column("counted_month", Month, nullable=True),
    CheckConstraint("state IN ('waiting', 'counted', 'lapsed', 'retracted')", name="state"),
    CheckConstraint("(state = 'counted') = (counted_month IS NOT NULL)", name="counted_month"),
    Index("ix_pledges_identity_state", "identity_id", "state"),
    Index("ix_pledges_giver_state", "giver_id", "state"),
)

shares = Table(
    "shares",
    metadata,
    Column("flattr_id", Id, primary_key=True),
    Column("month", Month, nullable=False),
    Column("giver_id", Id, nullable=False),
    Column("receiver_id", Id, nullable=False),
    Column("share", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("net", Money, nullable=False),
    CheckConstraint("share >= 0 AND fee >= 0 AND net >= 0", name="not_negative"),
    CheckConstraint("share = fee + net", name="share_is_fee_plus_net"),
    CheckConstraint("giver_id <> receiver_id", name="no_self_flattr"),
    Index("ix_shares_month_giver", "month", "giver_id"),
    Index("ix_shares_receiver_month", "receiver_id", "month"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("thing_id", Id, _fk("things"), nullable=False),
    Column("months", Integer, nullable=False),
    Column("start_month", Month, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("cancelled_at", DateTime, nullable=True),
    CheckConstraint("months IN (3, 6, 12)", name="months"),
    Index("ix_subscriptions_start", "start_month"),
)

settlement_runs = Table(
    "settlement_runs",
    metadata,
    Column("month", Month, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("next_giver_id", BigInteger, nullable=False, server_default=text("0")),
    Column("givers", BigInteger, nullable=False, server_default=text("0")),
    Column("flattrs", BigInteger, nullable=False, server_default=text("0")),
    Column("amount", Money, nullable=False, server_default=text("0")),
    Column("fees", Money, nullable=False, server_default=text("0")),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    CheckConstraint("state IN ('running', 'done')", name="state"),
    CheckConstraint("(state = 'done') = (finished_at IS NOT NULL)", name="finished"),
)

# A run's givers in chunks of ids [low, high): each chunk is settled in one transaction by
# whichever process claims it (FOR UPDATE SKIP LOCKED), so several settle a month at once.
settlement_chunks = Table(
    "settlement_chunks",
    metadata,
    Column("month", Month, primary_key=True),
    Column("low", BigInteger, primary_key=True),
    Column("high", BigInteger, nullable=False),
    Column("done", Boolean, nullable=False, server_default=false()),
    CheckConstraint("low < high", name="range"),
)

settlement_snapshot = Table(
    "settlement_snapshot",
    metadata,
    Column("month", Month, primary_key=True),
    Column("user_id", Id, _fk("users"), primary_key=True),
    Column("funds_account_id", Id, _fk("accounts"), nullable=False),
    Column("revenue_account_id", Id, _fk("accounts"), nullable=False),
    Column("budget", Money, nullable=False),
    Column("funds", Money, nullable=False),
    Column("amount", Money, nullable=False),
    Column("funded", Boolean, nullable=False),
    CheckConstraint("amount >= 0 AND amount <= funds AND amount <= budget", name="amount"),
)

ledger_clock = Table(
    "ledger_clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_closed_month", Month, nullable=True),
    CheckConstraint("id = 1", name="single_row"),
)
