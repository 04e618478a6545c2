"""Which addresses a download may connect to: by default public ones only.

A list of URLs supplied by someone else must not make ingest read internal services
(http://10.0.0.5/admin, a cloud metadata endpoint at 169.254.169.254, a redirect to
http://127.0.0.1:6379/). The check runs where the connection is made: `GuardedBackend`
resolves the host itself, refuses every address that is not public, and connects to an
address it has checked, so a DNS answer that changes between a check and the connect
(rebinding) cannot slip through. Every redirect hop opens its connection the same way.
IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, 6to4, Teredo, NAT64) are
judged by that IPv4 address as well. This module is the policy (no network library);
guarded.py is the backend that applies it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HINT = "pass --allow-private to fetch it"
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """A connection to an address the policy refuses; `reason` is the row's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def address_kind(ip: Address) -> str | None:
    """What makes `ip` not a public address ("a private address"), or None if it is one."""
    checks = (("is_unspecified", "an unspecified address"), ("is_loopback", "a loopback address"),
              ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
              ("is_private", "a private address"), ("is_site_local", "a site-local address"),
              ("is_reserved", "a reserved address"))
    for attribute, kind in checks:
        if getattr(ip, attribute, False):
            return kind
    if not ip.is_global:  # e.g. 100.64.0.0/10, shared by carrier-grade NAT
        return "not a public address"
    return None


def embedded_ipv4(ip: Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form, or None."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, but for the networks in `allowed` (e.g. an internal CDN)."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressPolicy:
        """From CIDR strings ("10.20.0.0/16", "127.0.0.1"); ValueError for a bad one."""
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks))

    def problem(self, address: str) -> str | None:
        """What makes `address` refused ("a private address", "the IPv4-mapped form of
        127.0.0.1, a loopback address"), or None if a connection to it is allowed."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
        inner = embedded_ipv4(ip)
        if inner is not None:
            form, ipv4 = inner
            if self._allows(ipv4):
                return None
            inner_kind = address_kind(ipv4)
            if inner_kind is not None:
                return f"the {form} form of {ipv4}, {inner_kind}"
        if self._allows(ip):
            return None
        return address_kind(ip)

    def _allows(self, ip: Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)


def refusal(host: str, address: str, problem: str) -> str:
    """The row's reason: which address was refused, why, and how to allow it."""
    try:
        literal = ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address)
    except ValueError:
        literal = False
    if literal:
        return f"refused: {address} is {problem}; {HINT}"
    return f"refused: {host} resolves to {address}, {problem}; {HINT}"


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the order the system prefers them."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
