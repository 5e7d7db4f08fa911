"""Tables for linking platform accounts by OAuth and for contested claims.

- `oauth_pending`: an authorisation between the redirect to the platform and the callback.
  Keyed by the SHA-256 of its `state` (the state itself is a secret the browser holds), with
  the PKCE code verifier sealed by the token vault; a row is deleted when its callback takes it,
  so a state works once, and it expires after a few minutes.
- `claim_contests`: a member proved (by OAuth) an identity that another member has claimed; an
  operator awards the claim to the claimant or rejects the request, and who did it and when is
  kept.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, Table, Text, text

from ledger.schema import Id, _fk, metadata

PURPOSES = ("link", "login")
CONTEST_STATES = ("open", "awarded", "rejected")

oauth_pending = Table(
    "oauth_pending",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("purpose", String(8), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("instance", String(255), nullable=False, server_default=text("''")),
    Column("user_id", Id, _fk("users"), nullable=True),
    Column("code_verifier", Text, nullable=True),
    Column("redirect_uri", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    CheckConstraint("purpose IN ('link', 'login')", name="purpose"),
    CheckConstraint("(purpose = 'link') = (user_id IS NOT NULL)", name="link_has_user"),
    Index("ix_oauth_pending_expires_at", "expires_at"),
)

claim_contests = Table(
    "claim_contests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("identity_id", Id, _fk("identities"), nullable=False),
    Column("claimant_id", Id, _fk("users"), nullable=False),
    Column("holder_id", Id, _fk("users"), nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'open'")),
    Column("opened_at", DateTime, nullable=False),
    Column("resolved_at", DateTime, nullable=True),
    Column("resolved_by", Id, _fk("users"), nullable=True),
    CheckConstraint("state IN ('open', 'awarded', 'rejected')", name="state"),
    CheckConstraint("(state = 'open') = (resolved_at IS NULL)", name="resolved_has_time"),
    CheckConstraint("(resolved_at IS NULL) = (resolved_by IS NULL)", name="resolved_has_who"),
    Index("ix_claim_contests_state", "state", "identity_id"),
)
