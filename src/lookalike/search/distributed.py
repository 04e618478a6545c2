"""The Hamming self-join on a Ray cluster: the same Hits as binary.self_join, computed by
tasks that each join whole buckets.

Buckets: the code is cut into m = radius + 1 blocks (mih.make_plan; more, narrower ones for
long codes). Two codes within `radius` bits agree exactly on at least one block (the
pigeonhole principle), so every pair the local join finds shares a bucket (block j, value of
block j): items enter by their identity code, queries by each of their V variant codes,
exactly the comparisons the local join makes (query variant v of a against b's identity).

One row per pair, without a shuffle: a (query variant, item) comparison is reported only from
the lowest block on which the two codes agree, and a pair (a < b) only through its first
comparison within the radius in a fixed order (a's variants against b, then b's against a),
carrying the best (distance, variant) of all 2V comparisons, as binary._best_per_pair keeps.
The driver concatenates and sorts; everything after the join (orientation rule, confirming
hash, thumbnails, linkage) stays on the driver, unchanged.

Skew (one huge bucket, such as many blank pictures with equal codes): a bucket whose
comparisons exceed a task's share is split across tasks by blocks of its queries.

Ray is an optional extra: it is imported inside the functions that use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import LookalikeError, RunnerError
from ..methods.dihedral import INVERSE
from . import mih
from .binary import Hits, _empty

CHUNK = 1 << 21  # comparisons a task computes at once (bounds a task's memory)
MIN_TASK_WORK = 1 << 22  # comparisons below which a task is not worth its start
TASKS_PER_CPU = 4  # tasks per cluster CPU: small enough to balance, few enough to start


@dataclass(frozen=True)
class Blocks:
    """The probed blocks: block j covers bits starts[j] .. starts[j] + widths[j] - 1."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]


def make_blocks(bits: int, radius: int) -> Blocks:
    """radius + 1 blocks of near-equal width (at most mih.MAX_BLOCK_BITS), all probed
    exactly; one block of no bits (everything in one bucket) when the radius covers the code."""
    if radius >= bits:
        return Blocks((0,), (0,))
    n_blocks = max(radius + 1, math.ceil(bits / mih.MAX_BLOCK_BITS))
    plan = mih.make_plan(bits, radius, n_blocks)
    if plan is None or any(plan.radii):  # cannot happen with n_blocks > radius
        raise ValueError(f"no exact block plan for {bits} bits at radius {radius}")
    return Blocks(plan.starts, plan.widths)


