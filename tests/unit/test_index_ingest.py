"""The index's ingest rows and file metadata on a real SQLite file: rows replaced and
forgotten, kept columns copied onto files.meta, and live_files(where=...) matching them as
a user types them (numbers and flags from Parquet included)."""

from __future__ import annotations

import pytest

from lookalike.errors import IndexError_
from lookalike.index.store import open_index
from lookalike.types import IngestRow


def _add_file(index, path: str, content: int) -> None:
    with index.transaction() as conn:
        conn.execute("INSERT INTO contents (id, hash, bytes, width, height) VALUES (?, ?, 1, 8, 8)",
                     (content, bytes([content]) * 16))
        conn.execute("INSERT INTO files (path, size, mtime_ns, content_id, status) "
                     "VALUES (?, 1, 1, ?, 'ok')", (path, content))


def test_ingest_rows_and_metadata(tmp_path):
    with open_index(tmp_path / "index.db", create=True) as index:
        with pytest.raises(IndexError_, match="writer lock"):
            index.write_ingest("src", [])
        index.acquire()
        for number, name in enumerate(("a", "b", "c"), 1):
            _add_file(index, f"/out/{name}.jpg", number)
        rows = [IngestRow(1, "http://x/a", "ok", "downloaded", "a", "/out/a.jpg", 200, 1,
                          meta={"category": "tops", "size": 2, "sale": True}),
                IngestRow(2, "http://x/b", "ok", "downloaded", "b", "/out/b.jpg", 200, 1,
                          meta={"category": "shoes", "size": 2.5, "sale": False}),
                IngestRow(3, "http://x/c", "failed", "HTTP 404", "c", None, 404,
                          permanent=True, meta={"category": "tops"}),
                IngestRow(4, "http://x/d", "invalid", "no URL")]
        index.write_ingest("src", rows)
        assert index.ingest_rows("src") == {r.row: r for r in rows}
        index.write_ingest("src", rows[:2], last_row=2)  # the source got shorter
        assert sorted(index.ingest_rows("src")) == [1, 2]
        assert index.copy_ingest_meta() == 2
        assert index.file_meta() == {"/out/a.jpg": rows[0].meta, "/out/b.jpg": rows[1].meta}
        assert index.copy_ingest_meta() == 0  # already there: nothing rewritten
        changed = IngestRow(2, "http://x/b", "ok", "downloaded", "b", "/out/b.jpg", 200, 1,
                            finished=10.0, meta={"category": "boots"})
        index.write_ingest("src", [changed])
        assert index.copy_ingest_meta() == 1
        assert index.file_meta()["/out/b.jpg"] == {"category": "boots"}
        index.write_ingest("src", rows[:2])
        assert index.copy_ingest_meta() == 1

        def paths(**where) -> list[str]:
            return sorted(f.path for files in index.live_files(where).values() for f in files)

        assert paths() == ["/out/a.jpg", "/out/b.jpg", "/out/c.jpg"]
        assert paths(category="tops") == ["/out/a.jpg"]
        assert paths(category="tops", size="2") == ["/out/a.jpg"]
        assert paths(size="2.5") == ["/out/b.jpg"]
        assert paths(sale="true") == ["/out/a.jpg"] and paths(sale="false") == ["/out/b.jpg"]
        assert paths(category="hats") == [] and paths(brand="x") == []
        with pytest.raises(IndexError_, match="metadata key"):
            index.live_files({'a"b': "1"})
