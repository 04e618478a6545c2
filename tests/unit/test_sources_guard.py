"""The address policy of ingest (sources/guard.py) and the network backend that applies it
(sources/guarded.py): which addresses are refused and why, and that the connection goes to
the address that was checked, resolved once (a DNS answer that changes between a check and
the connect cannot slip through)."""

from __future__ import annotations

import asyncio
import socket

import httpcore
import pytest

from lookalike.sources.guard import AddressPolicy, AddressRefused, refusal
from lookalike.sources.guarded import GuardedBackend


@pytest.mark.parametrize("address, kind", [
    ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700::1111", None),
    ("2002:808:808::", None),  # 6to4 of a public address
    ("127.0.0.1", "a loopback address"), ("127.8.9.10", "a loopback address"),
    ("::1", "a loopback address"), ("10.0.0.5", "a private address"),
    ("172.16.3.4", "a private address"), ("192.168.1.1", "a private address"),
    ("fd00::1", "a private address"), ("169.254.169.254", "a link-local address"),
    ("fe80::1", "a link-local address"), ("fe80::1%1", "a link-local address"),
    ("224.0.0.1", "a multicast address"), ("ff02::1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("240.0.0.1", "a private address"), ("100.64.0.1", "not a public address"),
    ("fec0::1", "a site-local address"), ("::7f00:1", "a reserved address"),
    ("192.0.2.1", "a private address"),  # documentation (TEST-NET-1)
    ("::ffff:127.0.0.1", "the IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:10.1.2.3", "the IPv4-mapped form of 10.1.2.3, a private address"),
    ("2002:7f00:1::", "the 6to4 form of 127.0.0.1, a loopback address"),
    ("64:ff9b::a00:5", "the NAT64 form of 10.0.0.5, a private address"),
    ("not-an-ip", "not an IP address"),
])
def test_address_kinds(address, kind):
    assert AddressPolicy().problem(address) == kind


def test_allowed_networks():
    policy = AddressPolicy.from_strings(["127.0.0.1/32", "10.20.0.0/16"])
    assert policy.problem("127.0.0.1") is None and policy.problem("::ffff:127.0.0.1") is None
    assert policy.problem("10.20.9.9") is None
    assert policy.problem("127.0.0.2") == "a loopback address"
    assert policy.problem("10.21.0.1") == "a private address"
    with pytest.raises(ValueError):
        AddressPolicy.from_strings(["10.0.0.0/33"])


def test_refusal_messages():
    hint = "pass --allow-private to fetch it"
    assert refusal("10.0.0.5", "10.0.0.5", "a private address") == (
        f"refused: 10.0.0.5 is a private address; {hint}")
    assert refusal("::1", "::1", "a loopback address") == (
        f"refused: ::1 is a loopback address; {hint}")
    assert refusal("intranet.test", "10.0.0.5", "a private address") == (
        f"refused: intranet.test resolves to 10.0.0.5, a private address; {hint}")


class Recorder(httpcore.AsyncNetworkBackend):
    """Records where connections go; fails for the addresses in `failing`."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.connected: list[tuple[str, int]] = []
        self.failing = failing

    async def connect_tcp(self, host, port, timeout=None, local_address=None,
                          socket_options=None):
        self.connected.append((host, port))
        if host in self.failing:
            raise httpcore.ConnectError("connection refused")
        return f"stream to {host}"

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


def fake_dns(*answers: list[str]):
    """A resolver giving the next answer at each call (a rebinding DNS server)."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    return resolve, calls


def test_the_checked_address_is_the_one_connected_to():
    resolver, calls = fake_dns(["93.184.216.34"], ["127.0.0.1"])
    inner = Recorder()
    backend = GuardedBackend(AddressPolicy(), resolver, inner)
    stream = asyncio.run(backend.connect_tcp("rebind.test", 80, timeout=1.0))
    assert stream == "stream to 93.184.216.34" and calls == ["rebind.test"]
    assert inner.connected == [("93.184.216.34", 80)]  # the address, not the name again
    with pytest.raises(AddressRefused) as caught:  # the next answer is loopback
        asyncio.run(backend.connect_tcp("rebind.test", 80, timeout=1.0))
    assert caught.value.reason.startswith("refused: rebind.test resolves to 127.0.0.1, a "
                                          "loopback address")
    assert inner.connected == [("93.184.216.34", 80)]


def test_only_public_addresses_of_a_mixed_answer_are_tried():
    resolver, _ = fake_dns(["127.0.0.1", "10.0.0.1", "93.184.216.34", "93.184.216.35"])
    inner = Recorder(failing=("93.184.216.34",))
    backend = GuardedBackend(AddressPolicy(), resolver, inner)
    assert asyncio.run(backend.connect_tcp("mixed.test", 443)) == "stream to 93.184.216.35"
    assert inner.connected == [("93.184.216.34", 443), ("93.184.216.35", 443)]


def test_resolution_failures_are_connect_errors():
    async def unknown(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def slow(host, port):
        await asyncio.sleep(5)
        return ["93.184.216.34"]

    with pytest.raises(httpcore.ConnectError, match="cannot resolve nowhere.test: Name or"):
        asyncio.run(GuardedBackend(AddressPolicy(), unknown, Recorder()).connect_tcp(
            "nowhere.test", 80))
    with pytest.raises(httpcore.ConnectTimeout, match="took more than 0.05 s"):
        asyncio.run(GuardedBackend(AddressPolicy(), slow, Recorder()).connect_tcp(
            "slow.test", 80, timeout=0.05))
    with pytest.raises(httpcore.ConnectError, match="port 99999 is out of range"):
        asyncio.run(GuardedBackend(AddressPolicy(), slow, Recorder()).connect_tcp(
            "slow.test", 99999))