def as_words(codes: np.ndarray) -> np.ndarray:
    """(N, V, nbytes) uint8 -> (N, V, words) big-endian uint64, zero-padded to 64 bits (the
    padding is equal in every code, so no distance changes)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    pad = -codes.shape[-1] % 8
    if pad:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (pad,), np.uint8)], -1)
    return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)


def block_keys(words: np.ndarray, start: int, width: int) -> np.ndarray:
    """Value of bits start .. start + width - 1 of each (…, words) code, as int64."""
    shape = words.shape[:-1]
    flat = np.ascontiguousarray(words.reshape(-1, words.shape[-1]))
    if width == 0:
        return np.zeros(shape, dtype=np.int64)
    from . import _mih_kernels as k

    return k.block_keys(flat, start, width).reshape(shape)


def _distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.shape[-1] == 1:  # one word (64-bit codes): no sum over words to make
        return np.bitwise_count(x[..., 0] ^ y[..., 0])
    return np.bitwise_count(x ^ y).sum(axis=-1, dtype=np.int32)


def join_bucket(words: np.ndarray, queries: np.ndarray, items: np.ndarray, block: int,
                blocks: Blocks, radius: int) -> Hits:
    """The pairs reported from one bucket of block `block`: queries (flat row * V + variant)
    and items (rows) whose block values are equal. Pure NumPy, no Ray.

    words: (N, V, w) from as_words. A pair (a < b) is returned at most once over all buckets,
    with the best (distance, variant) over a's variants against b and b's against a; the
    variant is the transform from a to b, as in binary.self_join.
    """
    n_variants = words.shape[1]
    flat = words.reshape(-1, words.shape[-1])
    identity = words[:, 0]
    queries = np.asarray(queries, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    parts = []
    step = max(1, CHUNK // max(1, items.size))
    for s in range(0, queries.size, step):
        q = queries[s:s + step]
        d = _distance(flat[q][:, None, :], identity[items][None, :, :])  # (q, items)
        qi, ii = np.nonzero(d <= radius)
        qflat, item = q[qi], items[ii]
        row = qflat // n_variants
        keep = row != item
        qflat, item, row = qflat[keep], item[keep], row[keep]
        # this comparison is reported from its lowest equal block only
        for j in range(block):
            start, width = blocks.starts[j], blocks.widths[j]
            equal = (block_keys(flat[qflat], start, width)
                     == block_keys(identity[item], start, width))
            qflat, item, row = qflat[~equal], item[~equal], row[~equal]
        if qflat.size:
            parts.append(_first_of_pair(words, row, qflat % n_variants, item, radius))
    return _concat(parts)


def _first_of_pair(words: np.ndarray, row: np.ndarray, variant: np.ndarray,
                   item: np.ndarray, radius: int) -> Hits:
    """Of comparisons (query `row` at `variant`, `item`) within the radius, those that are
    their pair's first within the radius, with the pair's best distance and variant."""
    n_variants = words.shape[1]
    a, b = np.minimum(row, item), np.maximum(row, item)
    # every comparison of the pair: a's variants against b, then b's against a
    forward = _distance(words[a], words[b, 0][:, None, :])  # (K, V)
    backward = _distance(words[b], words[a, 0][:, None, :])
    every = np.concatenate([forward, backward], axis=1)  # (K, 2V)
    first = np.argmax(every <= radius, axis=1)
    this = np.where(row < item, variant, n_variants + variant)
    keep = first == this
    every, a, b = every[keep], a[keep], b[keep]
    # As binary.self_join: each direction keeps its lowest query variant among equal
    # distances, then b's variant v (which turns b into a) becomes its inverse (a to b), and
    # the two directions compare on (distance, variant from a to b).
    variants = np.arange(n_variants, dtype=np.int64)
    inverse = np.asarray(INVERSE, dtype=np.int64) if n_variants == len(INVERSE) else variants
    best = []
    for half in (every[:, :n_variants], every[:, n_variants:]):
        rank = np.where(half <= radius, (half.astype(np.int64) << 3) | variants,
                        np.iinfo(np.int64).max).min(axis=1)
        best.append(rank)
    found = best[1] != np.iinfo(np.int64).max
    best[1][found] = (best[1][found] >> 3 << 3) | inverse[best[1][found] & 7]
    best = np.minimum(best[0], best[1])
    return Hits(a, b, (best >> 3).astype(np.int32), (best & 7).astype(np.int8))


def _concat(parts: list[Hits]) -> Hits:
    if not parts:
        return _empty()
    return Hits(*(np.concatenate([getattr(p, f) for p in parts])
                  for f in ("query", "item", "distance", "variant")))


@dataclass(frozen=True)
class Task:
    """Buckets of block `block` with values lo .. hi; with parts > 1, one bucket (lo == hi)
    whose queries are split in `parts` and this task takes part `part`."""

    block: int
    lo: int
    hi: int
    part: int = 0
    parts: int = 1
    work: int = 0  # comparisons


def plan_tasks(words: np.ndarray, blocks: Blocks, n_tasks: int,
               min_work: int | None = None) -> list[Task]:
    """Tasks of about equal work (query x item comparisons) over every bucket, none smaller
    than `min_work` unless it is all there is."""
    keyed = []
    for j, (start, width) in enumerate(zip(blocks.starts, blocks.widths)):
        item_keys, item_counts = np.unique(block_keys(words[:, 0], start, width),
                                           return_counts=True)
        query_keys, query_counts = np.unique(block_keys(words, start, width),
                                             return_counts=True)
        keys, qi, ii = np.intersect1d(query_keys, item_keys, assume_unique=True,
                                      return_indices=True)
        keyed.append((j, keys, query_counts[qi].astype(np.int64) * item_counts[ii]))
    total = sum(int(w.sum()) for _, _, w in keyed)
    least = MIN_TASK_WORK if min_work is None else min_work
    share = max(least, math.ceil(total / max(1, n_tasks)))
    tasks = []
    for j, keys, work in keyed:
        lo = hi = None
        acc = 0
        for key, w in zip(keys.tolist(), work.tolist()):
            if w > share:  # a huge bucket: split its queries across tasks
                if lo is not None:
                    tasks.append(Task(j, lo, hi, work=acc))
                    lo, acc = None, 0
                parts = math.ceil(w / share)
                tasks += [Task(j, key, key, p, parts, w // parts) for p in range(parts)]
                continue
            if lo is not None and acc + w > share:
                tasks.append(Task(j, lo, hi, work=acc))
                lo, acc = None, 0
            lo = key if lo is None else lo
            hi, acc = key, acc + w
        if lo is not None:
            tasks.append(Task(j, lo, hi, work=acc))
    return tasks


def run_task(words: np.ndarray, blocks: Blocks, radius: int, task: Task) -> Hits:
    """The pairs reported from the buckets of one task (a Ray task's body; no Ray here)."""
    start, width = blocks.starts[task.block], blocks.widths[task.block]
    item_keys = block_keys(words[:, 0], start, width)
    query_keys = block_keys(words, start, width).ravel()
    items = np.flatnonzero((item_keys >= task.lo) & (item_keys <= task.hi))
    queries = np.flatnonzero((query_keys >= task.lo) & (query_keys <= task.hi))
    items = items[np.argsort(item_keys[items], kind="stable")]
    queries = queries[np.argsort(query_keys[queries], kind="stable")]
    item_cuts = _runs(item_keys[items])
    query_cuts = _runs(query_keys[queries])
    parts = []
    for key, (q0, q1) in query_cuts.items():
        if key not in item_cuts:
            continue
        i0, i1 = item_cuts[key]
        bucket = queries[q0:q1]
        if task.parts > 1:
            bucket = np.array_split(bucket, task.parts)[task.part]
        parts.append(join_bucket(words, bucket, items[i0:i1], task.block, blocks, radius))
    return _concat(parts)


def _runs(sorted_keys: np.ndarray) -> dict[int, tuple[int, int]]:
    """key -> (first, end) positions of each run of equal keys."""
    if sorted_keys.size == 0:
        return {}
    cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [sorted_keys.size]])
    return {int(sorted_keys[s]): (int(s), int(e)) for s, e in zip(starts, ends)}


