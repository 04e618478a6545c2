"""Exclusive file locks held across processes: the one place lookalike takes a lock (the
index's writer lock, the quarantine folder's, the model cache's). POSIX uses flock, Windows
msvcrt's byte-range lock on the first byte, so `import lookalike` works on both (Windows is
not covered by the test suite, which runs on Linux).

A lock belongs to its open descriptor: closing the descriptor releases it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

if os.name == "nt":  # pragma: no cover - the suite runs on Linux
    import msvcrt

    def _lock(fd: int, wait: bool) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError("locked by another process") from None
else:
    import fcntl

    def _lock(fd: int, wait: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))

NOTE_AT = 8  # where a note (the holder's pid) is written, past the byte Windows locks


def try_lock(path: str | os.PathLike) -> int | None:
    """The descriptor of `path` (created if needed) holding its lock, or None at once when
    another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, wait=False)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Wait for the lock on `path` (created, with its folder, if needed) and hold it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, wait=True)
        yield
    finally:
        os.close(fd)


def write_note(fd: int, text: str) -> None:
    """Leave `text` (who holds the lock) in the lock file for whoever finds it busy."""
    os.lseek(fd, NOTE_AT, os.SEEK_SET)
    os.write(fd, text.encode().ljust(32))


def read_note(path: str | os.PathLike) -> str:
    """The note the lock's holder left, or "" (never blocks)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(NOTE_AT)
            return handle.read(32).decode(errors="replace").strip()
    except OSError:
        return ""
