"""Exact Hamming range search by multi-index hashing (Norouzi, Punjani and Fleet, 2012).

The code is cut into m blocks of about log2(N) bits, each with a table from block value to
items. If two codes are within r bits, some block j is within r_j bits, where the r_j add up
to r - m + 1 (the pigeonhole principle), so probing every value within r_j of the query's
block j finds every answer. With m > r + 1 blocks, r + 1 of them are enough. Candidates are
checked on the whole code, and one found through several blocks is kept only from the first
block that can reach it: no duplicates, no sets.

The loops are compiled by numba and release the GIL, so queries run on threads.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

MAX_BLOCK_BITS = 24  # a table of 2^24 offsets is 64 MB
THREAD_CHUNK = 65_536  # query rows per task


@dataclass(frozen=True)
class Plan:
    """Block j covers bits starts[j] .. starts[j] + widths[j] - 1 and is probed to radii[j]."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]
    radii: tuple[int, ...]

    def probes(self) -> int:
        return sum(_ball(w, r) for w, r in zip(self.widths, self.radii))

    def candidates(self, n_items: int) -> float:
        """Expected candidates per query for uniform random codes."""
        return sum(n_items * _ball(w, r) / 2.0 ** w for w, r in zip(self.widths, self.radii))


def _ball(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(radius + 1))


def make_plan(bits: int, radius: int, n_blocks: int) -> Plan | None:
    """Cut the code into `n_blocks` contiguous blocks of near-equal width and probe the first
    min(n_blocks, radius + 1) of them; None if a probed block would be too wide."""
    m = min(n_blocks, bits)
    probed = min(m, radius + 1)
    widths = [bits // m + (1 if j < bits % m else 0) for j in range(m)]
    if max(widths[:probed]) > MAX_BLOCK_BITS:
        return None
    budget = radius - probed + 1  # the probed blocks' radii add up to this
    radii = [budget // probed + (1 if j < budget % probed else 0) for j in range(probed)]
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int).tolist()
    return Plan(tuple(starts[:probed]), tuple(widths[:probed]), tuple(radii))


# CPU nanoseconds, measured on a 2-core x86 machine with 1M random 64-bit codes
# (bench/bench_hamming.py): one table probe, one candidate checked, one 64-bit comparison in
# FAISS brute force, and building one block's table, per item.
PROBE_COST = 14.0
CANDIDATE_COST = 3.4
BRUTE_COST_PER_WORD = 0.65
BUILD_COST_PER_ITEM_BLOCK = 470.0
# Below this much brute-force work FAISS answers at once; no need to load compiled loops.
MIN_BRUTE_COST = 3e8


@lru_cache(maxsize=256)
def best_plan(n_items: int, bits: int, radius: int) -> tuple[Plan | None, float]:
    """The cheapest block plan and its cost per query; (None, inf) if none fits."""
    radius = min(radius, bits)  # a wider ball holds nothing more
    best, best_cost = None, math.inf
    for m in range(1, bits + 1):
        plan = make_plan(bits, radius, m)
        if plan is None:
            continue
        cost = PROBE_COST * plan.probes() + CANDIDATE_COST * plan.candidates(n_items)
        if cost < best_cost:
            best, best_cost = plan, cost
    return best, best_cost


def worth_it(n_items: int, n_queries: int, bits: int, radius: int) -> bool:
    """Whether multi-index hashing beats brute force for this many items, queries and radius."""
    plan, per_query = best_plan(n_items, bits, radius)
    if plan is None:
        return False
    build = BUILD_COST_PER_ITEM_BLOCK * n_items * len(plan.widths)
    brute = BRUTE_COST_PER_WORD * n_items * (bits // 64) * n_queries
    return brute > MIN_BRUTE_COST and build + per_query * n_queries < brute


def _masks(width: int, radius: int) -> np.ndarray:
    """Every value of `width` bits with at most `radius` bits set, fewest bits first."""
    out = [0]
    for k in range(1, radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(width), k)]
    return np.asarray(out, dtype=np.uint32)


class MultiIndex:
    """Tables over `items` (N, nbytes) uint8, nbytes a multiple of 8, for range search."""

    def __init__(self, items: np.ndarray, radius: int, plan: Plan | None = None) -> None:
        from . import _mih_kernels as k

        self.words = _as_words(items)
        self.radius = int(radius)
        bits = self.words.shape[1] * 64
        self.plan = plan or best_plan(len(items), bits, radius)[0]
        if self.plan is None:
            raise ValueError(f"no block plan for {bits} bits at radius {radius}")
        p = self.plan
        self.starts = np.asarray(p.starts, dtype=np.int64)
        self.widths = np.asarray(p.widths, dtype=np.int64)
        self.radii = np.asarray(p.radii, dtype=np.int64)
        # Per block, a copy of the codes in block-value order: a bucket is read as one run.
        self.ids, self.sorted_words, self.offsets = [], [], []
        for start, width in zip(p.starts, p.widths):
            keys = k.block_keys(self.words, start, width)
            order = np.argsort(keys, kind="stable")
            counts = np.bincount(keys, minlength=1 << width)
            offsets = np.zeros((1 << width) + 1, dtype=np.int32)
            np.cumsum(counts, out=offsets[1:])
            self.ids.append(order.astype(np.int64))
            self.sorted_words.append(self.words[order].ravel())
            self.offsets.append(offsets)
        self.masks = [_masks(w, r) for w, r in zip(p.widths, p.radii)]

    def search(self, queries: np.ndarray, above: np.ndarray | None = None,
               threads: int | None = None) -> tuple[np.ndarray, ...]:
        """(query, variant, item, distance) of every item within the radius.

        queries: (Q, V, nbytes). If `above` (Q,) is given, only items with an index greater
        than above[q] are reported (a self-join reports each pair once).
        """
        from . import _mih_kernels as k

        n_queries, n_variants = queries.shape[:2]
        rows = _as_words(queries.reshape(-1, queries.shape[-1]))
        lows = np.full(len(rows), -1, dtype=np.int64) if above is None else \
            np.repeat(np.asarray(above, dtype=np.int64), n_variants)
        tasks = []
        for j, (start, width) in enumerate(zip(self.plan.starts, self.plan.widths)):
            order = np.argsort(k.block_keys(rows, start, width), kind="stable")
            tasks += [(j, order[s:s + THREAD_CHUNK]) for s in range(0, len(order), THREAD_CHUNK)]

        def run(task):
            j, order = task
            return k.block_search(rows, lows, order, j, self.radius, self.words, self.starts,
                                  self.widths, self.radii, self.ids[j], self.sorted_words[j],
                                  self.offsets[j], self.masks[j])

        threads = threads or _cpu_count()
        if threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(run, tasks))
        else:
            parts = [run(t) for t in tasks]
        row, item, distance = (np.concatenate([p[f] for p in parts]) if parts else
                               np.empty(0, dtype=np.int64) for f in range(3))
        return row // n_variants, row % n_variants, item, distance


def _as_words(codes: np.ndarray) -> np.ndarray:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.shape[-1] % 8:
        raise ValueError("multi-index hashing needs codes of a multiple of 64 bits")
    # Big-endian words keep bit i of the code at bit 63 - i % 64 of word i // 64.
    return codes.view(">u8").astype(np.uint64)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
