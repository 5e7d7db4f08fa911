"""The pure core of settlement: which of a giver's flattrs count, and how the amount divides.

Plain values in, plain values out; no I/O. `ledger.settlement` feeds it from the database and
writes what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """A receivable flattr of a funded giver: one of M's own, or a pledge carried into M."""

    flattr_id: int
    thing_id: int
    receiver_id: int
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Share:
    flattr_id: int
    receiver_id: int
    share: int
    fee: int
    net: int


def count_once(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Rule 1: a thing counts once, at its earliest flattr; result ordered by
    (occurred_at, flattr id), the order in which extra cents are given."""
    kept: dict[int, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: (c.occurred_at, c.flattr_id)):
        kept.setdefault(candidate.thing_id, candidate)
    return list(kept.values())


def divide(amount: int, count: int) -> list[int]:
    """`amount` in `count` shares of `amount // count`, the first `amount % count` one cent more."""
    if count <= 0:
        return []
    base, extra = divmod(amount, count)
    return [base + 1] * extra + [base] * (count - extra)


def fee_of(share: int, fee_bps: int) -> int:
    return share * fee_bps // 10000


def settle_giver(amount: int, candidates: Sequence[Candidate], fee_bps: int) -> list[Share]:
    """The shares of one funded giver for one month: `amount` divided over the counted flattrs."""
    counted = count_once(candidates)
    shares = []
    for candidate, share in zip(counted, divide(amount, len(counted)), strict=True):
        fee = fee_of(share, fee_bps)
        shares.append(Share(candidate.flattr_id, candidate.receiver_id, share, fee, share - fee))
    return shares
