"""What pollers and the shared poll logic (`connectors.polling`) pass each other: the errors a
poll can end in, an account, the items of a snapshot, tokens, and the `Poller` protocol each
polled platform implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from base.vault import Vault


class PollError(Exception):
    """A poll that could not complete. The message never contains a token."""


class RateLimited(PollError):
    def __init__(self, reset_at: datetime | None, requests_made: int = 0) -> None:
        super().__init__("rate limited")
        self.reset_at = reset_at
        self.requests_made = requests_made


class TokenExpired(PollError):
    """The platform refused the access token (401): refresh it once, else relink."""


class TransientError(PollError):
    """Network trouble or a 5xx: try again later, with backoff."""


@dataclass(frozen=True, slots=True)
class Item:
    """One liked piece of content as a poller sees it."""

    content_id: str
    owner_id: str
    url: str | None = None
    title: str | None = None
    liked_at: datetime | None = None  # when the platform says the like happened, if it does


@dataclass(slots=True)
class Snapshot:
    """The likes read in one poll; `complete` when the list was read to its end;
    `newest_first` when the platform lists likes by the time they were given, newest first."""

    items: list[Item]
    complete: bool
    requests: int
    newest_first: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    platform: str
    instance: str
    platform_user_id: str
    remote_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    window_started_at: datetime | None
    window_requests: int
    baseline_done: bool
    failures: int
    last_polled_at: datetime | None = None
    token_secret: str | None = field(default=None, repr=False)  # OAuth 1.0a (Flickr)


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None


class Poller(Protocol):
    """One platform's poller, built from its config section."""

    platform: str
    poll_seconds: int
    window_requests: int
    window_seconds: int
    vault: Vault  # opens and seals the stored tokens

    def fetch(self, account: Account, budget: int) -> Snapshot:
        """Read the account's likes with at most `budget` requests."""

    def refresh(self, account: Account) -> Tokens | None:
        """New tokens from the refresh token, or None when that is not possible."""
