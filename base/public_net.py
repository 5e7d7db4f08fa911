"""The one door out: every request the hub makes on someone's behalf goes through here (SSRF
guard).

The hub makes requests to places users name: Mastodon instances (Mastodon.py's own requests
session and the per-instance OAuth token exchange), site claims, `rel="payment"` discovery and
URL lookups, outbound webhooks. Such a request must not make the server reach what only it can
reach: its host must resolve only to public addresses, not private, loopback, link-local
(which holds the cloud metadata service, 169.254.169.254), shared (100.64.0.0/10), multicast,
reserved or unspecified ones, including IPv4 addresses hidden in IPv6 (`public_address`).

A `Guard` says what may be reached (`allow_private`, the DNS servers to ask, addresses let
through although private) and resolves a host, checking every answer. It is used two ways:

- `guarded_session` (requests, blocking code): a session whose every new connection goes to
  the very address that was checked, so every redirect hop is checked too and a DNS answer
  that changes between the check and the connection (rebinding) gains nothing. It ignores
  HTTP(S)_PROXY from the environment, since a proxy would resolve the name again. TLS still
  verifies the certificate for the host's name.
- `guarded_connector` (aiohttp, in `base.public_net_aiohttp`): a connector that resolves names
  through the guard and checks literal addresses too (aiohttp does not resolve those), so
  every hop is checked as well.

A refused host raises `UnsafeTarget` (`Unresolved` when it has no address at all); its
message is a plain sentence that can be shown to the person who gave the URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from base.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 ranges refused whole: IPv4-compatible (::a.b.c.d, deprecated), local-use NAT64, Teredo
REFUSED_V6 = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b:1::/48", "2001::/32"))
# IPv6 ranges whose last 32 bits are an IPv4 address, checked as that address: IPv4-mapped
# (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64's well-known prefix
EMBEDDING_V6 = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "::ffff:0:0:0/96",
                                                       "64:ff9b::/96"))


class UnsafeTarget(ValueError):
    """The host does not resolve, or resolves to an address the hub must not reach. The
    message is a plain sentence, safe to show."""


class Unresolved(UnsafeTarget):
    """The host does not resolve at all."""


def public_address(address: str | IPAddress) -> bool:
    """Whether `address` (an IP address or its literal) is on the public Internet."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # drop an IPv6 scope id
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in REFUSED_V6):
            return False
        embedded = ip.sixtofour
        if embedded is None and any(ip in network for network in EMBEDDING_V6):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not public_address(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The IP address `host` spells (brackets allowed), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class Guard:
    """What the hub may reach. `allow_private` lets everything through (tests, closed
    networks); `allowed` lets through these networks only although they are not public (a
    service on the hub's own network it must reach). `nameservers` empty: the system's
    resolver; else these servers (on `dns_port`) answer every look-up."""

    allow_private: bool = False
    nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    allowed: tuple[Network, ...] = ()
    dns_timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Settings, allow_private: bool = False) -> Guard:
        """The guard of `network.*`; `allow_private` is the calling feature's own switch."""
        net = config.network
        return cls(allow_private=bool(allow_private),
                   nameservers=net.nameservers,
                   dns_port=net.dns_port,
                   allowed=networks(net.allow_addresses))

    def permits(self, address: str | IPAddress) -> bool:
        """Whether a connection to `address` is allowed."""
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        return (self.allow_private or public_address(ip)
                or any(ip.version == n.version and ip in n for n in self.allowed))

    def check(self, host: str, port: int) -> str:
        """The first address `host` resolves to, if every one of them is permitted; else
        UnsafeTarget (Unresolved when it has none). A host with one private answer among
        public ones is refused: that is how rebinding attacks look. With `allow_private` the
        host is returned as it is, for the connection to resolve."""
        if self.allow_private:
            return host
        return self._checked(host, self._lookup(host, port))[0]

    async def check_async(self, host: str, port: int) -> list[str]:
        """Every address of `host`, if all are permitted (as `check`), without blocking."""
        return self._checked(host, await self._lookup_async(host, port))

    def _checked(self, host: str, addresses: list[str]) -> list[str]:
        if not addresses:
            raise Unresolved(f"the host {host} does not resolve")
        if not all(self.permits(address) for address in addresses):
            raise UnsafeTarget(f"the host {host} has a private, loopback, link-local or "
                               "reserved address; only public addresses can be reached")
        return addresses

    def _lookup(self, host: str, port: int) -> list[str]:
        literal = literal_address(host)
        if literal is not None:
            return [str(literal)]
        if self.nameservers:
            resolver = self._resolver(dns.resolver.Resolver(configure=False))
            return _answers(host, lambda kind: resolver.resolve(host, kind))
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return []
        return [str(info[4][0]) for info in infos]

    async def _lookup_async(self, host: str, port: int) -> list[str]:
        literal = literal_address(host)
        if literal is not None:
            return [str(literal)]
        if self.nameservers:
            resolver = self._resolver(dns.asyncresolver.Resolver(configure=False))
            found = []
            for kind in ("A", "AAAA"):
                try:
                    found += [r.address for r in await resolver.resolve(host, kind)]
                except dns.exception.DNSException:
                    continue
            return found
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return []
        return [str(info[4][0]) for info in infos]

    def _resolver(self, resolver: Any) -> Any:
        resolver.nameservers = list(self.nameservers)
        resolver.port = self.dns_port
        resolver.lifetime = self.dns_timeout
        return resolver


def _answers(host: str, resolve: Any) -> list[str]:
    found = []
    for kind in ("A", "AAAA"):
        try:
            found += [record.address for record in resolve(kind)]
        except dns.exception.DNSException:
            continue
    return found


# --- requests (blocking code) -------------------------------------------------------------

class _Checked:
    """A urllib3 connection that connects only to a checked address of its host."""

    _dns_host: str
    port: int
    guard: Guard

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        self._dns_host = self.guard.check(name, self.port)
        try:
            return super()._new_conn()  # type: ignore[misc]  # the urllib3 class after this one
        finally:
            self._dns_host = name


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go only to addresses `guard` permits, checked at
    each new connection; a refused host raises UnsafeTarget from the request."""

    def __init__(self, guard: Guard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guarded = {"guard": self.guard}
        http = type("GuardedHTTPConnection", (_Checked, HTTPConnection), guarded)
        https = type("GuardedHTTPSConnection", (_Checked, HTTPSConnection), guarded)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https})}


def guarded_session(guard: Guard | None = None) -> requests.Session:
    """A requests session that connects only where `guard` (default: public addresses
    through the system's resolver) permits, else UnsafeTarget, and never through a proxy."""
    guard = guard or Guard()
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", GuardedAdapter(guard))
    session.mount("https://", GuardedAdapter(guard))
    return session


def guarded_post(url: str, guard: Guard | None = None, **kwargs: Any) -> requests.Response:
    """`requests.post` through a `guarded_session`."""
    with guarded_session(guard) as session:
        return session.post(url, **kwargs)


def refusal(exc: BaseException) -> UnsafeTarget | None:
    """The UnsafeTarget behind `exc` (a client library may wrap it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnsafeTarget):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    """`values` as IP networks (an address is a network of one)."""
    return tuple(ipaddress.ip_network(str(v), strict=False) for v in values)
