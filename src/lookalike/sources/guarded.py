"""httpcore's network backend that applies guard.AddressPolicy where connections are made
(imported only when downloading: it needs httpcore)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import httpcore

from .guard import AddressPolicy, AddressRefused, refusal, resolve

Resolver = Callable[[str, int], Awaitable[list[str]]]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking each host before it connects.

    Only addresses the policy allows are tried; if it allows none, AddressRefused.
    `resolver` and `inner` are parameters for the tests (a fake DNS, a recording backend).
    """

    def __init__(self, policy: AddressPolicy, resolver: Resolver = resolve,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def allowed_addresses(self, host: str, port: int,
                                timeout: float | None = None) -> list[str]:
        """The addresses of `host` a connection may use, or AddressRefused."""
        if not 0 < port < 65536:
            raise httpcore.ConnectError(f"port {port} is out of range (1-65535)")
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took more than {timeout:g} s"
                                          ) from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}"
                                        ) from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        problems = [self.policy.problem(a) for a in addresses]
        allowed = [a for a, p in zip(addresses, problems) if p is None]
        if not allowed:
            raise AddressRefused(refusal(host, addresses[0], problems[0] or ""))
        return allowed

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable | None = None) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.allowed_addresses(host, port, timeout):
            try:  # the checked address itself, not the name again: no second DNS answer
                return await self.inner.connect_tcp(address, port, timeout=timeout,
                                                    local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # allowed_addresses returns at least one address
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not fetched while refusing private "
                                    "addresses")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(limits, backend: GuardedBackend):
    """An httpx transport whose connections go through GuardedBackend.

    httpx does not take a network backend, so its connection pool is rebuilt with one
    (the same settings, httpx's own SSL context); TLS still verifies the host name.
    """
    import httpx

    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend)
    return transport
