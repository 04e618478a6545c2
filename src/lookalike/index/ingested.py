"""What `lookalike ingest` recorded per row of a URL list (sources/ingest.py), and the
metadata it puts on the downloaded files. A mixin of Index (index/store.py): the same
connection, transactions and writer lock."""

from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from ..types import IngestRow
from .locked import WriterLocked
from .paths import from_db_path, to_db_path


class Ingested(WriterLocked):
    """Index methods for ingest rows; writes need the writer lock (Index.acquire())."""

    conn: sqlite3.Connection

    def ingest_rows(self, source: str) -> dict[int, IngestRow]:
        """row number -> what the last ingest of `source` recorded for it."""
        rows = self.conn.execute(
            "SELECT row, url, status, reason, id, path, http_status, bytes, attempts, "
            "permanent, started, finished, meta FROM ingest WHERE source=?", (source,))
        return {r[0]: IngestRow(r[0], r[1], r[2], r[3], r[4],
                                None if r[5] is None else from_db_path(r[5]), r[6], r[7], r[8],
                                bool(r[9]), r[10], r[11], json.loads(r[12]) if r[12] else {})
                for r in rows}

    def write_ingest(self, source: str, rows: Sequence[IngestRow],
                     last_row: int | None = None) -> None:
        """Record (or replace) these rows of `source`; with `last_row`, forget the rows past
        it (the source got shorter). Needs the writer lock."""
        self._need_lock("recording ingest rows")
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO ingest (source, row, id, url, path, status, reason, "
                "http_status, bytes, attempts, permanent, started, finished, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(source, r.row, r.id, r.url, None if r.path is None else to_db_path(r.path),
                  r.status, r.reason, r.http_status, r.bytes, r.attempts, int(r.permanent),
                  r.started, r.finished, json.dumps(r.meta) if r.meta else None)
                 for r in rows])
            if last_row is not None:
                conn.execute("DELETE FROM ingest WHERE source=? AND row>?", (source, last_row))

    def copy_ingest_meta(self) -> int:
        """Put the kept columns of ingested rows onto the files rows of their downloaded
        paths (the latest ingest of a path wins); returns how many files rows changed (rows
        already holding that metadata are not rewritten). Called by ingest and at the end
        of every scan, so metadata lands whichever runs last. Needs the writer lock."""
        self._need_lock("copying ingest metadata")
        latest = ("(SELECT i.meta FROM ingest i WHERE i.path = files.path AND i.status = 'ok' "
                  "ORDER BY i.finished DESC LIMIT 1)")
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE files SET meta = {latest} WHERE path IN (SELECT path FROM ingest "
                f"WHERE status = 'ok' AND path IS NOT NULL) AND meta IS NOT {latest}")
            return cur.rowcount

    def file_meta(self) -> dict[str, dict]:
        """path -> metadata (files.meta) of the live files that have some."""
        return {from_db_path(path): json.loads(meta) for path, meta in self.conn.execute(
            "SELECT path, meta FROM files WHERE status='ok' AND meta IS NOT NULL")}
