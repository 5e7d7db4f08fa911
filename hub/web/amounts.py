"""Amounts as people read and type them: minor units as `12.34` (every currency the hub takes
has two decimals), the one way pages, forms and messages write money."""

from __future__ import annotations

from collections.abc import Callable


def units(amount: int) -> str:
    """`amount` minor units as `12.34` (`-0.05` below zero)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def money_filter(currency: str) -> Callable[[int | None], str]:
    """The template filter `money`: minor units as `12.34 EUR` (none as `0.00 EUR`)."""
    def money(amount: int | None) -> str:
        return f"{units(amount or 0)} {currency}"
    return money
