"""Exact Hamming search over binary codes; never a Python all-pairs loop.

Two engines give the same answers: FAISS brute force (IndexBinaryFlat, in C, in blocks) and
multi-index hashing (mih.py), chosen per call from the number of items and queries and the
radius by a cost model measured on this machine.

Codes carry 8 dihedral variants per picture. The index holds each picture's identity code and
the queries are all 8 variants, so a flipped or rotated copy is found whichever came first,
and only one code per picture is indexed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Iterable

import numpy as np

from ..methods.dihedral import INVERSE
from . import mih

QUERY_BLOCK = 32_768
SMALL_WORK = 5e7  # code comparisons under which FAISS runs on one thread


@dataclass(frozen=True)
class Hits:
    """Query q is within `distance` of indexed item `item`, through query variant `variant`."""

    query: np.ndarray  # (M,) int64
    item: np.ndarray  # (M,) int64
    distance: np.ndarray  # (M,) int32
    variant: np.ndarray  # (M,) int8

    def take(self, rows: np.ndarray) -> "Hits":
        """The hits at `rows` (a mask or indices)."""
        return Hits(self.query[rows], self.item[rows], self.distance[rows], self.variant[rows])


def _index(codes: np.ndarray):
    import faiss

    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(np.ascontiguousarray(codes))
    return index


def _best_per_pair(hits: Hits) -> Hits:
    """Keep the smallest distance (then the lowest variant) of each (query, item)."""
    if hits.query.size == 0:
        return hits
    # (distance, variant) packed in one small integer, so one reduction or one sort of a
    # single key replaces a four-key lexsort (the cost of wide searches, where most items
    # are hits of every variant: calibration at half the code length).
    first_query = int(hits.query.min())
    n_items = int(hits.item.max()) + 1
    pair = (hits.query - first_query) * n_items + hits.item
    rank = (hits.distance.astype(np.int64) << 3) | hits.variant.astype(np.int64)
    n_pairs = (int(hits.query.max()) - first_query + 1) * n_items
    if n_pairs <= max(4 * pair.size, 1 << 16):  # dense: reduce in a table, no sort
        best = np.full(n_pairs, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, pair, rank)
        keys = np.flatnonzero(best != np.iinfo(np.int64).max)
        rank = best[keys]
        return Hits(keys // n_items + first_query, keys % n_items,
                    (rank >> 3).astype(np.int32), (rank & 7).astype(np.int8))
    if n_pairs >= 1 << 51:  # the packed key would overflow int64
        order = np.lexsort((rank, pair))
    else:  # distances below 512 bits: 9 bits, and 3 for the variant
        order = np.argsort((pair << 12) | rank, kind="stable")
    pair = pair[order]
    first = np.ones(pair.size, dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    return hits.take(order[first])


def _empty() -> Hits:
    return Hits(*(np.empty(0, dtype=t) for t in (np.int64, np.int64, np.int32, np.int8)))


DENSE_BLOCK = 1 << 22  # (query variant, item) distances the dense engine computes at once


def engine(n_items: int, n_rows: int, nbytes: int, radius: int) -> str:
    """"mih" or "faiss" for `n_rows` query codes against `n_items` codes. A third engine,
    "dense" (every distance, NumPy), is only for callers that know most items are hits."""
    if nbytes % 8 == 0 and mih.worth_it(n_items, n_rows, nbytes * 8, radius):
        return "mih"
    return "faiss"


class Searcher:
    """Items' identity codes, ready for range queries by one engine.

    expected_rows: how many query codes (queries x variants) will be asked in all; it decides
    whether building multi-index tables pays off.
    """

    def __init__(self, items: np.ndarray, radius: int, expected_rows: int,
                 method: str | None = None) -> None:
        self.radius = int(radius)
        self.method = method or engine(len(items), expected_rows, items.shape[1], radius)
        if len(items) == 0:
            self._index = None
        elif self.method == "dense":
            self._index = np.ascontiguousarray(items)
        elif self.method == "mih":
            self._index = mih.MultiIndex(items, radius)
        else:
            self._index = _index(items)

    def search(self, queries: np.ndarray, above: np.ndarray | None = None) -> Hits:
        """All (query, item) within the radius, at the best variant of each query; with
        `above`, only items whose index is greater than above[query]."""
        if self._index is None or len(queries) == 0:
            return _empty()
        if self.method == "mih":
            q, v, i, d = self._index.search(queries, above)
            return _best_per_pair(Hits(q, i, d.astype(np.int32), v.astype(np.int8)))
        if self.method == "dense":
            hits = _dense_search(self._index, queries, self.radius)
        else:
            hits = _faiss_search(self._index, queries, self.radius)
        if above is not None:
            hits = hits.take(hits.item > np.asarray(above)[hits.query])
        return hits


def search(items: np.ndarray, queries: np.ndarray, radius: int,
           method: str | None = None) -> Hits:
    """All (query, item) within `radius` bits, at the best variant of each query.

    items: (N, nbytes) identity codes; queries: (Q, V, nbytes) codes with V variants.
    method: "mih", "faiss", "dense" or None to choose by cost.
    """
    rows = queries.shape[0] * queries.shape[1] if queries.ndim == 3 else 0
    return Searcher(items, radius, rows, method).search(queries)


def knn(items: np.ndarray, queries: np.ndarray, k: int) -> Hits:
    """The k nearest items of each query, at the best variant; exact, with ties at the k-th
    distance broken by the lower item index. FAISS brute force finds each query's k-th
    distance, then a range search at that distance settles the ties.

    items: (N, nbytes); queries: (Q, V, nbytes). Sorted by query, then distance, then item.
    """
    if len(items) == 0 or len(queries) == 0 or k <= 0:
        return _empty()
    k = min(int(k), len(items))
    index = _index(items)
    n_variants = queries.shape[1]
    best = np.stack([index.search(np.ascontiguousarray(queries[:, v]), k)[0]
                     for v in range(n_variants)], axis=1)  # (Q, V, k) sorted distances
    # Any one variant has k distinct items within its k-th distance, so the true k-th
    # distance (of the per-item minima over variants) is at most the smallest of those.
    kth = best[:, :, k - 1].min(axis=1)
    parts = []
    for q in range(len(queries)):
        hits = _faiss_search(index, queries[q:q + 1], int(kth[q]))
        hits = hits.take(np.lexsort((hits.item, hits.distance))[:k])
        parts.append(Hits(hits.query + q, hits.item, hits.distance, hits.variant))
    return concat(parts)


@contextmanager
def faiss_threads(work: float):
    """One FAISS thread for small jobs (`work`: codes compared): OpenMP's start-up and
    spinning cost more than a second core gives there, and far more on a busy machine."""
    import faiss

    if work >= SMALL_WORK:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _faiss_search(index, queries: np.ndarray, radius: int) -> Hits:
    with faiss_threads(float(index.ntotal) * queries.shape[0] * queries.shape[1]):
        return _faiss_range(index, queries, radius)


def _faiss_range(index, queries: np.ndarray, radius: int) -> Hits:
    parts = []
    n_queries, n_variants, _ = queries.shape
    for start in range(0, n_queries, QUERY_BLOCK):
        block = queries[start:start + QUERY_BLOCK]
        for v in range(n_variants):
            lims, dist, ids = index.range_search(np.ascontiguousarray(block[:, v]), radius + 1)
            counts = np.diff(lims).astype(np.int64)
            q = np.repeat(np.arange(start, start + len(block), dtype=np.int64), counts)
            parts.append(Hits(q, ids.astype(np.int64), dist.astype(np.int32),
                              np.full(q.size, v, dtype=np.int8)))
    return _best_per_pair(concat(parts))


def _dense_search(items: np.ndarray, queries: np.ndarray, radius: int) -> Hits:
    """Every distance of every query variant to every item, in blocks of queries; the best
    variant of each (query, item) within the radius. Same answers as _faiss_search, faster
    when most items are within the radius (calibration searches at half the code length),
    where listing FAISS's range results and keeping each pair's best costs the most."""
    word = np.uint64 if items.shape[1] % 8 == 0 else np.uint8
    table = items.view(word)  # (N, words)
    n_queries, n_variants, _ = queries.shape
    step = max(1, DENSE_BLOCK // max(1, len(items) * n_variants))
    parts = []
    for start in range(0, n_queries, step):
        block = np.ascontiguousarray(queries[start:start + step]).view(word)  # (B, V, words)
        distance = np.zeros((len(block), n_variants, len(items)), dtype=np.int32)
        for w in range(table.shape[1]):
            distance += np.bitwise_count(block[:, :, None, w] ^ table[None, None, :, w])
        variant = distance.argmin(axis=1)  # the lowest variant among equal distances
        best = np.take_along_axis(distance, variant[:, None, :], axis=1)[:, 0]
        q, i = np.nonzero(best <= radius)
        parts.append(Hits(q.astype(np.int64) + start, i.astype(np.int64),
                          best[q, i].astype(np.int32), variant[q, i].astype(np.int8)))
    return concat(parts)


def concat(parts: list[Hits]) -> Hits:
    """The hits of `parts`, one after another."""
    if not parts:
        return _empty()
    return Hits(*(np.concatenate([getattr(p, f) for p in parts])
                  for f in ("query", "item", "distance", "variant")))


def self_join(codes: np.ndarray, radius: int, method: str | None = None) -> Hits:
    """All pairs a < b of pictures within `radius` under some flip or rotation.

    codes: (N, V, nbytes). The smaller distance of the two directions wins. In the result,
    `variant` is the transform that turns picture a into picture b (dihedral.NAMES).
    method: "mih", "faiss" or None to choose by cost.
    """
    return self_join_blocks(codes[:, 0], [codes], radius, method)


def self_join_blocks(items: np.ndarray, blocks: Iterable[np.ndarray], radius: int,
                     method: str | None = None, variants: int | None = None) -> Hits:
    """self_join with the queries given in consecutive blocks of (n, V, nbytes) codes (for
    example read from the index a block at a time), so that only `items` (N, nbytes), the
    tables and one block are in memory at once. `variants` is V when blocks is an iterator.
    """
    blocks = iter(blocks)
    first = next(blocks, None)
    n = len(items)
    if first is None or n == 0:
        return _empty()
    variants = first.shape[1] if variants is None else variants
    searcher = Searcher(items, radius, n * variants, method)
    one_way = variants == 1  # then d(a, b) = d(b, a): report each pair from its first member
    parts, start = [], 0
    for block in chain([first], blocks):
        rows = np.arange(start, start + len(block), dtype=np.int64)
        hits = searcher.search(block, above=rows if one_way else None)
        parts.append(Hits(hits.query + start, hits.item, hits.distance, hits.variant))
        start += len(block)
    hits = concat(parts)
    hits = hits.take(hits.query != hits.item)
    q, i, v = hits.query, hits.item, hits.variant
    # Query variant v of q matched i, so i = T_v(q): a->b is T_v when q is a, else its inverse.
    v = np.where(q < i, v, np.asarray(INVERSE, dtype=np.int8)[v]).astype(np.int8)
    return _best_per_pair(Hits(np.minimum(q, i), np.maximum(q, i), hits.distance, v))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise bit distance of two (..., nbytes) uint8 arrays."""
    if hasattr(np, "bitwise_count"):  # NumPy >= 2: a popcount, no unpacked bits in memory
        return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int32)
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(axis=-1, dtype=np.int32)
