"""Subcommands of `flattr-hub`, one module per area, and the helpers they share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from base.errors import UserError


def add_command(commands: Any, name: str, help_text: str,
                func: Callable[[argparse.Namespace, Any], int]) -> argparse.ArgumentParser:
    """Add subcommand `name` (which also accepts `--config PATH` after its name)."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="YAML configuration file")
    parser.set_defaults(func=func)
    return parser


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (0 to 65535)")
    return value


def usage(text: str) -> Callable[[argparse.Namespace, Any], int]:
    """The handler of a command group called without its action: one line naming the usage."""
    def handler(_args: argparse.Namespace, _app: Any) -> int:
        raise UserError(f"usage: flattr-hub {text}")
    return handler


def amount(text: str) -> int:
    """An argparse type: a whole, positive number of minor units (cents)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"amount must be a whole number of minor units (cents), not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"amount must be positive, not {value}")
    return value


def record_id(text: str) -> int:
    """An argparse type: the id of a stored record (a positive 64-bit whole number)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"not a record id: {text[:40]!r}")
    return int(text)


def month(text: str) -> str:
    """An argparse type: a month `YYYY-MM`."""
    from ledger.months import parse_month

    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
