"""How paths are stored in the index and shown to people."""

from __future__ import annotations

import os


def to_db_path(path: str) -> str | bytes:
    """Paths are stored as text; a name that is not valid UTF-8 keeps its raw bytes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def from_db_path(value: str | bytes) -> str:
    return value if isinstance(value, str) else os.fsdecode(value)


def display_path(path: str) -> str:
    """A printable form of a path (undecodable bytes shown as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
