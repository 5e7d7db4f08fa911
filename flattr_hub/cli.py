"""The `flattr-hub` command line: parsing, configuration, and turning errors into one line.

Each module in COMMAND_MODULES adds its subcommands with `register(subparsers)`; a subcommand's
handler is `func(args, app) -> int`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import Any, NoReturn

from sqlalchemy import Engine

from flattr_hub import demo, logs
from flattr_hub.commands import connectors as connector_commands
from flattr_hub.commands import ledger as ledger_commands
from flattr_hub.commands import outbound as outbound_commands
from flattr_hub.commands import payouts as payout_commands
from flattr_hub.commands import service
from flattr_hub.commands import sites as site_commands
from flattr_hub.commands import things as thing_commands
from flattr_hub.config import ConfigError, database_url, load_config
from flattr_hub.errors import UserError
from ledger.db import make_engine, upgrade
from ledger.errors import LedgerError

COMMAND_MODULES = (ledger_commands, demo, service, connector_commands, outbound_commands,
                   thing_commands, payout_commands, site_commands)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class App:
    """What a command needs, made on first use: the configuration and a migrated database."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @cached_property
    def engine(self) -> Engine:
        url = database_url(self.config)
        upgrade(url)
        return make_engine(url)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="flattr-hub", description="Flattr Hub: likes become money.")
    parser.add_argument("--config", metavar="PATH", help="YAML configuration file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=OneLineParser)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        app = App(load_config(getattr(args, "config", None)))
        logs.configure(app.config)
        return args.func(args, app)
    except (UserError, LedgerError, ConfigError) as exc:
        print(f"flattr-hub: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
