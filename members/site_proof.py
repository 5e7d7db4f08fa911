"""Looking for the proof that a web site belongs to a member: the token in a
`<meta name="flattr:verification" content="…">` tag on the front page, in the file
`/.well-known/flattr.txt`, or in a DNS TXT record `flattr-verification=…`.

Fetching a stranger's site from the hub is done with limits: a timeout per request, a cap on
the bytes read, at most `MAX_REDIRECTS` redirects (each one checked again), and no private,
loopback or otherwise non-public address unless `web.site_claim_allow_private` is set: the
connections go through the hub's one public-address guard (`base.public_net`), host
names resolved by the same servers as the TXT look-up, to the address that was checked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.resolver
from yarl import URL

from base.config import Settings
from base.public_net import Guard, Network, Unresolved, literal_address, networks
from base.public_net_aiohttp import guarded_connector, unsafe_target

MAX_REDIRECTS = 3
META_NAME = "flattr:verification"
WELL_KNOWN = "/.well-known/flattr.txt"
TXT_PREFIX = "flattr-verification="
USER_AGENT = "FlattrHub-SiteVerification/1.0"


class Refused(Exception):
    """A fetch the hub will not make or could not complete; the message is safe to show."""


@dataclass(frozen=True)
class ProofSettings:
    scheme: str
    port: int
    nameservers: tuple[str, ...]
    dns_port: int
    allow_private: bool
    timeout: float
    max_bytes: int
    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_config(cls, config: Settings) -> ProofSettings:
        web = config.web
        return cls(web.site_claim_scheme, web.site_claim_port,
                   web.site_claim_nameservers,
                   web.site_claim_dns_port, web.site_claim_allow_private,
                   web.site_claim_timeout_seconds, web.site_claim_max_bytes,
                   networks(config.network.allow_addresses))

    def guard(self) -> Guard:
        """The public-address guard of these fetches (host names resolved by the servers
        the TXT look-up asks)."""
        return Guard(self.allow_private, self.nameservers, self.dns_port, self.allowed,
                     self.timeout)


@dataclass(frozen=True)
class Outcome:
    method: str | None  # "meta", "well-known" or "dns" when the proof was found
    reasons: list[str]  # why each method failed, when none succeeded


async def find_proof(settings: ProofSettings, host: str, token: str) -> Outcome:
    """Look for `token` on `host` by each method in turn; the first one found wins."""
    resolver = dns_resolver(settings)
    reasons = []
    checks = (("meta", "front page", _meta_tag), ("well-known", WELL_KNOWN, _well_known))
    connector = guarded_connector(settings.guard(), force_close=True, limit=2)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT},
                                     timeout=aiohttp.ClientTimeout(total=settings.timeout),
                                     ) as session:
        for method, where, check in checks:
            try:
                if await check(session, settings, host, token):
                    return Outcome(method, [])
                reasons.append(f"{where}: the token was not found")
            except Refused as exc:
                reasons.append(f"{where}: {exc}")
    try:
        if await _txt_record(resolver, host, token):
            return Outcome("dns", [])
        reasons.append(f"DNS: no TXT record {TXT_PREFIX}<your token> on {host}")
    except Refused as exc:
        reasons.append(f"DNS: {exc}")
    return Outcome(None, reasons)


async def _meta_tag(session: aiohttp.ClientSession, settings: ProofSettings, host: str,
                    token: str) -> bool:
    finder = MetaFinder()
    finder.feed(await fetch_text(session, settings, page_url(settings, host, "/")))
    return any(secrets.compare_digest(found, token) for found in finder.contents)


async def _well_known(session: aiohttp.ClientSession, settings: ProofSettings, host: str,
                      token: str) -> bool:
    text = await fetch_text(session, settings, page_url(settings, host, WELL_KNOWN))
    return any(secrets.compare_digest(word, token) for word in text.split())


async def _txt_record(resolver: dns.asyncresolver.Resolver, host: str, token: str) -> bool:
    expected = TXT_PREFIX + token
    for record in await lookup(resolver, host, "TXT"):
        text = b"".join(record.strings).decode("utf-8", "replace").strip()
        if secrets.compare_digest(text.encode(), expected.encode()):
            return True
    return False


def page_url(settings: ProofSettings, host: str, path: str) -> URL:
    return URL.build(scheme=settings.scheme, host=host, port=settings.port or None, path=path)


async def fetch_text(session: aiohttp.ClientSession, settings: ProofSettings, url: URL) -> str:
    """The text at `url` (at most `max_bytes` of it), following a few checked redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            async with session.get(url, allow_redirects=False) as reply:
                if reply.status in (301, 302, 303, 307, 308) and "Location" in reply.headers:
                    url = url.join(URL(reply.headers["Location"]))
                    if url.scheme not in ("http", "https"):
                        raise Refused("redirected to something that is not a web page")
                    continue
                if reply.status != 200:
                    raise Refused(f"the site answered HTTP {reply.status}")
                body = bytearray()
                async for chunk in reply.content.iter_chunked(8192):
                    body += chunk
                    if len(body) >= settings.max_bytes:
                        break
                return _decode(bytes(body[:settings.max_bytes]), reply.charset)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Refused(_failure(exc, url.host or "")) from None
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _failure(exc: BaseException, host: str) -> str:
    if isinstance(exc, TimeoutError):
        return "the site did not answer in time"
    unsafe = unsafe_target(exc)
    if unsafe is None:
        return "the site could not be reached"
    if literal_address(host) is not None:
        return "that address is not a public one"
    if isinstance(unsafe, Unresolved):
        return f"{host} has no address"
    return f"{host} resolves to an address that is not a public one"


def dns_resolver(settings: ProofSettings) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
    if settings.nameservers:
        resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.dns_port
    resolver.lifetime = settings.timeout
    return resolver


async def lookup(resolver: dns.asyncresolver.Resolver, host: str, kind: str) -> list[Any]:
    try:
        return list(await resolver.resolve(host, kind))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise Refused("the DNS look-up timed out") from None
    except dns.exception.DNSException:
        raise Refused("the DNS look-up failed") from None


class MetaFinder(HTMLParser):
    """Collects the `content` of every `<meta name="flattr:verification">`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.contents: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {name.lower(): value or "" for name, value in attrs}
        if values.get("name", "").strip().lower() == META_NAME:
            self.contents.append(values.get("content", "").strip())
