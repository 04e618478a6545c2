"""The descriptor search on a Ray cluster: vectors.self_join and a flat knn, computed by tasks
that each hold one or two shards of the stored vectors, with the local results.

Shards: the rows are cut into S contiguous shards (sizes differ by one row at most); each is
put in the object store once (as float16 where that is exact: stored descriptors are), and
a task fetches only the shards it meets, so a task's memory is two shards plus FAISS's
float32 copy of one, which SHARD_BYTES bounds, plus one block of query results.

Self-join (`self_join_ray`, the pairs of `dupes --method embed`): block pairs (i, j), i <= j,
S (S + 1) / 2 tasks. Task (i, i) is vectors.self_join of shard i itself (its upper triangle).
Task (i, j), i < j, builds a FAISS index of shard j (flat: exact; "ivf": inverted lists,
approximate, for shards too large to scan, trained once per shard by a task of its own and
shared as ShardIndex; with it task (i, i) is a range search too) and asks it for every row
of shard i at or above the threshold (VectorIndex.range). Both keep a pair exactly when the
local join does: fast float32 passes only pick candidates, with a margin wider than their
rounding error, and every candidate is re-scored the one way vectors.py does (float64 sum
of the float32 unit vectors, rounded to float32). So with flat shards the driver's merge
(concatenate, sort by (a, b)) is vectors.self_join's Pairs: the same rows and the same
similarities, bit for bit. A pair is found by one task only (the one of its two shards),
so nothing is deduplicated.

knn (`knn_ray`, each picture's nearest: the cascade's proposals, embed.neighbour_pairs, and
the thorough mode's neighbours and backgrounds, decide.decide_pairs; dupes.py hands it to
both on `runner="ray"`): tasks (i, j) for every i, j return shard i's k nearest in shard j;
the driver keeps the best k of the S lists of each query (similarity, then lower id).
Similarities are FAISS's float32 products, as the local flat knn's: they can differ from the
local ones in the last bits (BLAS blocking differs with the shapes), within 1e-6; ids differ
only where two items tie within that much at the k-th place.

Ray is an optional extra: it is imported inside the functions that use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from ..errors import RunnerError
from . import vectors
from .vectors import Neighbours, Pairs

SHARD_BYTES = 256 << 20  # float32 units of one shard: what a task's FAISS index holds
TASKS_PER_CPU = 2  # join tasks per cluster CPU: enough to balance uneven shards
KINDS = ("flat", "ivf")


def _empty_pairs() -> Pairs:
    return Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown shard index kind {kind!r}; known: {', '.join(KINDS)}")


def shard_count(rows: int, dim: int, cpus: int = 1, pairs: bool = True) -> int:
    """Shards of at most SHARD_BYTES of float32 units, and enough of them for TASKS_PER_CPU
    tasks per CPU (S (S + 1) / 2 block pairs for a join, S^2 for knn); at most one a row."""
    if rows == 0:
        return 1
    by_memory = math.ceil(rows * dim * 4 / SHARD_BYTES)
    tasks = TASKS_PER_CPU * max(1, cpus)
    by_tasks = math.ceil((math.sqrt(8 * tasks + 1) - 1) / 2) if pairs else math.ceil(
        math.sqrt(tasks))
    return max(1, min(rows, max(by_memory, by_tasks)))


def shard_starts(rows: int, shards: int) -> np.ndarray:
    """(S + 1,) first row of each shard, then `rows`: sizes differ by one at most."""
    if shards < 1:
        raise ValueError(f"need at least one shard, not {shards}")
    shards = min(shards, max(1, rows))
    sizes = np.full(shards, rows // shards, np.int64)
    sizes[:rows % shards] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def block_pairs(shards: int) -> list[tuple[int, int]]:
    """The self-join's tasks: (i, j), i <= j."""
    return [(i, j) for i in range(shards) for j in range(i, shards)]


@dataclass(frozen=True)
class ShardIndex:
    """A shard's trained index as bytes: an IVF index is built once per shard (k-means costs
    about as much as a task's queries) and shared through the object store; a flat one is
    rebuilt by each task from the shard (a copy: cheaper than sending float32 bytes)."""

    kind: str
    dim: int
    size: int
    blob: np.ndarray  # faiss.serialize_index
    row_ids: np.ndarray


Items = Union[np.ndarray, ShardIndex]  # a shard's rows, or its index


