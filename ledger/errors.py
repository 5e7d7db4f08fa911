"""Errors the ledger raises for requests it refuses; each message is one line fit for a user."""


class LedgerError(ValueError):
    """A request the ledger refuses; nothing was changed."""


class NotFound(LedgerError):
    """A named user, account or identity does not exist."""


class InsufficientFunds(LedgerError):
    """A transfer would take an account below zero."""


class IdempotencyConflict(LedgerError):
    """An idempotency key was reused for a different transfer."""
