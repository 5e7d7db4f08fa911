"""Mastodon: a poller of each linked account's favourites, per instance, with Mastodon.py.

No webhook carries favourites. `Mastodon(access_token, api_base_url=<instance>).favourites(
limit=40)` then `fetch_next(page)` (Mastodon.py follows the `Link` header, whose ids are the
favourites' own, not the statuses'), for at most `max_pages` pages; snapshots are diffed
(`connectors.polling`). Account ids are local to an instance, so identities are
`user@host`: a linked account is `<acct>@<instance host>`, a status's owner is its
`account.acct`, qualified with the polling instance's host when it is local. A status is
identified by its `uri` (else `url`), the same from every instance.

Apps are registered per instance (`POST /api/v1/apps`, scopes `read:favourites
read:accounts`) and their client credentials stored in `mastodon_apps` (`app_credentials`, the
secret sealed with the token vault). Mastodon access tokens do
not expire; one that is refused (revoked) marks the account for relinking. On when
`connectors.mastodon.enabled` is true; `connectors.mastodon.api_base` sends every instance's
requests to one place (a local fake in tests and the benchmark).

Mastodon.py is imported where it is used: every command reads this module's descriptor (for the
settings), and most never poll.

Instance names are chosen by members, so Mastodon.py's own requests session is a guarded one
(`base.public_net`): it connects only to public addresses, to the address it checked,
and every redirect hop is checked again.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select, update

from base.config import Settings
from base.public_net import Guard, guarded_session, refusal
from base.tables.connectors import mastodon_apps
from base.vault import Vault, vault
from connectors.platform import OAuthProvider, Platform, key_set
from connectors.poll_http import HTTP_TIMEOUT, reset_time, route
from connectors.poll_types import (
    Account,
    Item,
    RateLimited,
    Snapshot,
    TokenExpired,
    Tokens,
    TransientError,
)
from ledger.sql import utcnow

if TYPE_CHECKING:
    from mastodon import Mastodon

SCOPES = ["read:favourites", "read:accounts"]  # read:accounts: verify_credentials when linking
OOB = "urn:ietf:wg:oauth:2.0:oob"
PAGE = 40
TAGS = re.compile(r"<[^>]+>")


def host_of(instance: str) -> str:
    """`https://mastodon.example` → `mastodon.example`."""
    return urlsplit(instance if "//" in instance else f"https://{instance}").netloc.lower()


def instance_url(instance: str) -> str:
    return f"https://{host_of(instance)}"


def qualified(acct: str, instance: str) -> str:
    """An account's `acct` as `user@host` (local accounts have no host in `acct`)."""
    return acct if "@" in acct else f"{acct}@{host_of(instance)}"


