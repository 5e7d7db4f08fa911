"""Reading a page of liked items from a platform's JSON defensively, for the video pollers
(Vimeo, Dailymotion, YouTube).

A platform's answer is data from outside: an item with a field of the wrong type, an id that
is not the platform's shape, a link to another site or a huge string is skipped and logged
(`poll_item_skipped`, with the platform, the account and the reason, never the value), so one
bad item can not stop an account's polls; the rest of the page is kept. A page that is not the
documented shape at all (not an object, no list) is the platform answering wrongly:
`TransientError`, retried with backoff.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from connectors.polling import Account, Item, TransientError

log = structlog.get_logger(__name__)

TITLE_CHARS = 512
ID_CHARS = 255


class BadItem(ValueError):
    """One liked item that is not in the platform's documented shape. The message names the
    field, never its value."""


def at(node: Any, *path: str | int) -> Any:
    """`node[path[0]][path[1]]…`, or None where a step is missing or of the wrong type."""
    for key in path:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
        else:
            node = node.get(key) if isinstance(node, Mapping) else None
    return node


def ident(node: Any, *path: str | int, pattern: re.Pattern[str]) -> str:
    """The id at `path`: a string (or a plain integer) matching `pattern` in full."""
    value = at(node, *path)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    name = ".".join(str(key) for key in path)
    if not isinstance(value, str):
        raise BadItem(f"{name} is missing or not a string")
    if len(value) > ID_CHARS or not pattern.fullmatch(value):
        raise BadItem(f"{name} is not an id of the documented form")
    return value


def title(node: Any, *path: str | int) -> str | None:
    """The text at `path`, cut to TITLE_CHARS; None when absent or not a string."""
    value = at(node, *path)
    if not isinstance(value, str) or not value.strip():
        return None
    return value[:TITLE_CHARS]


def site_url(value: Any, hosts: tuple[str, ...], name: str) -> str:
    """`value` if it is an https URL on one of `hosts` (or a subdomain of one)."""
    if not isinstance(value, str) or len(value) > 2048:
        raise BadItem(f"{name} is missing or not a string")
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise BadItem(f"{name} is not a URL") from None
    if parts.scheme != "https" or not any(host == h or host.endswith("." + h) for h in hosts):
        raise BadItem(f"{name} is not a link to {hosts[0]}")
    return value


def page_list(page: Any, key: str, platform: str) -> list[Any]:
    """The list of items `page[key]`; TransientError when the page is not that shape."""
    items = page.get(key) if isinstance(page, Mapping) else None
    if items is None and isinstance(page, Mapping):
        return []
    if not isinstance(items, list):
        raise TransientError(f"{platform} answered a page that is not the documented shape")
    return items


def parse_items(account: Account, raw: list[Any], parse: Callable[[Any], Item]) -> list[Item]:
    """Every item of `raw` that `parse` accepts; the others skipped and logged."""
    items = []
    for entry in raw:
        try:
            items.append(parse(entry))
        except BadItem as exc:
            log.warning("poll_item_skipped", platform=account.platform, account=account.id,
                        reason=str(exc))
    return items