def shard_index(items: np.ndarray, kind: str) -> ShardIndex:
    import faiss

    built = vectors.build(items, kind)
    return ShardIndex(built.kind, built.dim, built.size,
                      faiss.serialize_index(built.faiss_index), built.row_ids)


def _index(items: Items, kind: str) -> vectors.VectorIndex:
    _check_kind(kind)
    if not isinstance(items, ShardIndex):
        return vectors.build(items, kind)
    import faiss

    return vectors.VectorIndex(items.kind, items.dim, items.size,
                               faiss.deserialize_index(items.blob), items.row_ids)


def join_blocks(left: np.ndarray, left_start: int, right: Items, right_start: int,
                min_similarity: float, kind: str = "flat") -> Pairs:
    """The pairs (a < b, global rows) between two shards, or within one where they are the
    same (left_start == right_start): a task's body, no Ray here."""
    if left_start == right_start and kind == "flat":
        # the local join's own tiles: exact, each pair once, half the products of a range
        found = vectors.self_join(left, min_similarity)
        return Pairs(found.a + left_start, found.b + left_start, found.similarity)
    hits = _index(right, kind).range(left, min_similarity)
    keep = hits.query + left_start < hits.ids + right_start  # on the diagonal: a < b only
    return Pairs(hits.query[keep] + left_start, hits.ids[keep] + right_start,
                 hits.similarity[keep])


def knn_blocks(queries: np.ndarray, items: Items, item_start: int, k: int,
               kind: str = "flat") -> Neighbours:
    """Each query's k nearest rows of one shard (global ids), as VectorIndex.knn."""
    found = _index(items, kind).knn(queries, k)
    return Neighbours(np.where(found.ids >= 0, found.ids + item_start, -1), found.similarity)


def merge_pairs(parts: list[Pairs]) -> Pairs:
    """The tasks' pairs in vectors.self_join's order (by a, then b)."""
    parts = [p for p in parts if len(p.a)] or [_empty_pairs()]
    a, b, sims = (np.concatenate(f) for f in zip(*parts))
    order = np.lexsort((b, a))
    return Pairs(a[order].astype(np.int64), b[order].astype(np.int64), sims[order])


def merge_knn(parts: list[Neighbours], k: int) -> Neighbours:
    """The best k of each query over the shards' lists: similarity, then lower id (as
    VectorIndex.knn orders a row), missing (-1) last."""
    ids = np.concatenate([p.ids for p in parts], axis=1)
    sims = np.concatenate([p.similarity for p in parts], axis=1)
    sims = np.where(ids >= 0, sims, -np.inf).astype(np.float32)
    ids, sims = vectors._sort_rows(ids, sims)
    return Neighbours(ids[:, :k], sims[:, :k])


