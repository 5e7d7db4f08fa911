"""Commands about things of the Flattr button: `things discover URL` follows a page's
rel="payment" link to the hub user who owns it."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from base.errors import UserError
from catalog.discovery import discover
from catalog.errors import CatalogError
from flattr_hub.commands import add_command, usage


def register(commands: Any) -> None:
    things = add_command(commands, "things", "things of the Flattr button",
                         usage("things discover URL"))
    found = add_command(things.add_subparsers(metavar="ACTION"), "discover",
                        "fetch URL and print (JSON) the auto-submit parameters of its "
                        'rel="payment" link: who owns it, title, category…', _discover)
    found.add_argument("url")


def _discover(args: argparse.Namespace, app: Any) -> int:
    try:
        found = asyncio.run(discover(args.url, app.config))
    except CatalogError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(found or {"url": args.url, "payment_url": None}, sort_keys=True))
    return 0