def sorted_hits(hits: Hits) -> Hits:
    """In binary.self_join's order: by first row, then second."""
    return hits.take(np.lexsort((hits.item, hits.query)))


def self_join_local(codes: np.ndarray, radius: int, n_tasks: int = 1,
                    min_work: int | None = None) -> Hits:
    """The distributed join's tasks run one after another in this process (tests, and a
    reference for the Ray path): the same Hits as binary.self_join."""
    words = as_words(codes)
    blocks = make_blocks(words.shape[-1] * 64, int(radius))
    tasks = plan_tasks(words, blocks, n_tasks, min_work)
    return sorted_hits(_concat([run_task(words, blocks, int(radius), t) for t in tasks]))


def self_join_ray(codes: np.ndarray, radius: int, address: str | None = None,
                  n_tasks: int | None = None) -> Hits:
    """binary.self_join on a Ray cluster: codes (N, V, nbytes), all pairs a < b within
    `radius` under some variant. `address`: None starts or joins a local Ray instance,
    "auto" joins RAY_ADDRESS, else that host:port. The codes go to the object store once."""
    if len(codes) == 0:
        return _empty()
    try:
        import ray
    except ImportError:
        raise LookalikeError("--runner ray needs Ray: pip install 'lookalike[ray]'") from None
    from ..runners.ray import TASK_RETRIES, _connect

    joined = _connect(ray, address)
    try:
        words = as_words(codes)
        blocks = make_blocks(words.shape[-1] * 64, int(radius))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        tasks = plan_tasks(words, blocks, n_tasks or TASKS_PER_CPU * cpus)
        remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_ray_task)
        shared = ray.put(words)
        refs = [remote.remote(shared, blocks, int(radius), t) for t in tasks]
        try:
            parts = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise RunnerError(f"the self-join failed on the Ray cluster: {exc}") from None
    finally:
        if joined:
            ray.shutdown()
    return sorted_hits(_concat(parts))


def _ray_task(words: np.ndarray, blocks: Blocks, radius: int, task: Task) -> Hits:
    return run_task(words, blocks, radius, task)
