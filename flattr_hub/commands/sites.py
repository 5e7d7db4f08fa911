"""Web-site claims from the command line: start a claim (prints the token to publish) and have
the hub look for the proof, as the `/sites` pages do."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from base.errors import UserError
from flattr_hub.commands import add_command, usage
from ledger.accounts import user_id
from members.site_proof import META_NAME, TXT_PREFIX, WELL_KNOWN
from members.sites import ProofMissing, request_claim, verify_site


def register(commands: Any) -> None:
    sites = add_command(commands, "sites", "web-site claims",
                        usage("sites {claim,verify} NAME HOST"))
    actions = sites.add_subparsers(metavar="ACTION")
    claim = add_command(actions, "claim", "start NAME's claim of a web site; prints the token "
                        "to publish on it", _claim)
    verify = add_command(actions, "verify", "look for the token on the site and, when it is "
                         "there, claim the site for NAME", _verify)
    for parser in (claim, verify):
        parser.add_argument("name")
        parser.add_argument("host")


def _claim(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        claim = request_claim(conn, user_id(conn, args.name), args.host)
    print(f"To prove that {args.name} runs {claim.host}, publish one of:\n"
          f'  <meta name="{META_NAME}" content="{claim.token}"> on its front page\n'
          f"  a file {WELL_KNOWN} containing {claim.token}\n"
          f"  a DNS TXT record {TXT_PREFIX}{claim.token}\n"
          f"then run: flattr-hub sites verify {args.name} {claim.host}")
    return 0


def _verify(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        uid = user_id(conn, args.name)
    try:
        claim = asyncio.run(verify_site(app.engine, app.config, uid, args.host))
    except ProofMissing as exc:
        raise UserError(f"{exc}: {'; '.join(exc.reasons)}") from None
    if claim.mine:
        print(f"{claim.host} is claimed by {args.name}")
    else:
        print(f"{args.name} proved {claim.host}, which {claim.holder} holds: a claim contest "
              "is open for an operator to resolve")
    return 0
