"""What the routes of the service share: one index connection per request, caches of values
computed from the index (valid until anything is committed to it), and the few checks every
route makes on the ids and filters a client sends."""

from __future__ import annotations

import asyncio
import re
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
from fastapi.concurrency import run_in_threadpool

from ..index.store import ChangeCounter, FileRecord, Index, open_index
from ..report.health import HealthReport, HealthThresholds, flag, health, health_table
from ..search.evidence import Evidence, groups_with_evidence
from ..search.query import PreparedQuery
from ..sources.remote import file_stat
from ..types import Group
from . import models
from .limits import Refused

T = TypeVar("T")
CACHE_ENTRIES = 8  # (method, filter) combinations kept per cache


@contextmanager
def opened(index_path: Path) -> Iterator[Index]:
    """One connection per request: SQLite in WAL mode reads concurrently, and a connection
    never crosses threads."""
    index = open_index(index_path)
    try:
        yield index
    finally:
        index.close()


@contextmanager
def writing(index_path: Path) -> Iterator[Index]:
    """A connection holding the writer lock (IndexBusyError, a 409, while a scan has it)."""
    with opened(index_path) as index:
        index.acquire()
        yield index


def live(index: Index, file_id: int) -> FileRecord:
    """The indexed, readable file `file_id`, or 404."""
    record = index.file_record(file_id)
    if record is None or record.status != "ok" or record.content_hash is None:
        raise Refused(404, f"no indexed file with id {file_id}")
    return record


def unchanged(record: FileRecord) -> FileRecord:
    """The record, if its file is still the one indexed (same size and modification time):
    what is served is what the index describes, not whatever the path holds now."""
    try:
        size, mtime_ns = file_stat(record.path)  # a URL's object too (sources/remote.py)
    except OSError:
        raise Refused(404, f"file {record.id} is gone from disk; scan again") from None
    if size != record.size or mtime_ns != record.mtime_ns:
        raise Refused(409, f"file {record.id} changed since it was indexed; scan again")
    return record


def parse_where(values: list[str]) -> dict[str, str]:
    """["category:tops", "shop=a"] -> {"category": "tops", "shop": "a"}. Checked before any
    index is opened: a malformed filter is the request's fault (422) even with no index."""
    if len(values) > models.MAX_WHERE:
        raise Refused(422, f"at most {models.MAX_WHERE} where conditions")
    out = {}
    for value in values:
        if len(value) > models.MAX_WHERE_CHARS:
            raise Refused(422, f"where: a condition over {models.MAX_WHERE_CHARS} characters")
        if not re.fullmatch(models.WHERE_PATTERN, value):
            raise Refused(422, f"where={value[:80]!r}: expected KEY:VALUE (or KEY=VALUE), the "
                          "key without quotes, backslashes or control characters")
        key, _, wanted = value.partition(":") if ":" in value else value.partition("=")
        out[key] = wanted
    return out


class WriteLock:
    """One write to the index at a time from this server (uploads, marks, apply, undo): a
    request queues behind the one in progress instead of meeting the index's own lock,
    which then only another process can hold (a 409). Waiting requests wait on the event
    loop, holding no worker thread; the work itself runs in the thread pool."""

    def __init__(self) -> None:
        self._thread_lock = threading.Lock()  # the real exclusion, whatever loop serves
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def run(self, work: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, asyncio.Lock())
        async with queue:
            return await run_in_threadpool(self._locked, work, *args)

    def _locked(self, work: Callable[..., T], *args: object) -> T:
        with self._thread_lock:
            return work(*args)