@dataclass
class MastodonPoller:
    api_base: str = ""
    poll_seconds: int = 900
    max_pages: int = 5
    window_requests: int = 300  # Mastodon's default: 300 requests / 5 min per account
    window_seconds: int = 300
    platform: str = "mastodon"
    vault: Vault = field(kw_only=True, repr=False)
    guard: Guard = field(kw_only=True, default=Guard())

    def client(self, account: Account) -> Mastodon:
        from mastodon import Mastodon

        base = instance_url(account.instance)
        session = route(guarded_session(self.guard), base, self.api_base)
        return Mastodon(access_token=account.access_token, api_base_url=base, session=session,
                        ratelimit_method="throw", request_timeout=HTTP_TIMEOUT,
                        version_check_mode="none")

    def fetch(self, account: Account, budget: int) -> Snapshot:
        from mastodon import (
            MastodonAPIError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        client = self.client(account)
        items: list[Item] = []
        made = 1
        try:
            page = client.favourites(limit=PAGE)
            while True:
                items += [_item(status, account.instance) for status in page or []]
                if getattr(page, "_pagination_next", None) is None:
                    return Snapshot(items, complete=True, requests=made)
                if made >= min(budget, self.max_pages):
                    return Snapshot(items, complete=False, requests=made)
                made += 1
                page = client.fetch_next(page)
                if page is None:
                    return Snapshot(items, complete=True, requests=made)
        except MastodonUnauthorizedError:
            raise TokenExpired("the instance refused the access token") from None
        except MastodonRatelimitError:
            reset = client.ratelimit_reset
            raise RateLimited(reset_time({"reset": str(int(reset))}, "reset") if reset else None,
                              made) from None
        except (MastodonNetworkError, MastodonServerError) as exc:
            raise TransientError(unreachable(exc, account.instance)) from None
        except MastodonAPIError:
            raise TransientError("the instance refused the request") from None
        finally:
            client.session.close()

    def refresh(self, account: Account) -> Tokens | None:
        return None  # Mastodon tokens don't expire; a refused one needs a new link


def unreachable(exc: BaseException, instance: str) -> str:
    """A plain sentence for a failed request to `instance` (never an exception's name)."""
    refused = refusal(exc)
    if refused is not None:
        return f"{host_of(instance)} is not a public address the hub may reach ({refused})"
    return f"{host_of(instance)} could not be reached"


def _item(status: Mapping[str, Any], instance: str) -> Item:
    account = status.get("account") or {}
    text = html.unescape(TAGS.sub(" ", str(status.get("content") or ""))).strip()
    return Item(content_id=str(status.get("uri") or status.get("url") or status["id"]),
                owner_id=qualified(str(account.get("acct")), instance),
                url=status.get("url"), title=" ".join(text.split())[:200] or None)


def poller(config: Settings) -> MastodonPoller | None:
    """The Mastodon poller, or None while `connectors.mastodon.enabled` is off."""
    section = PLATFORM.section(config)
    if not section.enabled:
        return None
    return MastodonPoller(section.api_base, section.poll_seconds,
                          section.max_pages, vault=vault(config),
                          guard=Guard.from_config(config))


def app_credentials(conn: Connection, instance: str, config: Settings,
                    redirect_uri: str = OOB) -> tuple[str, str]:
    """The (client id, client secret) of the hub's app on `instance`, registered on first use
    and stored (the secret sealed). An app registered without `redirect_uri` (e.g. by the
    command line, before anyone linked through the web) is registered again with it."""
    host = host_of(instance)
    row = conn.execute(select(mastodon_apps).where(mastodon_apps.c.instance == host)).first()
    registered = (row.redirect_uris or OOB).splitlines() if row is not None else []
    if row is not None and redirect_uri in registered:
        return row.client_id, vault(config).open(row.client_secret)
    uris = list(dict.fromkeys([*registered, OOB, redirect_uri]))
    session = route(guarded_session(Guard.from_config(config)), instance_url(host),
                    PLATFORM.section(config).api_base)
    with session:
        from mastodon import Mastodon

        client_id, client_secret = Mastodon.create_app(
            "Flattr Hub", scopes=SCOPES, redirect_uris=uris,
            api_base_url=instance_url(host), session=session, request_timeout=HTTP_TIMEOUT)
    values = {"client_id": client_id, "client_secret": vault(config).seal(client_secret),
              "redirect_uris": "\n".join(uris), "created_at": utcnow()}
    if row is None:
        conn.execute(insert(mastodon_apps).values(instance=host, **values))
    else:
        conn.execute(update(mastodon_apps).where(mastodon_apps.c.instance == host)
                     .values(**values))
    return client_id, client_secret


@dataclass(frozen=True)
class MastodonSettings:
    """`connectors.mastodon`: linking and the poller are on with `enabled`."""

    enabled: bool = False
    api_base: str = ""  # "" = each instance itself
    poll_seconds: int = 900
    max_pages: int = 5
    requests_per_minute: int = 1200


PLATFORM = Platform(
    name="mastodon", display_name="Mastodon", settings=MastodonSettings, poller=poller,
    # paths on each instance; `acct` is local (no host) for the instance's own accounts
    linking=OAuthProvider(
        "/oauth/authorize", "/oauth/token", "/api/v1/accounts/verify_credentials",
        tuple(SCOPES), pkce=False, client_auth="post", user_id=("acct",),
        username=("username",), remote_id=("id",), per_instance=True, identity=qualified,
        enabled=key_set("enabled")),
)
