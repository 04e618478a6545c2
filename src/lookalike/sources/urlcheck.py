"""Is a URL one the downloader can fetch? A reason a person understands, or None.

Checked when a source is read, so that a malformed URL becomes an "invalid" row with a
reason instead of an error deep in the HTTP client (a port over 65535 used to surface as
"ExceptionGroup: unhandled errors in a TaskGroup"). The host must be a name DNS can hold or
an IP literal; whether its address may be fetched is decided later, after resolution
(guard.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCHEMES = ("http", "https")
MAX_URL = 8192  # longer URLs are refused by most servers; a longer cell is a broken row
MAX_HOST = 253  # DNS: a name of at most 253 characters, labels of at most 63
MAX_LABEL = 63
# C0 controls, DEL, C1 controls and lone surrogates: never part of a URL someone meant.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ASCII_LABEL = re.compile(r"^[a-z0-9_-]+$")  # "_" is not LDH but real hosts have it


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched, or None."""
    if not url:
        return "no URL"
    if len(url) > MAX_URL:
        return f"URL too long ({len(url):,} characters > {MAX_URL:,})"
    control = _CONTROL.search(url)
    if control:
        return (f"malformed URL: control character U+{ord(control.group()):04X} at "
                f"position {control.start() + 1}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 literal
        return f"malformed URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"scheme not allowed: {shown} (only http and https)"
    if not parts.hostname:
        return "malformed URL: no host"
    problem = _port_problem(parts.netloc)
    if problem:
        return f"malformed URL: {problem}"
    if parts.netloc.rpartition("@")[2].startswith("["):
        return None  # an IPv6 literal, which urlsplit has already checked
    problem = host_problem(parts.hostname)
    return f"malformed URL: {problem}" if problem else None


def _port_problem(netloc: str) -> str | None:
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        after = host_port.partition("]")[2]
        port = after.removeprefix(":")
    else:
        port = host_port.partition(":")[2]
    if not port:
        return None  # no port, or "host:" (the scheme's default)
    if not (port.isascii() and port.isdigit()):
        return f"port {port!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"port {int(port)} is out of range (1-65535)"
    return None


def host_problem(host: str) -> str | None:
    """Why `host` (lower case, no brackets) is not a host name, or None."""
    name = host.removesuffix(".")  # a trailing dot: fully qualified
    if len(name) > MAX_HOST:
        return f"host name too long ({len(name)} characters > {MAX_HOST})"
    if not name.isascii():
        return _idna_problem(name)
    for label in name.split("."):
        if not label:
            return f"empty label in host name {host!r}"
        if len(label) > MAX_LABEL:
            return f"host name label longer than {MAX_LABEL} characters"
        if not _ASCII_LABEL.match(label):
            bad = next(c for c in label if not (c.isalnum() or c in "_-"))
            return f"character {bad!r} in host name {host!r}"
        if label.startswith("xn--") and _idna_problem(label, decode=True):
            return f"{label!r} is not a valid internationalised label (punycode)"
    return None


def _idna_problem(name: str, decode: bool = False) -> str | None:
    """The host name as the HTTP client will encode it (IDNA 2008, as httpx does)."""
    try:
        import idna  # a dependency of httpx
    except ImportError:  # pragma: no cover - httpx always brings it
        try:
            name.encode("idna") if not decode else name.encode("ascii").decode("idna")
        except UnicodeError as exc:
            return f"host name {name!r} is not a valid internationalised name ({exc})"
        return None
    try:
        idna.decode(name) if decode else idna.encode(name)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        return f"host name {name!r} is not a valid internationalised name ({exc})"
    return None
