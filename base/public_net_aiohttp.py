"""The one door out (`base.public_net`) for aiohttp clients: a connector that resolves names
through a `Guard` and checks literal addresses too, so every hop of a request is checked. Apart
from `base.public_net` so that what needs only requests does not load aiohttp."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from base.public_net import Guard, UnsafeTarget, literal_address, refusal


class _Refused(OSError):
    """Raised inside aiohttp's connector, which wraps OSErrors in ClientConnectorError."""

    def __init__(self, refused: UnsafeTarget) -> None:
        super().__init__(str(refused))
        self.refused = refused


class GuardedResolver(AbstractResolver):
    """aiohttp's name resolution through a Guard: only permitted addresses come back."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            addresses = await self._guard.check_async(host, port)
        except UnsafeTarget as exc:
            raise _Refused(exc) from None
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)
                for address in addresses]

    async def close(self) -> None:
        return None


class _GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that checks literal addresses too (aiohttp resolves names only)."""

    def __init__(self, guard: Guard, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(guard), use_dns_cache=False, **kwargs)
        self._guard = guard

    async def _resolve_host(self, host: str, port: int,
                            traces: Any = None) -> list[ResolveResult]:
        literal = literal_address(host)
        if literal is not None and not self._guard.permits(literal):
            raise _Refused(UnsafeTarget(f"the address {literal} is not a public one; only "
                                        "public addresses can be reached"))
        return await super()._resolve_host(host, port, traces)


def guarded_connector(guard: Guard, **kwargs: Any) -> aiohttp.TCPConnector:
    """An aiohttp connector that connects only where `guard` permits, checked for every
    connection (so every redirect hop); a refused host raises ClientConnectorError whose
    `unsafe_target` gives the UnsafeTarget."""
    return _GuardedConnector(guard, **kwargs)


def unsafe_target(exc: BaseException) -> UnsafeTarget | None:
    """The UnsafeTarget behind an aiohttp client error raised by a guarded connector."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, _Refused):
        return exc.os_error.refused
    return refusal(exc)
