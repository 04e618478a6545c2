"""What a person decided, stored in the index: pairs of contents that are (not) duplicates
(`lookalike decide`, the web UI's "not a duplicate"), and per-file marks, keep or quarantine
(the web UI's triage), which a plan follows over the keep rules (actions/plan.py).

A mixin of Index (index/store.py): the same connection, transactions and writer lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import IndexError_
from .locked import WriterLocked
from .paths import from_db_path, to_db_path

MARKS = ("keep", "quarantine")
PAIR_DECISIONS = ("not-duplicate", "duplicate")


@dataclass(frozen=True)
class FileMark:
    file_id: int
    mark: str  # keep, quarantine
    created: float


@dataclass(frozen=True)
class PairDecision:
    content_a: int  # the smaller content id
    content_b: int
    decision: str  # not-duplicate, duplicate
    created: float


class Decisions(WriterLocked):
    """Index methods for decisions; every write needs the writer lock (Index.acquire())."""

    conn: sqlite3.Connection
    path: object

    def record_decision(self, content_a: int, content_b: int, decision: str) -> None:
        """Remember a person's decision on two contents (replacing an earlier one)."""
        if content_a == content_b:
            raise IndexError_("a decision needs two different contents (these files are "
                              "byte copies of each other)")
        self.record_decisions([(content_a, content_b)], decision)

    def record_decisions(self, pairs: Iterable[tuple[int, int]], decision: str) -> int:
        """The same decision on many content pairs, in one transaction; pairs of one content
        (byte copies) are left out. Returns how many pairs were recorded."""
        self._need_lock("recording a decision")
        if decision not in PAIR_DECISIONS:
            raise IndexError_(f"unknown decision {decision!r}; one of "
                              f"{', '.join(PAIR_DECISIONS)}")
        rows = sorted({(min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs if a != b})
        now = time.time()
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)",
                             [(a, b, decision, now) for a, b in rows])
        return len(rows)

    def forget_decisions(self, pairs: Iterable[tuple[int, int]]) -> int:
        """Drop the decisions on these content pairs; returns how many there were."""
        self._need_lock("forgetting a decision")
        rows = [(min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs]
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM decisions WHERE content_a=? AND content_b=?", rows)
            return conn.total_changes - before

    def decided_pairs(self, decision: str = "not-duplicate") -> set[tuple[int, int]]:
        """(smaller, larger) content ids of the pairs marked with `decision`."""
        return {(d.content_a, d.content_b) for d in self.pair_decisions()
                if d.decision == decision}

    def pair_decisions(self) -> list[PairDecision]:
        """Every pair decision, newest first."""
        rows = self._read("SELECT content_a, content_b, decision, created FROM decisions "
                          "ORDER BY created DESC, content_a, content_b")
        return [PairDecision(int(a), int(b), d, c) for a, b, d, c in rows]

    def set_marks(self, file_ids: Sequence[int], mark: str | None) -> int:
        """Mark these live files keep or quarantine (None: clear their marks); each mark
        holds the content the file has now. Returns how many files were marked."""
        self._need_lock("marking a file")
        if mark is not None and mark not in MARKS:
            raise IndexError_(f"unknown mark {mark!r}; one of {', '.join(MARKS)}")
        ids = [int(i) for i in file_ids]
        now = time.time()
        with self.transaction() as conn:
            before = conn.total_changes
            if mark is None:
                conn.executemany("DELETE FROM marks WHERE file_id=?", [(i,) for i in ids])
            else:
                conn.executemany(
                    "INSERT OR REPLACE INTO marks SELECT id, content_id, ?, ? FROM files "
                    "WHERE id=? AND status='ok' AND content_id IS NOT NULL",
                    [(mark, now, i) for i in ids])
            return conn.total_changes - before

    def marks(self, file_ids: Iterable[int] | None = None) -> dict[int, FileMark]:
        """file id -> its mark, for the live files (of `file_ids`, else all) whose bytes are
        still those they held when marked."""
        sql = ("SELECT m.file_id, m.mark, m.created FROM marks m JOIN files f ON f.id = "
               "m.file_id WHERE f.status='ok' AND f.content_id = m.content_id")
        if file_ids is None:
            return {r[0]: FileMark(*r) for r in self._read(sql + " ORDER BY m.created DESC")}
        ids = sorted({int(i) for i in file_ids})
        out: dict[int, FileMark] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            out.update((r[0], FileMark(*r)) for r in self._read(
                sql + f" AND m.file_id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # an older index opened read-only: not migrated
                return []
            raise IndexError_(f"cannot read decisions from {self.path}: {exc}") from None

    def files_of_contents(self, content_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """content id -> (id, path) of its first live file, for those that have one."""
        ids = sorted({int(c) for c in content_ids})
        out: dict[int, tuple[int, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for content_id, file_id, path in self._read(
                    "SELECT content_id, id, path FROM files WHERE status='ok' AND content_id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY id DESC", chunk):
                out[content_id] = (file_id, from_db_path(path))  # the smallest id last: wins
        return out

    def files_moved(self, paths: Iterable[str]) -> int:
        """Files an apply run moved away (quarantined, deleted) leave the live set: status
        'moved', so groups, plans and the web UI no longer show them. Returns how many."""
        self._need_lock("recording moved files")
        with self.transaction() as conn:
            return conn.executemany("UPDATE files SET status='moved' WHERE path=? AND "
                                    "status='ok'", [(to_db_path(p),) for p in paths]).rowcount

    def files_restored(self, paths: Iterable[str]) -> int:
        """Files an undo put back are live again, if they are the bytes the index holds
        (same size and modification time as when scanned). Returns how many."""
        self._need_lock("recording restored files")
        count = 0
        with self.transaction() as conn:
            for path in paths:
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                count += conn.execute(
                    "UPDATE files SET status='ok' WHERE path=? AND status IN ('moved', "
                    "'vanished') AND size=? AND mtime_ns=?",
                    (to_db_path(path), stat.st_size, stat.st_mtime_ns)).rowcount
        return count
