"""Bluesky commands: the Jetstream consumer on its own (`bluesky-stream`, stopped cleanly by
SIGINT or SIGTERM: what it read is stored and the cursor saved), and linking an account for
an operator (`bluesky link NAME HANDLE|DID`: the operator vouches, no code is asked)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from base.errors import UserError
from base.redis_conn import connect
from connectors import jetstream
from flattr_hub.commands import add_command, usage
from ledger import accounts
from ledger.errors import LedgerError
from members.bluesky_link import account_did, link_account
from pipeline.queues import wake


def register(commands: Any) -> None:
    add_command(commands, "bluesky-stream", "run the Jetstream consumer: likes of linked "
                "Bluesky accounts become flattrs, their deletion unlikes", _stream)
    group = add_command(commands, "bluesky", "Bluesky accounts",
                        usage("bluesky link NAME HANDLE|DID"))
    actions = group.add_subparsers(metavar="ACTION")
    link = add_command(actions, "link", "link a Bluesky account (handle or DID) to a user "
                       "and claim it, without asking for a proof", _link)
    link.add_argument("name", help="hub user name")
    link.add_argument("account", help="handle (alice.bsky.social) or DID (did:plc:…)")


def _enabled(app: Any) -> None:
    if not app.config.connectors['bluesky'].enabled:
        raise UserError("connectors.bluesky.enabled is false")


def _stream(_args: argparse.Namespace, app: Any) -> int:
    _enabled(app)
    engine = app.engine
    redis = connect(app.config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await jetstream.run(engine, app.config, stop, lambda _events: wake(redis),
                            jetstream.Status(redis))

    print(f"Bluesky stream starting: {app.config.connectors['bluesky'].jetstream_url} "
          "(Ctrl-C to stop)", flush=True)
    asyncio.run(main())
    print("Bluesky stream stopped", flush=True)
    return 0


def _link(args: argparse.Namespace, app: Any) -> int:
    _enabled(app)
    try:
        did, handle = asyncio.run(account_did(app.config, args.account))
        with app.engine.begin() as conn:
            uid = accounts.user_id(conn, args.name)
            mine = link_account(conn, uid, did, handle)
    except LedgerError as exc:
        raise UserError(str(exc)) from None
    if not mine:
        print(f"{did} is claimed by another member: a claim contest was opened")
        return 0
    print(f"linked Bluesky account {handle or did} ({did}) to {args.name}; the stream picks "
          f"it up within {app.config.connectors['bluesky'].reload_seconds} s")
    return 0


