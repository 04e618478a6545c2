"""Batched index writes (scan.WRITE_ROWS) and split signing (worker.MAX_PENDING_PIXELS) store
exactly what a write per chunk and a whole-chunk batch stored."""

from __future__ import annotations

import importlib
import os
import shutil
import sqlite3
from unittest import mock

import pytest

import lookalike
from lookalike import worker
from lookalike.sources.folders import walk
from lookalike.types import FileRef

from _imagedata import SMALL_SAMPLES, skimage_dir

scanning = importlib.import_module("lookalike.scan")  # the module (lookalike.scan is the function)
local_runner = importlib.import_module("lookalike.runners.local")  # where CHUNK lives


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("writes")
    for name in SMALL_SAMPLES:
        shutil.copyfile(os.path.join(skimage_dir(), name), root / name)
    for name in SMALL_SAMPLES[:3]:  # byte copies share one content row
        shutil.copyfile(root / name, root / f"copy-{name}")
    (root / "notes.txt").write_text("not a picture")  # kind "other"
    (root / "broken.png").write_bytes((root / "camera.png").read_bytes()[:300])  # a failure
    return root


def _tables(index) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(index)
    try:
        return {
            "files": conn.execute(
                "SELECT f.path, f.size, f.mtime_ns, c.hash, f.status, f.stage, f.error "
                "FROM files f LEFT JOIN contents c ON c.id = f.content_id "
                "ORDER BY f.path").fetchall(),
            "contents": conn.execute(
                "SELECT hash, bytes, width, height, format, mode, frames FROM contents "
                "ORDER BY hash").fetchall(),
            "signatures": conn.execute(
                "SELECT c.hash, s.method, s.version, s.params, s.value, s.quality "
                "FROM signatures s JOIN contents c ON c.id = s.content_id "
                "ORDER BY c.hash, s.method").fetchall()}
    finally:
        conn.close()


def _scan(folder, index, rows: int, seconds: float):
    seen: list[int] = []
    with mock.patch.object(local_runner, "CHUNK", 4), \
            mock.patch.object(scanning, "WRITE_ROWS", rows), \
            mock.patch.object(scanning, "WRITE_SECONDS", seconds):
        summary = lookalike.scan([folder], index_path=index, workers=1,
                                 progress=lambda done, total: seen.append(done))
    return summary, seen


def test_batched_writes_store_the_same_rows_as_a_write_per_chunk(folder, tmp_path):
    per_chunk, seen_per_chunk = _scan(folder, tmp_path / "a.db", rows=1, seconds=0.0)
    batched, seen_batched = _scan(folder, tmp_path / "b.db", rows=10_000, seconds=1e9)
    files = len(SMALL_SAMPLES) + 5
    assert per_chunk.as_dict() == batched.as_dict()
    assert (batched.scanned, batched.other, batched.failed) == (files - 2, 1, 1)
    assert [f.path for f in batched.failures] == [str(folder / "broken.png")]
    one, other = _tables(tmp_path / "a.db"), _tables(tmp_path / "b.db")
    assert len(one["files"]) == files and len(one["contents"]) == files - 5
    assert len(one["signatures"]) > 4 * len(one["contents"])
    assert one == other
    # per chunk: one write (and progress call) every 4 files; batched: the first chunk at
    # once, then all the rest at the end
    assert seen_per_chunk == list(range(4, files, 4)) + [files]
    assert seen_batched == [4, files]


def test_split_signing_gives_the_same_results_as_one_batch(folder):
    refs = [r for r in walk([str(folder)]) if isinstance(r, FileRef)]
    names = scanning.resolve_methods(scanning.DEFAULT_METHODS)
    whole = worker.process_chunk(refs, names)
    with mock.patch.object(worker, "MAX_PENDING_PIXELS", 1):  # each picture signed alone
        alone = worker.process_chunk(refs, names)
    assert len(whole) == len(refs)
    assert sum(1 for r in whole if r.signatures) == len(refs) - 2
    assert whole == alone
