"""The Hamming self-join on a Ray cluster: the same Hits as binary.self_join, computed by
tasks that each join whole buckets.

Buckets: the code is cut into blocks by multi-index hashing's plan (mih.best_plan: at r = 8
and 17,000-106,000 pictures, four blocks of 16 bits probed to radii 2, 1, 1, 1; radius + 1
blocks probed exactly, radii 0, are one of the plans it weighs). Two codes within `radius`
bits are within radii[j] of each other on some block j (the pigeonhole principle), so every
comparison the local join makes (query variant v of a against b's identity) is found in some
bucket (block j, value): the variant codes are the bucket's members, and an identity code
probes every bucket within radii[j] of its block value, with mih's own loop
(_mih_kernels.block_search). The tables hold the 8N variant codes and the N identity codes
probe them: 8x fewer probes than the other way round, the same comparisons.

One row per pair, without a shuffle: a comparison is reported only from the first block that
can reach it (the rule mih applies), and a pair (a < b) only through its first comparison
within the radius in a fixed order (a's variants against b, then b's against a), carrying the
best (distance, variant) of all 2V comparisons, as binary._best_per_pair keeps. The driver
concatenates and sorts; everything after the join (orientation rule, confirming hash,
thumbnails, linkage) stays on the driver, unchanged.

Tasks: the driver counts each bucket's comparisons (members x identity codes within reach)
and cuts every block's values into aligned ranges (a prefix of the block's bits) of about
equal work, halving a range until it fits a task's share; a single value over a share (many
blank pictures with equal codes) has its members split across tasks.

Ray is an optional extra: it is imported inside the functions that use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import RunnerError
from ..methods.dihedral import INVERSE
from . import mih
from .binary import Hits, _empty, concat

MIN_TASK_WORK = 1 << 22  # comparisons below which a task is not worth its start
TASKS_PER_CPU = 4  # tasks per cluster CPU: small enough to balance, few enough to start
KEY_CHUNK = 1 << 20  # codes whose block values are computed at once (bounds memory)
PROBERS_PER_CALL = 256  # identity codes probing at once: bounds the comparisons held (a
# blank picture's code meets 8 x the blanks in one bucket)
PAIR_BATCH = 1 << 18  # comparisons the pair rule takes at once (its NumPy calls' fixed cost)

_masks = lru_cache(maxsize=None)(mih._masks)


def make_plan(n_codes: int, bits: int, radius: int, n_blocks: int | None = None) -> mih.Plan:
    """The blocks: mih's cheapest plan for identity codes probing `n_codes` variant codes (its
    measured probe and candidate costs), or `n_blocks` blocks (radius + 1: exact blocks;
    more, narrower ones where a block would be too wide)."""
    plan = (mih.best_plan(max(1, n_codes), bits, radius)[0] if n_blocks is None else
            mih.make_plan(bits, radius, max(n_blocks, math.ceil(bits / mih.MAX_BLOCK_BITS))))
    if plan is None:
        raise ValueError(f"no block plan for {bits} bits at radius {radius}")
    return plan


def as_words(codes: np.ndarray) -> np.ndarray:
    """(N, V, nbytes) uint8 -> (N, V, words) big-endian uint64, zero-padded to 64 bits (the
    padding is equal in every code, so no distance changes)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    pad = -codes.shape[-1] % 8
    if pad:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (pad,), np.uint8)], -1)
    return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)


def _key_chunks(codes: np.ndarray, start: int, width: int):
    """(first row, block values) of (n, words) codes, KEY_CHUNK rows at a time."""
    from . import _mih_kernels as k

    for s in range(0, len(codes), KEY_CHUNK):
        yield s, k.block_keys(np.ascontiguousarray(codes[s:s + KEY_CHUNK]), start, width)


def _histogram(codes: np.ndarray, start: int, width: int) -> np.ndarray:
    counts = np.zeros(1 << width, dtype=np.int64)
    for _, keys in _key_chunks(codes, start, width):
        counts += np.bincount(keys, minlength=1 << width)
    return counts


def _distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.shape[-1] == 1:  # one word (64-bit codes): no sum over words to make
        return np.bitwise_count(x[..., 0] ^ y[..., 0])
    return np.bitwise_count(x ^ y).sum(axis=-1, dtype=np.int32)


@dataclass(frozen=True)
class Task:
    """The variant codes whose value on block `block` starts with the `bits`-bit `prefix`,
    against every identity code within reach; with parts > 1, one value (bits = the block's
    width) whose codes are split in `parts` and this task takes part `part`."""

    block: int
    prefix: int
    bits: int
    part: int = 0
    parts: int = 1
    work: int = 0  # comparisons


def plan_tasks(words: np.ndarray, plan: mih.Plan, n_tasks: int,
               min_work: int | None = None) -> list[Task]:
    """Tasks of about equal work (comparisons) over every bucket, none smaller than
    `min_work` unless it is all there is."""
    return tasks_of_counts(block_counts(words, plan), plan, n_tasks, min_work)


