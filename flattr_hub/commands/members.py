"""`flattr-hub user password NAME` and `flattr-hub user operator NAME [--revoke]`: what a
deployment needs to make its first operator. The password is read from stdin (without echo on a
terminal), never from the command line, where other users of the machine could see it."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from base.errors import UserError
from flattr_hub.commands import add_command
from ledger.accounts import user_id
from members.logins import set_operator, set_password


def register_user_actions(user_commands: Any) -> None:
    """Add `password` and `operator` to the `user` command group."""
    password = add_command(user_commands, "password", "set a user's web password, read from "
                           "stdin (one line)", _password)
    password.add_argument("name")
    operator = add_command(user_commands, "operator", "make a user an operator (the /ops "
                           "pages); --revoke takes it back", _operator)
    operator.add_argument("name")
    operator.add_argument("--revoke", action="store_true", help="withdraw operator rights")


def read_password() -> str:
    """One line from stdin; on a terminal, asked for without echo."""
    if sys.stdin.isatty():
        return getpass.getpass("New password: ")
    line = sys.stdin.readline()
    if not line:
        raise UserError("no password on stdin")
    return line.rstrip("\r\n")


def _password(args: argparse.Namespace, app: Any) -> int:
    password = read_password()
    with app.engine.begin() as conn:
        set_password(conn, user_id(conn, args.name), password)
    print(f"password of {args.name} set")
    return 0


def _operator(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        set_operator(conn, user_id(conn, args.name), not args.revoke)
    print(f"{args.name} is {'no longer ' if args.revoke else ''}an operator")
    return 0
