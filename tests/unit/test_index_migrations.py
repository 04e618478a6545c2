"""Named schema migrations on a real SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from lookalike.errors import IndexError_, IndexNotFoundError
from lookalike.index import migrations
from lookalike.index.migrations import MIGRATIONS, migrate
from lookalike.index.store import open_index

EXPECTED_TABLES = {"runs", "contents", "signatures", "files", "schema_migrations"}


def _names(path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def _tables(path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migration_names_are_unique_and_ordered():
    names = [name for name, _ in MIGRATIONS]
    assert len(names) == len(set(names)) >= 1
    assert names == sorted(names)


def test_fresh_index_records_every_migration(tmp_path):
    path = tmp_path / "sub" / "index.db"
    with open_index(path, create=True):
        pass
    assert _names(path) == sorted(name for name, _ in MIGRATIONS)
    assert EXPECTED_TABLES <= _tables(path)


def test_missing_index_without_create_is_a_typed_error(tmp_path):
    with pytest.raises(IndexNotFoundError):
        open_index(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_reopening_applies_nothing(tmp_path):
    path = tmp_path / "index.db"
    with open_index(path, create=True):
        pass
    with closing(sqlite3.connect(path)) as conn:
        before = conn.execute("SELECT name, applied FROM schema_migrations").fetchall()
        assert migrate(conn) == []
        after = conn.execute("SELECT name, applied FROM schema_migrations").fetchall()
    assert before == after
    with open_index(path):
        pass
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT name, applied FROM schema_migrations").fetchall() == before


def test_unknown_future_migration_does_not_break_opening(tmp_path):
    """An index touched by a newer lookalike (extra migration name) still opens."""
    path = tmp_path / "index.db"
    with open_index(path, create=True):
        pass
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('9999_from_the_future', 0)")
    with open_index(path) as index:
        assert index.methods_present() == []
    assert "9999_from_the_future" in _names(path)


def test_new_migration_applied_once_to_an_old_index(tmp_path, monkeypatch):
    path = tmp_path / "index.db"
    with open_index(path, create=True):
        pass
    extra = ("9000_test_extra", """
        CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);  -- a comment; with a semicolon
        CREATE INDEX extra_note ON extra(note);
    """)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*MIGRATIONS, extra])
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert migrate(conn) == ["9000_test_extra"]
        assert migrate(conn) == []
    assert "extra" in _tables(path)


def test_failing_migration_rolls_back_entirely(tmp_path, monkeypatch):
    path = tmp_path / "index.db"
    with open_index(path, create=True):
        pass
    broken = ("9001_broken", """
        CREATE TABLE half_done (id INTEGER);
        THIS IS NOT SQL;
    """)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(IndexError_):
        open_index(path)
    assert "half_done" not in _tables(path)
    assert "9001_broken" not in _names(path)


def test_migration_text_with_double_dash_in_a_string(tmp_path, monkeypatch):
    """A `--` inside a string literal is not a comment: the statement must run as written.
    migrations._statements cuts every line at the first `--`."""
    monkeypatch.setattr(migrations, "MIGRATIONS", [("0001_t", """
        CREATE TABLE t (x TEXT DEFAULT 'a--b');
        INSERT INTO t DEFAULT VALUES;
    """)])
    with closing(sqlite3.connect(tmp_path / "t.db", isolation_level=None)) as conn:
        migrate(conn)
        assert conn.execute("SELECT x FROM t").fetchall() == [("a--b",)]


def test_migration_with_a_trigger(tmp_path, monkeypatch):
    """A trigger body holds statements ending in `;` at line end; it must stay one statement.
    migrations._statements splits at every line that ends with `;`."""
    monkeypatch.setattr(migrations, "MIGRATIONS", [("0001_t", """
        CREATE TABLE t (x INTEGER);
        CREATE TABLE log (x INTEGER);
        CREATE TRIGGER t_log AFTER INSERT ON t BEGIN
            INSERT INTO log VALUES (new.x);
        END;
        INSERT INTO t VALUES (7);
    """)])
    with closing(sqlite3.connect(tmp_path / "t.db", isolation_level=None)) as conn:
        migrate(conn)
        assert conn.execute("SELECT x FROM log").fetchall() == [(7,)]


def test_not_a_database_is_a_typed_error(tmp_path):
    path = tmp_path / "index.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexError_, match="cannot open index"):
        open_index(path)


def test_decisions_are_stored_per_content_pair(tmp_path):
    path = tmp_path / "index.db"
    with open_index(path, create=True) as index:
        index.conn.executemany("INSERT INTO contents (id, hash, bytes) VALUES (?, ?, 1)",
                               [(1, b"a" * 16), (2, b"b" * 16)])
        with pytest.raises(IndexError_):  # a write needs the writer lock
            index.record_decision(2, 1, "not-duplicate")
        index.acquire()
        with pytest.raises(IndexError_):  # byte copies are one content: nothing to decide
            index.record_decision(1, 1, "not-duplicate")
        index.record_decision(2, 1, "not-duplicate")
        assert index.decided_pairs("not-duplicate") == {(1, 2)}
        index.record_decision(1, 2, "duplicate")  # a later decision replaces the earlier
        assert index.decided_pairs("not-duplicate") == set()
        assert index.decided_pairs("duplicate") == {(1, 2)}


def test_connections_opening_an_index_behind_at_once_all_succeed(tmp_path, monkeypatch):
    """`lookalike serve` opens a connection per request: on an index that lacks a migration,
    the first to take the lock applies it, the others find it applied."""
    import threading

    for trial in range(5):
        path = tmp_path / f"index{trial}.db"
        with monkeypatch.context() as patched:  # an index made before the last migration
            patched.setattr(migrations, "MIGRATIONS", MIGRATIONS[:-1])
            with open_index(path, create=True):
                pass
        errors: list[Exception] = []

        def open_once() -> None:
            try:
                open_index(path).close()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=open_once) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert _names(path) == sorted(name for name, _ in MIGRATIONS)
