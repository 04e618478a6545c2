"""Checks of the library's public arguments, shared by every entry point (CLI, HTTP, Python)."""

from __future__ import annotations

import os
from typing import Iterable

from .errors import BoundError

MAX_WORKERS = 512  # processes: far above any machine this runs on, low enough to be a typo
MAX_LIMIT = 10_000  # matches listed per picture


def as_paths(value: str | os.PathLike | Iterable[str | os.PathLike], name: str) -> list[str]:
    """One path or several, as a list of strings: a bare string is one path, never the
    characters of one (a scan of "photos" must not scan "p", "h", ... and "/")."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return [os.fsdecode(value)]
    try:
        items = list(value)
    except TypeError:
        raise BoundError(f"{name}: give a path or a list of paths, not "
                         f"{type(value).__name__}") from None
    for item in items:
        if not isinstance(item, (str, bytes, os.PathLike)):
            raise BoundError(f"{name}: {item!r} is not a path")
    return [os.fsdecode(item) for item in items]


def in_range(value: float | None, low: float, high: float, name: str) -> None:
    """Refuse a number outside [low, high] (None means 'the default' and passes)."""
    if value is not None and not low <= value <= high:
        raise BoundError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