def block_counts(words: np.ndarray, plan: mih.Plan) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per block of `plan`: how many variant codes (members) and identity codes (probers)
    have each block value. Counts of parts of the codes add up to the counts of the whole."""
    flat = words.reshape(-1, words.shape[-1])
    return [(_histogram(flat, start, width), _histogram(words[:, 0], start, width))
            for start, width in zip(plan.starts, plan.widths)]


def tasks_of_counts(counts: list[tuple[np.ndarray, np.ndarray]], plan: mih.Plan,
                    n_tasks: int, min_work: int | None = None) -> list[Task]:
    """plan_tasks from the block counts (block_counts) of the codes."""
    blocks = []
    for (members, probers), width, radius in zip(counts, plan.widths, plan.radii):
        work = np.zeros((1 << width) + 1, dtype=np.int64)
        work[1:] = members * _reach(probers, width, radius)
        blocks.append((members, np.cumsum(work)))
    total = sum(int(cum[-1]) for _, cum in blocks)
    share = max(MIN_TASK_WORK if min_work is None else min_work,
                math.ceil(total / max(1, n_tasks)))
    tasks = []
    for j, (members, cum) in enumerate(blocks):
        width = plan.widths[j]
        stack = [(0, 0)]  # (prefix, bits): halve a range until its work fits a share
        while stack:
            prefix, bits = stack.pop()
            shift = width - bits
            work = int(cum[(prefix + 1) << shift] - cum[prefix << shift])
            if work == 0:
                continue
            if work <= share:
                tasks.append(Task(j, prefix, bits, work=work))
            elif bits < width:
                stack += [(2 * prefix + 1, bits + 1), (2 * prefix, bits + 1)]
            else:  # one value with too much work: split its members across tasks
                parts = min(math.ceil(work / share), int(members[prefix]))
                tasks += [Task(j, prefix, bits, p, parts, work // parts) for p in range(parts)]
    return tasks


def _reach(counts: np.ndarray, width: int, radius: int) -> np.ndarray:
    """For every block value, how many identity codes (`counts`: their histogram) lie within
    `radius` bits of it: bit by bit, at[d] counts the codes d bits away on the bits seen so
    far (width x radius passes over the 2^width values, instead of one per value of the
    ball, whose gathers from a large histogram cost ~20 s at 1M codes and 22-bit blocks)."""
    at = [counts] + [np.zeros_like(counts)] * min(radius, width)
    for bit in range(width):  # x[v ^ (1 << bit)] for every v is the flip below
        at = [at[0]] + [at[d] + at[d - 1].reshape(-1, 2, 1 << bit)[:, ::-1].reshape(-1)
                        for d in range(1, len(at))]
    return sum(at)


def run_task(words: np.ndarray, plan: mih.Plan, radius: int, task: Task) -> Hits:
    """The pairs reported from one task's buckets (a Ray task's body; no Ray here).

    words: (N, V, w) from as_words. A pair (a < b) is returned by at most one task, with the
    best (distance, variant) over a's variants against b and b's against a; the variant is
    the transform from a to b, as in binary.self_join.
    """
    from . import _mih_kernels as k

    flat = words.reshape(-1, words.shape[-1])
    identity = np.ascontiguousarray(words[:, 0])
    j, bits = task.block, task.bits
    start, width, block_radius = plan.starts[j], plan.widths[j], plan.radii[j]
    # The task's codes share their first `bits` bits: its table is indexed by the `low` bits
    # after the first `top` (at least one bit, which the kernel needs), so a task's table is
    # 2^low entries, and all the tasks of a block together are about one block's table.
    top = min(bits, width - 1)
    low = width - top
    ids, keys = [], []
    for s, chunk in _key_chunks(flat, start, width):
        inside = np.flatnonzero(chunk >> (width - bits) == task.prefix)
        ids.append(s + inside)
        keys.append(chunk[inside] & ((1 << low) - 1))
    ids, keys = np.concatenate(ids), np.concatenate(keys)
    if task.parts > 1:  # one value: any cut of its codes is in block-value order
        ids = np.array_split(ids, task.parts)[task.part]
        keys = keys[:ids.size]
    order = np.argsort(keys, kind="stable")  # mih.MultiIndex's layout: by block value
    ids, keys = ids[order], keys[order]
    offsets = np.zeros((1 << low) + 1, dtype=np.int32)
    np.cumsum(np.bincount(keys, minlength=1 << low), out=offsets[1:])
    sorted_words = np.ascontiguousarray(flat[ids]).ravel()
    # The probers: identity codes whose first `top` bits are within the block's radius of the
    # task's; each group of equal first bits probes the low bits with the radius left.
    prober_keys = np.concatenate([chunk for _, chunk in _key_chunks(identity, start, width)])
    task_top = task.prefix >> (bits - top)
    near = np.flatnonzero(np.bitwise_count((prober_keys >> low) ^ task_top) <= block_radius)
    near = near[np.argsort(prober_keys[near], kind="stable")]
    near_keys = prober_keys[near]
    lows = np.full(len(identity), -1, dtype=np.int64)
    starts, widths = list(plan.starts), list(plan.widths)
    starts[j], widths[j] = start + top, low  # earlier blocks are checked whole, as in mih
    arrays = [np.asarray(x, dtype=np.int64) for x in (starts, widths, plan.radii)]
    found, held, n_held = [], [], 0
    for high in _masks(top, block_radius).astype(np.int64):
        group = task_top ^ high
        lo, hi = np.searchsorted(near_keys, [group << low, (group + 1) << low])
        masks = _masks(low, block_radius - int(high).bit_count())
        for s in range(lo, hi, PROBERS_PER_CALL):
            held.append(k.block_search(
                identity, lows, near[s:min(hi, s + PROBERS_PER_CALL)], j, int(radius), flat,
                *arrays, ids, sorted_words, offsets, masks))
            n_held += held[-1][0].size
            if n_held >= PAIR_BATCH:
                found.append(_pairs(words, held, radius))
                held, n_held = [], 0
    return concat(found + [_pairs(words, held, radius)])


def _pairs(words: np.ndarray, held: list, radius: int) -> Hits:
    """The pair rule over block_search's (identity row, variant code, distance) results."""
    if not held:
        return _empty()
    item, member = (np.concatenate([h[i] for h in held]) for i in (0, 1))
    row, variant = member // words.shape[1], member % words.shape[1]
    keep = row != item
    return _first_of_pair(words, row[keep], variant[keep], item[keep], radius)


