"""Bluesky's tables (migration 0019).

- `bluesky_likes`: each like of a linked account the Jetstream consumer turned into a flattr,
  by its record key (`did`, `rkey`), with the liked post's at:// URI. A like's `delete` commit
  carries only the record key, so this is what says which post an unlike retracts.
- `stream_cursors`: where a stream consumer stopped (Jetstream's `time_us` of the last message
  it handled), saved in the same transaction as the events it stored, so a restart resumes
  there.
- `bluesky_claims`: a member's request to link a Bluesky account (DID, the handle it was asked
  for by) and the code they publish in their profile to prove it is theirs.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from ledger.schema import Id, _fk, metadata

bluesky_likes = Table(
    "bluesky_likes",
    metadata,
    Column("did", String(255), nullable=False),
    Column("rkey", String(512), nullable=False),
    Column("subject_uri", String(512), nullable=False),
    Column("created_at", DateTime, nullable=False),
    PrimaryKeyConstraint("did", "rkey", name="pk_bluesky_likes"),
)

stream_cursors = Table(
    "stream_cursors",
    metadata,
    Column("stream", String(32), primary_key=True),
    Column("time_us", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

bluesky_claims = Table(
    "bluesky_claims",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("did", String(255), nullable=False),
    Column("handle", String(253), nullable=False),
    Column("code", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("verified_at", DateTime, nullable=True),
    UniqueConstraint("user_id", "did", name="uq_bluesky_claims_user_did"),
)
