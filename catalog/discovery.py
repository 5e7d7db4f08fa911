"""Discovery: which hub user owns a web page, from a payment link to an auto-submit URL
(`rel="payment" href="…/submit/auto?user_id=…&url=…"`) in its HTML head, in an RSS/Atom feed
(`link` / `atom:link`, on the feed or an entry), or in an HTTP `Link:` header (RFC 8288).

The page is fetched asynchronously (no thread is held while a site is slow) with one deadline
for the whole fetch, redirects included, a cap on the bytes read and on redirects; every hop's
host must resolve to public addresses only, unless `catalog.discovery_allow_private` is on
(tests, intranets), and the connection goes to the address that was checked (the hub's one
door out, `base.public_net`), so a DNS answer that changes in between (rebinding) gains
nothing.
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from base.config import CatalogSettings, Settings
from base.public_net import Guard, Unresolved
from base.public_net_aiohttp import guarded_connector, unsafe_target
from catalog.errors import CatalogError, FetchFailed, InvalidThing
from catalog.things import parse_submit_url
from catalog.urls import normalise

USER_AGENT = "FlattrHub-discovery/1.0"
ACCEPT = ("text/html, application/xhtml+xml, application/atom+xml, application/rss+xml, "
          "application/xml;q=0.9, */*;q=0.1")
HEADERS = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
REDIRECTS = (301, 302, 303, 307, 308)


class _PaymentLinks(HTMLParser):
    """Collects the href of every `link` (HTML) or `*:link` / `link` (feeds) whose rel includes
    "payment". Entities other than HTML's are left as they are, so a feed's DTD can't expand."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link" and not tag.endswith(":link"):
            return
        values = {name.lower(): value or "" for name, value in attrs}
        if "payment" in values.get("rel", "").lower().split() and values.get("href"):
            self.hrefs.append(values["href"].strip())

    handle_startendtag = handle_starttag


def payment_links(document: str, base_url: str) -> list[str]:
    """The absolute payment link URLs in an HTML page or a feed, in document order."""
    parser = _PaymentLinks()
    parser.feed(document)
    parser.close()
    return [urljoin(base_url, href) for href in parser.hrefs]


async def discover(url: str, config: Settings) -> dict[str, Any] | None:
    """Fetch `url` and return the auto-submit parameters of its payment link (as
    catalog.things.submit_params; "url" defaults to the page's own URL) plus "payment_url" (the
    link) and "page_url" (the URL finally fetched), or None when it has no auto-submit payment
    link. Among several, the one whose `url` is the page's wins, else the first.
    Raises InvalidThing for a malformed or refused URL, FetchFailed when it can't be fetched."""
    settings = config.catalog
    requested = normalise(url)
    guard = Guard.from_config(config, settings.discovery_allow_private)
    page_url, body, link_header = await _fetch(requested, settings, guard)
    links = [link_header] if link_header else []
    links += payment_links(body, page_url)
    found = []
    for link in links:
        try:
            params = parse_submit_url(link, page_url)
        except InvalidThing:
            continue
        if params is not None:
            found.append({**params, "payment_url": link, "page_url": page_url})
    for params in found:
        if params["url"] in (requested, page_url):
            return params
    return found[0] if found else None


def _http_host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidThing("only http and https URLs can be discovered")
    return parts.hostname


async def _fetch(url: str, settings: CatalogSettings,
                 guard: Guard) -> tuple[str, str, str | None]:
    """(final URL, the document's text up to the byte cap, the payment `Link:` header), all
    redirects included within the one deadline."""
    host = _http_host(url)
    connector = guarded_connector(guard, force_close=True, limit=2)
    try:
        async with asyncio.timeout(settings.discovery_timeout_seconds), \
                aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:
            for _ in range(settings.discovery_max_redirects + 1):
                host = _http_host(url)
                async with session.get(url, allow_redirects=False) as reply:
                    if reply.status in REDIRECTS and "Location" in reply.headers:
                        url = urljoin(url, reply.headers["Location"])
                        continue
                    if reply.status >= 400:
                        raise FetchFailed(f"the page answered HTTP {reply.status}")
                    body = await _read(reply, settings.discovery_max_bytes)
                    payment = reply.links.get("payment")
                    link = payment.get("url") if payment is not None else None
                    text = body.decode(reply.charset or "utf-8", errors="replace")
                    return url, text, str(link) if link else None
    except CatalogError:
        raise
    except TimeoutError:
        raise FetchFailed("the page did not answer in time") from None
    except aiohttp.ClientError as exc:
        unsafe = unsafe_target(exc)
        if isinstance(unsafe, Unresolved):
            raise FetchFailed(f"cannot resolve {host}") from None
        if unsafe is not None:
            raise InvalidThing(f"{host} resolves to a private address") from None
        raise FetchFailed("the page could not be fetched") from None
    except (LookupError, ValueError):  # an unknown charset, a URL aiohttp can't use
        raise FetchFailed("the page could not be read") from None
    raise FetchFailed("too many redirects")


async def _read(reply: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body (the payment link is in the head)."""
    body = bytearray()
    async for chunk in reply.content.iter_chunked(8192):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])
