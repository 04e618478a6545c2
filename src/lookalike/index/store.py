"""The SQLite index: one writer at a time (a lock file), any number of readers (WAL)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import IndexBusyError, IndexError_, IndexNotFoundError
from ..locks import read_note, try_lock, write_note
from ..methods.registry import MethodSpec
from ..types import FileInfo, Scanned
from .decisions import Decisions
# Discovery and records live in their own modules; callers still import them from here.
from .discovery import (INDEX_DIR, INDEX_NAME, check_index_place,  # noqa: F401
                        default_index_path, find_index, search_folders)
from .ingested import Ingested
from .migrations import migrate
from .records import (Codes, FileRecord, KnownFile, RegisteredModel,  # noqa: F401
                      StoredThreshold)
from .paths import display_path, from_db_path, to_db_path  # noqa: F401  (imported from here)

CODE_BLOCK = 65_536  # signature rows read from SQLite at a time
# The signatures of one method (method, version, params) for contents with a live file.
_LIVE_CODES = (" FROM signatures s WHERE s.method=? AND s.version=? AND s.params=? AND "
               "s.content_id IN (SELECT content_id FROM files WHERE status='ok')")

def _meta_condition(where: Mapping[str, str] | None) -> tuple[str, list[str]]:
    """SQL (to AND onto a query of `files f`) matching files whose meta has every key=value
    of `where`. Values are compared as text, JSON true/false as "true"/"false", so a kept
    column read from Parquet as a number or a flag matches what a user types."""
    sql, params = "", []
    for key, value in (where or {}).items():
        if not key or '"' in key:
            raise IndexError_(f"cannot filter on metadata key {key!r}")
        path = f'$."{key}"'
        sql += (" AND (CASE json_type(f.meta, ?) WHEN 'true' THEN 'true' WHEN 'false' "
                "THEN 'false' ELSE CAST(json_extract(f.meta, ?) AS TEXT) END) = ?")
        params += [path, path, str(value)]
    return sql, params


class ChangeCounter:
    """A number that changes whenever anything is committed to the index, by any connection
    of any process: SQLite's data_version, read on one connection of this object's own (the
    value means nothing across connections). For caches of values computed from an index;
    a file's modification time is no such signal in WAL mode."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def value(self) -> int | None:
        """The counter, or None while there is no index file (nothing to cache)."""
        with self._lock:
            if self._conn is None:
                if not self.path.exists():
                    return None
                # never writes; not thread-bound because every use holds the lock
                self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_index(path: str | os.PathLike, *, create: bool = False,
               read_only: bool = False) -> "Index":
    """Open (or with `create`, make) an index; `read_only` opens it as is, for workers."""
    path = Path(path)
    if read_only:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        except sqlite3.DatabaseError as exc:
            raise IndexError_(f"cannot open index {path}: {exc}") from None
        return Index(path, conn)
    if not path.exists():
        if not create:
            raise IndexNotFoundError(f"no index at {path}; run 'lookalike scan' first")
        check_index_place(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexError_(f"cannot create the index folder {path.parent}: "
                              f"{exc.strerror or exc}") from None
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise IndexError_(f"cannot open index {path}: {exc}") from None
    return Index(path, conn)


class Index(Decisions, Ingested):
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._lock_fd: int | None = None

    def close(self) -> None:
        self.conn.close()
        self.release()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the writer lock, or raise IndexBusyError at once."""
        lock_path = f"{self.path}.lock"
        fd = try_lock(lock_path)
        if fd is None:
            holder = read_note(lock_path) or "unknown"
            raise IndexBusyError(
                f"index is busy: another lookalike process (pid {holder}) is writing to "
                f"{self.path}; wait for it to finish")
        write_note(fd, str(os.getpid()))
        self._lock_fd = fd

    @property
    def lock_fd(self) -> int | None:
        return self._lock_fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view for several reads, while a scan may be writing (WAL)."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def begin_run(self, roots: Sequence[str], methods: Sequence[str]) -> int:
        with self.transaction() as conn:
            # A run left 'running' was killed: only a writer holding the lock gets here.
            conn.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
            cur = conn.execute(
                "INSERT INTO runs (started, status, roots, methods) VALUES (?, 'running', ?, ?)",
                (time.time(), json.dumps(list(roots)), json.dumps(list(methods))))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, summary: dict) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET finished=?, status='done', summary=? WHERE id=?",
                         (time.time(), json.dumps(summary), run_id))

    def lookup_files(self, paths: Sequence[str]) -> dict[str, KnownFile]:
        found: dict[str, KnownFile] = {}
        for start in range(0, len(paths), 500):
            chunk = [to_db_path(p) for p in paths[start:start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                    f"SELECT path, id, size, mtime_ns, status, content_id, stage, error FROM files "
                    f"WHERE path IN ({marks})", chunk):
                found[from_db_path(row[0])] = KnownFile(*row[1:])
        return found

    def contents_missing(self, content_ids: Iterable[int], specs: Sequence[MethodSpec]) -> set[int]:
        """Those of `content_ids` that lack a signature of one of `specs`."""
        ids = list(set(content_ids))
        missing: set[int] = set()
        for spec in specs:
            have: set[int] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                have.update(row[0] for row in self.conn.execute(
                    f"SELECT content_id FROM signatures WHERE method=? AND version=? AND "
                    f"params=? AND content_id IN ({marks})", (*spec.key, *chunk)))
            missing.update(set(ids) - have)
        return missing

    def known_contents(self, hashes: Sequence[bytes], specs: Sequence[MethodSpec],
                       names: Sequence[str] | None = None
                       ) -> dict[bytes, tuple[int, int, str, str, set[str]]]:
        """bytes hash -> (width, height, format, mode, names of `specs` already signed);
        `names`: what to call each spec in that set (default: its name)."""
        rows = []
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows += self.conn.execute(
                f"SELECT id, hash, width, height, format, mode FROM contents "
                f"WHERE hash IN ({marks})", chunk).fetchall()
        by_id = {row[0]: row for row in rows}
        signed: dict[int, set[str]] = {cid: set() for cid in by_id}
        names = {spec.key: name for spec, name in zip(specs, names or [s.name for s in specs])}
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for cid, method, version, params in self.conn.execute(
                    f"SELECT content_id, method, version, params FROM signatures "
                    f"WHERE content_id IN ({marks})", chunk):
                name = names.get((method, version, params))
                if name:
                    signed[cid].add(name)
        return {row[1]: (row[2], row[3], row[4], row[5], signed[cid])
                for cid, row in by_id.items()}

    def mark_seen(self, conn: sqlite3.Connection, run_id: int, file_ids: Sequence[int]) -> None:
        conn.executemany("UPDATE files SET last_run=? WHERE id=?",
                         [(run_id, file_id) for file_id in file_ids])

    def write_scanned(self, conn: sqlite3.Connection, run_id: int,
                      items: Sequence[Scanned]) -> None:
        """Record what workers found, a few statements for a whole chunk."""
        images = [i for i in items if i.failure is None and i.kind == "image"]
        conn.executemany(
            "INSERT INTO contents (hash, bytes, width, height, format, mode, frames) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(hash) DO UPDATE SET "
            "width=excluded.width, height=excluded.height, format=excluded.format, "
            "mode=excluded.mode, frames=MAX(COALESCE(frames, 1), excluded.frames) "
            "WHERE excluded.width > 0",
            [(i.content, i.ref.size, i.width, i.height, i.format, i.mode, i.frames)
             for i in images])
        ids = self.content_ids_by_hash(list({i.content for i in images}), conn)
        conn.executemany(
            "INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?, ?)",
            [(ids[i.content], s.method, s.version, s.params, s.value, s.quality)
             for i in images for s in i.signatures])
        rows = []
        for item in items:
            failure = item.failure
            status = "failed" if failure else ("ok" if item.kind == "image" else "other")
            content_id = ids.get(item.content) if status == "ok" else None
            rows.append((to_db_path(item.ref.path), item.ref.size, item.ref.mtime_ns, content_id,
                         status, failure.stage if failure else None,
                         failure.reason if failure else None, run_id, run_id))
        conn.executemany(
            "INSERT INTO files (path, size, mtime_ns, content_id, status, stage, error, "
            "first_run, last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
            "content_id=excluded.content_id, status=excluded.status, stage=excluded.stage, "
            "error=excluded.error, last_run=excluded.last_run, vanished_run=NULL", rows)

    def set_threshold(self, threshold: StoredThreshold) -> None:
        """Store (or replace) a method's calibrated threshold; needs the writer lock."""
        self._need_lock("storing a threshold")
        t = threshold
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO thresholds (method, value, target_precision, precision, "
                "recall, sample, created, curve) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (t.method, float(t.value), t.target_precision, t.precision, t.recall, t.sample,
                 t.created if t.created is not None else time.time(),
                 None if t.curve is None else json.dumps(t.curve)))

    def register_model(self, params: str, name: str, ref: str, sha256: str | None,
                       active: bool = True) -> None:
        """Record an embedding model (by its signatures' params); needs the writer lock."""
        self._need_lock("registering a model")
        with self.transaction() as conn:
            if active:
                conn.execute("UPDATE models SET active=0")
            conn.execute(
                "INSERT INTO models (params, name, ref, sha256, registered, active) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(params) DO UPDATE SET name=excluded.name, "
                "ref=excluded.ref, sha256=excluded.sha256, active=excluded.active OR active",
                (params, name, ref, sha256, time.time(), int(active)))

    def models(self) -> list[RegisteredModel]:
        """The embedding models registered in this index, the active one first."""
        try:
            rows = self.conn.execute(
                "SELECT params, name, ref, sha256, active FROM models "
                "ORDER BY active DESC, registered DESC").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise IndexError_(f"cannot read models from {self.path}: {exc}") from None
        return [RegisteredModel(p, n, r, h, bool(a)) for p, n, r, h, a in rows]

    def signature_params(self, method: str) -> list[str]:
        """The distinct params of `method`'s stored signatures."""
        return [row[0] for row in self.conn.execute(
            "SELECT DISTINCT params FROM signatures WHERE method=? ORDER BY params", (method,))]

    def mark_vanished(self, run_id: int, roots: Sequence[str]) -> int:
        """Files under `roots` that this run did not see are marked vanished."""
        prefixes = tuple(os.path.join(root, "") for root in roots)
        gone = [file_id for file_id, value in self.conn.execute(
            "SELECT id, path FROM files WHERE status != 'vanished' AND "
            "(last_run IS NULL OR last_run < ?)", (run_id,))
            if from_db_path(value).startswith(prefixes)]
        with self.transaction() as conn:
            conn.executemany("UPDATE files SET status='vanished', vanished_run=? WHERE id=?",
                             [(run_id, file_id) for file_id in gone])
        return len(gone)

    def count_moved(self, run_id: int) -> int:
        """New paths this run whose bytes belong to a file that vanished in this run."""
        row = self.conn.execute(
            "SELECT COUNT(DISTINCT f.id) FROM files f JOIN files v "
            "ON v.content_id = f.content_id AND v.id != f.id "
            "WHERE f.first_run = ? AND f.status = 'ok' AND v.vanished_run = ?",
            (run_id, run_id)).fetchone()
        return int(row[0])

    # --- reading -------------------------------------------------------------------------

    def iter_codes(self, spec: MethodSpec, block: int | None = None,
                   identity_only: bool = False) -> Iterator[Codes]:
        """Codes of every content that has a live file, in content order, `block` at a time."""
        variants = 1 if identity_only else spec.variants
        cur = self.conn.execute(
            "SELECT s.content_id, substr(s.value, 1, ?), s.quality" + _LIVE_CODES
            + " ORDER BY s.content_id", (variants * spec.nbytes, *spec.key))
        while rows := cur.fetchmany(block or CODE_BLOCK):
            values = b"".join(r[1] for r in rows)
            yield Codes(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                        np.frombuffer(values, dtype=np.uint8).reshape(len(rows), variants,
                                                                      spec.nbytes),
                        np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows)))

    def load_codes(self, spec: MethodSpec, identity_only: bool = False) -> Codes:
        """All of iter_codes in one array, filled block by block (no second copy)."""
        variants = 1 if identity_only else spec.variants
        with self.snapshot():  # the count and the rows agree
            n = self.conn.execute("SELECT COUNT(*)" + _LIVE_CODES, spec.key).fetchone()[0]
            out = Codes(np.empty(n, dtype=np.int64),
                        np.empty((n, variants, spec.nbytes), np.uint8),
                        np.empty(n, dtype=np.float32))
            at = 0
            for part in self.iter_codes(spec, identity_only=identity_only):
                stop = at + len(part.content_ids)
                for name in ("content_ids", "codes", "quality"):
                    getattr(out, name)[at:stop] = getattr(part, name)
                at = stop
        return out

    def iter_values(self, spec: MethodSpec, block: int | None = None
                    ) -> Iterator[list[tuple[int, bytes]]]:
        """(content id, signature value) of every live content, in content order, `block`
        rows at a time: for methods whose values are not fixed-size codes."""
        cur = self.conn.execute("SELECT s.content_id, s.value" + _LIVE_CODES
                                + " ORDER BY s.content_id", spec.key)
        while rows := cur.fetchmany(block or 4096):
            yield rows

    def values_for(self, spec: MethodSpec, content_ids: Iterable[int]) -> dict[int, bytes]:
        """content id -> signature value, for those of `content_ids` that have one."""
        ids = sorted(set(int(c) for c in content_ids))
        out: dict[int, bytes] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self.conn.execute(
                f"SELECT content_id, value FROM signatures WHERE method=? AND version=? AND "
                f"params=? AND content_id IN ({marks})", (*spec.key, *chunk)).fetchall())
        return out

    def live_files(self, where: Mapping[str, str] | None = None) -> dict[int, list[FileInfo]]:
        """content id -> its live files, paths sorted; with `where`, only the files whose
        metadata (files.meta) has every one of these key=value pairs."""
        out: dict[int, list[FileInfo]] = {}
        condition, params = _meta_condition(where)
        for content_id, path, width, height, size in self.conn.execute(
                "SELECT f.content_id, f.path, c.width, c.height, f.size FROM files f "
                "JOIN contents c ON c.id = f.content_id WHERE f.status='ok'" + condition,
                params):
            out.setdefault(content_id, []).append(
                FileInfo(from_db_path(path), width or 0, height or 0, size))
        for files in out.values():
            files.sort(key=lambda f: f.path)
        return out

    def thresholds(self) -> dict[str, StoredThreshold]:
        """method -> its calibrated threshold; empty when none was stored."""
        try:
            rows = self.conn.execute(
                "SELECT method, value, target_precision, precision, recall, sample, created, "
                "curve FROM thresholds ORDER BY method").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # an older index opened read-only: not migrated
                return {}
            raise IndexError_(f"cannot read thresholds from {self.path}: {exc}") from None
        return {row[0]: StoredThreshold(*row[:7], json.loads(row[7]) if row[7] else None)
                for row in rows}

    def scanned_roots(self) -> list[str]:
        """The folders and files given to every scan of this index, first scan first."""
        roots: list[str] = []
        for (value,) in self.conn.execute("SELECT roots FROM runs ORDER BY id"):
            roots += [r for r in json.loads(value) if r not in roots]
        return roots

    def failures(self) -> list[tuple[str, str, str]]:
        return [(from_db_path(p), s or "", e or "") for p, s, e in self.conn.execute(
            "SELECT path, stage, error FROM files WHERE status='failed' ORDER BY path")]

    def has_signatures(self, spec: MethodSpec) -> bool:
        """Whether any signature of this method version and parameters is stored."""
        return self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM signatures WHERE method=? AND version=? AND params=?)",
            spec.key).fetchone()[0] == 1

    def methods_present(self) -> list[str]:
        return [row[0] for row in self.conn.execute(
            "SELECT DISTINCT method FROM signatures ORDER BY method")]

    def content_ids_by_hash(self, hashes: Sequence[bytes],
                            conn: sqlite3.Connection | None = None) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start:start + 500])
            marks = ",".join("?" * len(chunk))
            out.update((conn or self.conn).execute(
                f"SELECT hash, id FROM contents WHERE hash IN ({marks})", chunk).fetchall())
        return out

    def file_record(self, file_id: int) -> FileRecord | None:
        """The files row `file_id` with its content's size and format; None when absent."""
        row = self.conn.execute(
            "SELECT f.id, f.path, f.size, f.mtime_ns, f.status, c.hash, c.width, c.height, "
            "c.format, c.mode, f.meta FROM files f LEFT JOIN contents c ON c.id = f.content_id "
            "WHERE f.id=?", (int(file_id),)).fetchone()
        if row is None:
            return None
        return FileRecord(row[0], from_db_path(row[1]), row[2], row[3], row[4],
                          None if row[5] is None else bytes(row[5]), row[6] or 0, row[7] or 0,
                          row[8] or "", row[9] or "", json.loads(row[10]) if row[10] else {})

    def live_file_ids(self, paths: Iterable[str]) -> dict[str, int]:
        """path -> files.id for those of `paths` that are live (status ok)."""
        paths = list(dict.fromkeys(paths))
        out: dict[str, int] = {}
        for start in range(0, len(paths), 500):
            chunk = [to_db_path(p) for p in paths[start:start + 500]]
            marks = ",".join("?" * len(chunk))
            out.update((from_db_path(p), i) for i, p in self.conn.execute(
                f"SELECT id, path FROM files WHERE status='ok' AND path IN ({marks})", chunk))
        return out

    # --- file states (actions/; decisions: index/decisions.py) ------------------------------

    def file_states(self, paths: Sequence[str]
                    ) -> dict[str, tuple[int, int, int, bytes, str]]:
        """path -> (size, mtime_ns, content id, bytes hash, format) as the last scan saw it,
        for the live image files among `paths`."""
        out: dict[str, tuple[int, int, int, bytes, str]] = {}
        for start in range(0, len(paths), 500):
            chunk = [to_db_path(p) for p in paths[start:start + 500]]
            marks = ",".join("?" * len(chunk))
            for path, size, mtime_ns, content_id, digest, fmt in self.conn.execute(
                    f"SELECT f.path, f.size, f.mtime_ns, f.content_id, c.hash, c.format "
                    f"FROM files f JOIN contents c ON c.id = f.content_id WHERE "
                    f"f.status='ok' AND f.path IN ({marks})", chunk):
                out[from_db_path(path)] = (size, mtime_ns, content_id, bytes(digest),
                                           fmt or "")
        return out