class StateCache:
    """Values computed from the index, kept while nothing is committed to it (by this server
    or by a scan elsewhere), a few keys at a time. One request computes a missing value; the
    others asking for it meanwhile wait for that one rather than compute it again."""

    def __init__(self, counter: ChangeCounter, entries: int = CACHE_ENTRIES) -> None:
        self._counter = counter
        self._lock = threading.Lock()
        self._entries: dict[tuple, object] = {}
        self._pending: dict[tuple, threading.Lock] = {}
        self._size = entries

    def version(self) -> int | None:
        """The index's change counter now (the first part of every key)."""
        return self._counter.value()

    def carry_over(self, before: int | None, after: int | None) -> None:
        """Keep the entries of version `before` as entries of `after`: for a commit known to
        change nothing they hold (a mark on a file), made under the writer lock, so that no
        other commit came in between."""
        if before is None or after is None or before == after:
            return
        with self._lock:
            for key, value in list(self._entries.items()):
                if key[0] == before:
                    self._entries.pop(key)
                    self._entries[(after, *key[1:])] = value

    def get(self, key: tuple, make: Callable[[], T]) -> T:
        key = (self._counter.value(), *key)
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            found = make()
            with self._lock:
                if len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = found
                self._pending.pop(key, None)
        return found


@dataclass(frozen=True)
class FoundGroups:
    groups: list[Group]
    evidence: dict[str, Evidence]  # path -> how it matched inside its group


@dataclass(frozen=True)
class HealthState:
    report: HealthReport
    ids: dict[str, int]  # path -> file id, of the files the report lists
    flagged: dict[str, frozenset[str]]  # check -> the paths of every file it flags


def health_state(index: Index) -> HealthState:
    """The health report of the default thresholds, with the ids of the files it lists and
    the whole set each check flags (the report lists MAX_LISTED a check; only a check that
    flags more reads the measurements a second time)."""
    thresholds = HealthThresholds()
    report = health(index, thresholds)
    table = None
    flagged = {}
    for name, result in report.checks.items():
        if result.count > len(result.flagged):
            if table is None:
                table = health_table(index, None, thresholds.outlier_k)
            mask = flag(name, table.values[name], thresholds, table)
            flagged[name] = frozenset(table.paths[i] for i in np.flatnonzero(mask))
        else:
            flagged[name] = frozenset(f.path for f in result.flagged)
    ids = index.live_file_ids(f.path for r in report.checks.values() for f in r.flagged)
    return HealthState(report, ids, flagged)


class GroupCache(StateCache):
    """The groups (and each file's evidence) for (method, filter), so paging does not search
    the collection again for every page; and the health checks, which read every picture's
    measurements."""

    def health(self, index: Index) -> HealthState:
        return self.get(("health",), lambda: health_state(index))

    def groups(self, index: Index, method: str, where: dict[str, str]) -> FoundGroups:
        return self.get(("groups", method, tuple(sorted(where.items()))),
                        lambda: FoundGroups(*groups_with_evidence(index, method,
                                                                  where or None)))

    def warm(self, index_path: Path, *more: Callable[[Index], object]) -> threading.Thread:
        """Compute the default groups (then `more`) in the background (lookalike serve, at
        start): the first page a person opens is then a cache hit."""
        def run() -> None:
            try:
                with opened(index_path) as index:
                    self.groups(index, "auto", {})
                    for make in more:
                        make(index)
            except Exception:  # noqa: BLE001  (the first request reports the error itself)
                pass

        thread = threading.Thread(target=run, name="lookalike-warm-groups", daemon=True)
        thread.start()
        return thread


class QueryCache(StateCache):
    """A PreparedQuery per (method, radius): the codes and search structures are read once,
    not at every request (about 0.4 s of a query on 20,000 pictures)."""

    def prepared(self, index: Index, method: str, max_distance: int | None) -> PreparedQuery:
        return self.get(("query", method, max_distance),
                        lambda: PreparedQuery(index, method, max_distance))


def flagged_groups(cache: GroupCache, index: Index, groups: list[Group],
                   check: str | None) -> list[Group]:
    """The groups with a file the health check `check` flags (all of them for None)."""
    if check is None:
        return groups
    flagged = cache.health(index).flagged[check]
    return [g for g in groups if any(f.path in flagged for f in g.files)]


def select_groups(groups: list[Group], min_size: int, max_size: int | None) -> list[Group]:
    """The groups of `min_size` files or more (and at most `max_size`)."""
    return [g for g in groups
            if len(g.files) >= min_size and (max_size is None or len(g.files) <= max_size)]


ERRORS = {**{code: {"model": models.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415,
                                                            503)},
          422: {"model": models.InvalidOut}}
