"""Named schema migrations, applied in order, each in its own transaction."""

from __future__ import annotations

import sqlite3
import time

# Signatures hang off contents (the 16-byte hash of a file's bytes), not paths, so byte copies
# share one computation and a moved or renamed file needs none. Signature rows are keyed by
# (method, version, params): a new algorithm version recomputes only its own rows.
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_initial", """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started REAL NOT NULL,
            finished REAL,
            status TEXT NOT NULL,              -- running, done, interrupted
            roots TEXT NOT NULL,               -- JSON list
            methods TEXT NOT NULL,             -- JSON list
            summary TEXT                       -- JSON object
        );
        CREATE TABLE contents (
            id INTEGER PRIMARY KEY,
            hash BLOB NOT NULL UNIQUE,         -- xxh3-128 of the file bytes
            bytes INTEGER NOT NULL,
            width INTEGER, height INTEGER, format TEXT, mode TEXT, frames INTEGER
        );
        CREATE TABLE signatures (
            content_id INTEGER NOT NULL REFERENCES contents(id),
            method TEXT NOT NULL,
            version INTEGER NOT NULL,
            params TEXT NOT NULL,
            value BLOB NOT NULL,               -- variants x code bytes, identity first
            quality REAL NOT NULL,
            PRIMARY KEY (method, version, params, content_id)
        ) WITHOUT ROWID;
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,         -- str, or the raw bytes of a non-UTF-8 name
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_id INTEGER REFERENCES contents(id),
            status TEXT NOT NULL,              -- ok, failed, other (not an image), vanished
            stage TEXT, error TEXT,            -- why it failed
            first_run INTEGER, last_run INTEGER, vanished_run INTEGER,
            meta TEXT                          -- JSON object: user metadata (category, ...)
        );
        CREATE INDEX files_content ON files(content_id);
        CREATE INDEX files_status ON files(status);
    """),
    # Match thresholds measured on this collection by `lookalike calibrate`: per method, the
    # chosen value and the precision/recall curve it was chosen from (JSON).
    ("0002_thresholds", """
        CREATE TABLE thresholds (
            method TEXT PRIMARY KEY,
            value REAL NOT NULL,
            target_precision REAL,
            precision REAL,
            recall REAL,
            sample INTEGER,
            created REAL,
            curve TEXT                         -- JSON
        );
    """),
    # Embedding models whose signatures the index holds, by the params of their signatures:
    # where each came from (a registry name or a file), so queries can embed new pictures
    # with the same model; `active` marks the one `dupes`/`query --method embed` use.
    ("0003_models", """
        CREATE TABLE models (
            params TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            ref TEXT NOT NULL,                 -- registry name or absolute path of the .onnx
            sha256 TEXT,
            registered REAL NOT NULL,
            active INTEGER NOT NULL DEFAULT 0
        );
    """),
    # `lookalike ingest`: one row per row of a CSV/Parquet/JSONL source of image URLs, with
    # what became of it (status, reason), so a re-run skips what is done. The kept columns
    # (meta) are copied onto files.meta for the downloaded path (Index.copy_ingest_meta),
    # which is where the rest of lookalike reads metadata from.
    ("0004_ingest", """
        CREATE TABLE ingest (
            source TEXT NOT NULL,              -- absolute path of the source file
            row INTEGER NOT NULL,              -- 1-based data row (records, blank lines skipped)
            id TEXT,                           -- the id column's value, if one was given
            url TEXT NOT NULL,
            path TEXT,                         -- the downloaded file (absolute), if any
            status TEXT NOT NULL,              -- ok, failed, invalid, duplicate
            reason TEXT NOT NULL,
            http_status INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            permanent INTEGER NOT NULL DEFAULT 0,  -- a failure a plain re-run does not retry
            started REAL, finished REAL,
            meta TEXT,                         -- JSON object: the kept columns
            PRIMARY KEY (source, row)
        );
        CREATE INDEX ingest_path ON ingest(path);
    """),
    # Decisions a person made about two contents (`lookalike decide`), so later `dupes` runs
    # respect them: 'not-duplicate' drops the pair from find_pairs/find_groups. Keyed by
    # content (bytes hash), not path, so a decision survives moves and renames.
    ("0005_decisions", """
        CREATE TABLE decisions (
            content_a INTEGER NOT NULL REFERENCES contents(id),
            content_b INTEGER NOT NULL REFERENCES contents(id),
            decision TEXT NOT NULL,            -- not-duplicate, duplicate
            created REAL NOT NULL,
            PRIMARY KEY (content_a, content_b),
            CHECK (content_a < content_b)
        );
    """),
    # A person's mark on one file (the web UI's triage): keep it, or quarantine it, whatever
    # the keep rules say. Keyed by file (a path), with the content it held when marked: a
    # mark on a file whose bytes changed since no longer applies (Index.marks).
    ("0006_marks", """
        CREATE TABLE marks (
            file_id INTEGER PRIMARY KEY REFERENCES files(id),
            content_id INTEGER NOT NULL REFERENCES contents(id),
            mark TEXT NOT NULL,                -- keep, quarantine
            created REAL NOT NULL
        );
    """),
]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks; return their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, "
                 "applied REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another connection may have applied it while this one waited for the lock
            # (two requests of `lookalike serve` opening an index one migration behind).
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name=?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a script into complete statements (string literals and triggers stay whole)."""
    parts, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            parts.append(current.strip())
            current = ""
    if current.strip():
        parts.append(current.strip())
    return parts
