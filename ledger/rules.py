"""The money rules the ledger is given: the deployment's currency, fee, budget bounds, payout
minimum and ceiling, give-to-get, pledge lifetime and the size of a settlement transaction.

The ledger receives these and nothing else of the configuration (no secrets); `base.config`
builds them from the settings (`Settings.money`). Amounts are integer minor units.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MoneyRules:
    currency: str = "EUR"
    fee_bps: int = 1000  # the fee on each share, in basis points
    min_monthly: int = 200  # smallest monthly budget; less to give is unfunded
    max_monthly: int = 50000
    payout_minimum: int = 1000  # revenue can be withdrawn from this amount on
    give_to_get: bool = True  # a creator receives only in months they give min_monthly
    pledge_months: int = 6  # pledges older than this many months lapse
    max_payout: int = 1000000  # most one payout request
    batch_givers: int = 5000  # givers settled per transaction


@dataclass(frozen=True)
class Debtor:
    """The operator's account payouts are paid from (the debtor of SEPA batches)."""

    name: str
    iban: str
    bic: str = ""
