"""Shards cut from the walk as it streams (runners/shards.cut_shards), no Ray: a shard's id
depends on its own files, the methods and the shard size only (not on what the index already
holds), and the driver's memory does not grow with the number of files walked."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Iterator

from lookalike.runners.ray import run_shards
from lookalike.runners.shards import cut_shards
from lookalike.types import FileRef

NAMES = ("pixels", "phash")


def _refs(count: int, mtime: int = 7) -> list[FileRef]:
    return [FileRef(f"/p/{i:05d}.jpg", 100 + i, mtime) for i in range(count)]


def _cut(refs, compute=lambda ref: True, names=NAMES, size: int = 8):
    return list(cut_shards(((ref, compute(ref)) for ref in refs), names, Path("/s"), size))


def test_a_shards_id_depends_on_its_files_not_on_what_is_left_to_do():
    refs = _refs(20)
    whole = _cut(refs)
    part = _cut(refs, lambda ref: ref.path >= refs[10].path)  # the index holds the first 10
    assert [s.shard_id for s in whole] == [s.shard_id for s in part]
    assert len({s.shard_id for s in whole}) == 3
    assert [s.path for s in whole] == [f"/s/shard-{s.shard_id}.parquet" for s in whole]
    assert [len(s.refs) for s in whole] == [8, 8, 4]
    assert [len(s.refs) for s in part] == [0, 6, 4] and part[0].held
    assert [r.path for r in whole[1].refs] == [f"/p/{i:05d}.jpg" for i in range(8, 16)]
    assert [s.shard_id for s in _cut(refs)] == [s.shard_id for s in whole]  # a re-run

    touched = refs[:9] + [FileRef(refs[9].path, refs[9].size, 8)] + refs[10:]
    ids = [s.shard_id for s in _cut(touched)]
    assert ids[0] == whole[0].shard_id and ids[2] == whole[2].shard_id
    assert ids[1] != whole[1].shard_id  # only the changed file's shard is another
    assert not {s.shard_id for s in _cut(refs, names=("pixels",))} & set(ids)
    assert not {s.shard_id for s in _cut(refs, size=10)} & {s.shard_id for s in whole}


def _walk(count: int) -> Iterator[tuple[FileRef, bool]]:
    """`count` files made as they are walked, the first half already in the index."""
    for i in range(count):
        yield FileRef(f"/pictures/folder{i // 1000:04d}/picture{i:08d}.jpg", 20_000 + i,
                      1_700_000_000_000_000_000 + i), i >= count // 2


def _peak(count: int, consume) -> tuple[int, int]:
    tracemalloc.start()
    try:
        shards = consume(cut_shards(_walk(count), NAMES, Path("/s"), 512))
        return shards, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_driver_never_holds_the_file_list():
    def count(stream) -> int:
        return sum(1 for _ in stream)

    small, small_peak = _peak(10_000, count)
    large, large_peak = _peak(100_000, count)
    assert (small, large) == (20, 196)
    listed = 100_000 * 250  # what holding the list would take, at ~250 B a FileRef at least
    assert large_peak < 2 * small_peak + 100_000 and large_peak < listed / 20, (
        small_peak, large_peak)


def test_run_shards_reads_the_stream_lazily_and_skips_held_shards_without_ray():
    """Every shard held by the index: nothing computed, no Ray joined, memory flat."""
    def held(stream):
        return sum(1 for _ in run_shards((s for s in stream if s.held), NAMES))

    (small, small_peak), (large, large_peak) = _peak(10_000, held), _peak(100_000, held)
    assert small == large == 0
    assert large_peak < 2 * small_peak + 100_000, (small_peak, large_peak)
