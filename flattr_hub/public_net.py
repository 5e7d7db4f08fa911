"""Fetching from the Internet without reaching into the hub's own network (SSRF guard).

The hub makes requests to URLs that users give it (outbound webhook endpoints, pages to
discover). Such a URL must not make the server reach what only it can reach: its host must
resolve only to public addresses, not private, loopback, link-local (which holds the cloud
metadata service, 169.254.169.254), shared (100.64.0.0/10), multicast, reserved or
unspecified ones, including IPv4 addresses hidden in IPv6 (mapped, 6to4, NAT64).

`check_host` resolves a host and checks every answer. `pinned_session` makes a requests
session whose connections go to the very address that was checked, for each new connection
(so every redirect hop is checked too): a DNS answer that changes between the check and the
connection (rebinding) gains nothing. It ignores HTTP(S)_PROXY from the environment, since a
proxy would resolve the name again. TLS still verifies the certificate for the host's name.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(ValueError):
    """The host does not resolve, or resolves to an address the hub must not reach."""


class Unresolved(UnsafeTarget):
    """The host does not resolve at all."""


def public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` (an IP address or its literal) is on the public Internet."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # drop an IPv6 scope id
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not public_address(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def check_host(host: str, port: int) -> str:
    """The first address `host` resolves to, if every one of them is public; else UnsafeTarget
    (Unresolved when it has none). A host with one private answer among public ones is refused:
    that is how rebinding attacks look."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolved(f"the host {host} does not resolve") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise Unresolved(f"the host {host} does not resolve")
    if not all(public_address(address) for address in addresses):
        raise UnsafeTarget(f"the host {host} has a private, loopback, link-local or reserved "
                           "address; only public addresses can be reached")
    return addresses[0]


class _Checked:
    """A urllib3 connection that connects only to a checked address of its host."""

    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        self._dns_host = check_host(name, self.port)
        try:
            return super()._new_conn()  # the urllib3 connection class after this one
        finally:
            self._dns_host = name


class _CheckedHTTPConnection(_Checked, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_Checked, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests adapter whose connections go only to checked, public addresses; a refused
    host raises UnsafeTarget from the request."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool,
                                                   "https": _CheckedHTTPSPool}


def pinned_session() -> requests.Session:
    """A requests session that connects to public addresses only (else UnsafeTarget) and never
    through a proxy."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", PinnedAdapter())
    session.mount("https://", PinnedAdapter())
    return session


def guarded_post(url: str, **kwargs: Any) -> requests.Response:
    """`requests.post` through a `pinned_session`."""
    with pinned_session() as session:
        return session.post(url, **kwargs)
