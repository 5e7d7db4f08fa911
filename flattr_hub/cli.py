"""The `flattr-hub` command line: parsing, configuration, and turning errors into one line.

Each command module adds its subcommands with `register(subparsers)`; a subcommand's handler is
`func(args, app) -> int`. COMMANDS names the module behind each top-level command, so that a
command imports only its own module: the hub, the connectors' client libraries and the workers
are loaded by the commands that use them, not by every `flattr-hub balance`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import cached_property
from importlib import import_module
from typing import NoReturn

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import OperationalError

from base import logs
from base.config import ConfigError, Settings, database_url
from base.db import upgrade
from base.errors import UserError
from connectors.registry import load_config
from ledger.db import make_engine
from ledger.errors import LedgerError

COMMANDS = {
    **dict.fromkeys(("user", "link", "budget", "funds", "events", "settle", "balance",
                     "statement", "ledger", "db"), "flattr_hub.commands.ledger"),
    "demo": "flattr_hub.demo",
    **dict.fromkeys(("serve", "worker", "scheduler", "up"), "flattr_hub.commands.service"),
    **dict.fromkeys(("discord-bot", "discord", "connectors", "mastodon"),
                    "flattr_hub.commands.connectors"),
    "webhooks": "flattr_hub.commands.outbound",
    "things": "flattr_hub.commands.things",
    **dict.fromkeys(("payouts", "payments"), "flattr_hub.commands.payouts"),
    "sites": "flattr_hub.commands.sites",
    "inbox": "flattr_hub.commands.inbox",
    **dict.fromkeys(("bluesky-stream", "bluesky"), "flattr_hub.commands.bluesky"),
}


DEFAULT_PORTS = {"postgresql": 5432}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class App:
    """What a command needs, made on first use: the configuration and a migrated database."""

    def __init__(self, config: Settings) -> None:
        self.config = config

    @cached_property
    def engine(self) -> Engine:
        url = database_url(self.config)
        upgrade(url)
        return make_engine(url)


def database_problem(config: Settings, exc: OperationalError) -> str:
    """One line for a database that cannot be used: where it is (host:port, or the SQLite
    file) and the driver's first line of reason, without the password."""
    url = make_url(database_url(config))
    backend = url.get_backend_name()
    if backend == "sqlite":
        where = url.database or "memory"
    else:
        where = f"{url.host or 'localhost'}:{url.port or DEFAULT_PORTS.get(backend, '')}"
    reason = (str(exc.orig).strip().splitlines() or [""])[0] if exc.orig else ""
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return f"cannot use the database at {where}: {reason or exc.__class__.__name__}"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or only the module of `command` when it is known."""
    parser = OneLineParser(prog="flattr-hub", description="Flattr Hub: likes become money.")
    parser.add_argument("--config", metavar="PATH", help="YAML configuration file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=OneLineParser)
    modules = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    for module in modules:
        import_module(module).register(commands)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The top-level command in `argv` (skipping `--config PATH` and other options before it)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    try:
        app = App(load_config(getattr(args, "config", None)))
        logs.configure(app.config)
        return args.func(args, app)
    except (UserError, LedgerError, ConfigError) as exc:
        print(f"flattr-hub: error: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(f"flattr-hub: error: {database_problem(app.config, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
