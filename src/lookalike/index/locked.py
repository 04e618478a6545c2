"""The writer-lock check the Index mixins share (index/store.py holds the lock)."""

from __future__ import annotations

from ..errors import IndexError_


class WriterLocked:
    _lock_fd: int | None

    def _need_lock(self, what: str) -> None:
        if self._lock_fd is None:
            raise IndexError_(f"{what} needs the writer lock (Index.acquire())")
