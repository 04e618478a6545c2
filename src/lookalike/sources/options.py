"""The options of a download, each checked against its range (BOUNDS, which the CLI's
flags use too), so a bad value is an error before any work starts."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from ..errors import BoundError
from .guard import AddressPolicy

# The range of each numeric option: checked by DownloadOptions and by the CLI's flags. Wide
# enough for any real use, narrow enough that a typo (a concurrency of 100000, a timeout of
# -1, a NaN) is an error at the start rather than a strange failure an hour later.
BOUNDS: dict[str, tuple[float, float]] = {
    "concurrency": (1, 1024),  # sockets and file descriptors in flight
    "per_host": (1, 1024),
    "timeout": (0.01, 3600.0),
    "total_timeout": (0.01, 86400.0),
    "retries": (0, 100),
    "backoff": (0.0, 3600.0),
    "max_backoff": (0.0, 86400.0),
    "max_retry_after": (0.0, 86400.0),  # a day: past that, a re-run is the better retry
    "max_bytes": (1, 1 << 40),  # 1 TiB
    "max_redirects": (0, 50),
}


@dataclass(frozen=True)
class DownloadOptions:
    """How to download; BoundError for a value outside BOUNDS."""

    concurrency: int = 32  # requests in flight in all
    per_host: int = 8  # ... and to one host (the host of the URL, before redirects)
    timeout: float = 30.0  # seconds to connect, and without a byte while reading
    total_timeout: float = 300.0  # seconds for one attempt in all (a server that trickles)
    retries: int = 3  # further attempts after a failure worth retrying
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    max_backoff: float = 30.0
    # A Retry-After up to this is waited for; a longer one fails the row (a re-run retries
    # it), rather than asking again sooner than the server said.
    max_retry_after: float = 120.0
    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "lookalike-ingest/0.1"
    allow_private: bool = False  # also fetch loopback, private, link-local, ... addresses
    allow_networks: tuple[str, ...] = ()  # CIDR networks allowed even though not public

    def __post_init__(self) -> None:
        for option in fields(self):
            if option.name in BOUNDS:
                check_bound(option.name, getattr(self, option.name), option.type == "int")
        if not isinstance(self.user_agent, str) or not self.user_agent.isprintable():
            raise BoundError(f"user_agent must be printable text, not {self.user_agent!r}")
        if isinstance(self.allow_networks, str):
            raise BoundError("allow_networks is a tuple of networks, not one string")
        self.policy()  # a bad network is an error now, not at the first connection

    def policy(self) -> AddressPolicy:
        try:
            return AddressPolicy.from_strings(self.allow_networks)
        except ValueError as exc:
            raise BoundError(f"not a network: {exc}") from None


def check_bound(name: str, value: Any, integer: bool,
                bounds: tuple[float, float] | None = None) -> None:
    """BoundError unless `value` is a number (an integer where `integer`) within `bounds`
    (default: BOUNDS[name])."""
    low, high = bounds or BOUNDS[name]
    kind = "an integer" if integer else "a number"
    wrong_type = isinstance(value, bool) or not isinstance(
        value, numbers.Integral if integer else numbers.Real)
    if wrong_type or not math.isfinite(value) or not low <= value <= high:
        shown = [f"{int(b):,}" if integer else f"{b:,g}" for b in (low, high)]
        raise BoundError(f"{name} must be {kind} from {shown[0]} to {shown[1]}, "
                         f"not {value!r}")