def _first_of_pair(words: np.ndarray, row: np.ndarray, variant: np.ndarray,
                   item: np.ndarray, radius: int) -> Hits:
    """Of comparisons (query `row` at `variant`, `item`) within the radius, those that are
    their pair's first within the radius, with the pair's best distance and variant."""
    n_variants = words.shape[1]
    a, b = np.minimum(row, item), np.maximum(row, item)
    # every comparison of the pair in order: a's variants against b, then b's against a;
    # the earlier ones are checked one position at a time, so that where most are within
    # the radius (blank or near-equal pictures) most rows drop out at the first
    this = np.where(row < item, variant, n_variants + variant)
    keep = np.ones(a.size, dtype=bool)
    pending = np.flatnonzero(this > 0)
    for t in range(2 * n_variants - 1):
        x, y = (a, b) if t < n_variants else (b, a)
        earlier = _distance(words[x[pending], t % n_variants], words[y[pending], 0]) <= radius
        keep[pending[earlier]] = False
        pending = pending[~earlier]
        pending = pending[this[pending] > t + 1]
    a, b = a[keep], b[keep]
    every = np.concatenate([_distance(words[a], words[b, 0][:, None, :]),
                            _distance(words[b], words[a, 0][:, None, :])], axis=1)  # (K, 2V)
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


def sorted_hits(hits: Hits) -> Hits:
    """In binary.self_join's order: by first row, then second."""
    return hits.take(np.lexsort((hits.item, hits.query)))


def self_join_local(codes: np.ndarray, radius: int, n_tasks: int = 1,
                    min_work: int | None = None, n_blocks: int | None = None) -> Hits:
    """The distributed join's tasks run one after another in this process (tests, and a
    reference for the Ray path): the same Hits as binary.self_join. `n_blocks` forces the
    block count (radius + 1: exact blocks)."""
    words = as_words(codes)
    plan = make_plan(words.shape[0] * words.shape[1], words.shape[-1] * 64, int(radius),
                     n_blocks)
    tasks = plan_tasks(words, plan, n_tasks, min_work)
    return sorted_hits(concat([run_task(words, plan, int(radius), t) for t in tasks]))


def self_join_ray(codes: np.ndarray, radius: int, address: str | None = None,
                  n_tasks: int | None = None, n_blocks: int | None = None) -> Hits:
    """binary.self_join on a Ray cluster: codes (N, V, nbytes), all pairs a < b within
    `radius` under some variant. `address`: None starts or joins a local Ray instance,
    "auto" joins RAY_ADDRESS, else that host:port. The codes go to the object store once."""
    if len(codes) == 0:
        return _empty()
    from ..runners.ray import one_cpu_task, ray_session

    with ray_session(address) as ray:
        words = as_words(codes)
        plan = make_plan(words.shape[0] * words.shape[1], words.shape[-1] * 64, int(radius),
                         n_blocks)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        tasks = plan_tasks(words, plan, n_tasks or TASKS_PER_CPU * cpus)
        remote = one_cpu_task(ray, run_task)
        shared = ray.put(words)
        refs = [remote.remote(shared, plan, int(radius), t) for t in tasks]
        try:
            parts = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise RunnerError(f"the self-join failed on the Ray cluster: {exc}") from None
    return sorted_hits(concat(parts))