def _shards(array: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    return [array[starts[s]:starts[s + 1]] for s in range(len(starts) - 1)]


def self_join_local(array: Any, min_similarity: float, shards: int = 1,
                    kind: str = "flat") -> Pairs:
    """The Ray join's tasks one after another in this process (tests, and a reference):
    with kind "flat", vectors.self_join's Pairs."""
    array = vectors._check(array)
    starts = shard_starts(len(array), shards)
    parts = _shards(array, starts)
    items = [shard_index(p, kind) for p in parts] if kind == "ivf" else parts
    return merge_pairs([join_blocks(parts[i], int(starts[i]), items[j], int(starts[j]),
                                    float(min_similarity), kind)
                        for i, j in block_pairs(len(parts))])


def knn_local(array: Any, k: int, shards: int = 1, kind: str = "flat") -> Neighbours:
    """The Ray knn's tasks in this process: vectors.build(array).knn(array, k) of a flat
    index, within the float tolerance of the module docstring."""
    array = vectors._check(array)
    if k < 0:
        raise ValueError(f"k must be >= 0, not {k}")
    starts = shard_starts(len(array), shards)
    parts = _shards(array, starts)
    indexes = [shard_index(p, kind) for p in parts] if kind == "ivf" else parts
    rows = [merge_knn([knn_blocks(q, items, int(starts[j]), k, kind)
                       for j, items in enumerate(indexes)], k) for q in parts]
    return Neighbours(*(np.concatenate(f) for f in zip(*rows)))


def _compact(array: np.ndarray) -> np.ndarray:
    """float16 where that holds every value exactly (stored descriptors are float16, loaded
    as float32): half the object store and the network, and the same unit vectors."""
    if array.dtype.itemsize <= 2:
        return array
    half = np.empty(array.shape, np.float16)
    for start in range(0, len(array), vectors.ADD_BLOCK):  # small temporaries; stop early
        block = array[start:start + vectors.ADD_BLOCK]
        with np.errstate(over="ignore"):
            half[start:start + len(block)] = block
        if not np.array_equal(half[start:start + len(block)].astype(array.dtype), block,
                              equal_nan=True):
            return array
    return half


def _run(address: str | None, array: np.ndarray, shards: int | None, pairs: bool,
         submit: Callable, collect: Callable | None = None) -> Any:
    """Join (or start) Ray, put each shard in the object store once, run `submit`'s tasks
    (submit(ray, refs, starts) -> refs of results) and return collect(ray, those refs)
    (default: their results, in order)."""
    from ..runners.ray import ray_session

    with ray_session(address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = shards or shard_count(len(array), array.shape[1], cpus, pairs)
        starts = shard_starts(len(array), count)
        refs = [ray.put(part) for part in _shards(_compact(array), starts)]
        try:
            results = submit(ray, refs, starts)
            return collect(ray, results) if collect else ray.get(results)
        except ray.exceptions.RayError as exc:
            raise RunnerError(f"the descriptor search failed on the Ray cluster: {exc}"
                              ) from None


def self_join_ray(array: Any, min_similarity: float, address: str | None = None,
                  shards: int | None = None, kind: str = "flat") -> Pairs:
    """vectors.self_join on a Ray cluster (`address`: None starts or joins a local Ray
    instance, "auto" joins RAY_ADDRESS, else host:port); `shards`: None sizes them by
    SHARD_BYTES and the cluster's CPUs."""
    array = vectors._check(array)
    _check_kind(kind)
    if len(array) < 2:
        return _empty_pairs()

    def submit(ray, refs, starts):
        from ..runners.ray import one_cpu_task

        task = one_cpu_task(ray, _join_task)
        items = _remote_indexes(ray, refs, kind)
        return [task.remote(refs[i], int(starts[i]), items[j], int(starts[j]),
                            float(min_similarity), kind)
                for i, j in block_pairs(len(refs))]

    return merge_pairs(_run(address, array, shards, True, submit))


def knn_ray(array: Any, k: int, address: str | None = None, shards: int | None = None,
            kind: str = "flat") -> Neighbours:
    """vectors.build(array).knn(array, k) (flat) on a Ray cluster, within the module
    docstring's tolerance; the driver merges one query shard at a time."""
    array = vectors._check(array)
    _check_kind(kind)
    if k < 0:
        raise ValueError(f"k must be >= 0, not {k}")
    if len(array) == 0 or k == 0:
        return vectors.build(array, "flat").knn(array, k)

    def submit(ray, refs, starts):
        from ..runners.ray import one_cpu_task

        task = one_cpu_task(ray, _knn_task)
        items = _remote_indexes(ray, refs, kind)
        return [task.remote(refs[i], items[j], int(starts[j]), k, kind)
                for i in range(len(refs)) for j in range(len(refs))]

    def collect(ray, found):  # one query shard's S lists in memory at a time
        count = math.isqrt(len(found))
        rows = [merge_knn(ray.get(found[i * count:(i + 1) * count]), k) for i in range(count)]
        return Neighbours(*(np.concatenate(f) for f in zip(*rows)))

    return _run(address, array, shards, False, submit, collect)


def _remote_indexes(ray, refs: list, kind: str) -> list:
    """The shards as tasks meet them: their refs (flat), or refs of their IVF indexes, each
    trained once by a task of its own."""
    if kind != "ivf":
        return refs
    from ..runners.ray import one_cpu_task

    build = one_cpu_task(ray, _index_task)
    return [build.remote(ref, kind) for ref in refs]


def _one_thread():
    """A task has one CPU: one BLAS / OpenMP thread (FAISS would start one per core)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _index_task(items: np.ndarray, kind: str) -> ShardIndex:
    with _one_thread():
        return shard_index(items, kind)


def _join_task(left: np.ndarray, left_start: int, right: Items, right_start: int,
               min_similarity: float, kind: str) -> Pairs:
    with _one_thread():
        return join_blocks(left, left_start, right, right_start, min_similarity, kind)


def _knn_task(queries: np.ndarray, items: Items, item_start: int, k: int,
              kind: str) -> Neighbours:
    with _one_thread():
        return knn_blocks(queries, items, item_start, k, kind)
