"""Cosine search over learned embeddings: a FAISS index for queries, a blocked exact self-join.

Embeddings are (N, d) float32 or float16 rows (float64 is accepted too). Each row is made a
unit vector by `normalise`; a row whose norm is zero or not finite is *invalid*: it is left
out of every index and join, so it matches nothing. Similarity is the inner product of unit
vectors (cosine), and "at or above" means `similarity >= min_similarity`.

Exact results: `self_join` and a "flat" index's `range` return what a brute-force
computation gives: a pair is kept when float32(s) >= min_similarity, where s is the inner
product of the two float32 unit vectors summed in float64, and float32(s) is the similarity
reported. Fast float32 BLAS / FAISS passes only pick candidates (with a margin wider than
their rounding error) and every candidate is re-scored, so results depend neither on the
block size nor on the BLAS, and a tie at the threshold is kept. A flat `knn` is the exact
top k, with FAISS's float32 similarities (within ~1e-6 of s).

FAISS threads are left at FAISS's default (one per core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# "auto" builds an exact flat index up to this many vectors, HNSW beyond. A flat query scans
# every vector: 97 ms p50 at 1M x 256-d on 2 cores (bench_vectors.py), ~20 ms at 200k.
FLAT_MAX_VECTORS = 200_000
HNSW_M = 32  # graph degree: 32 keeps recall high on 256-d embeddings at ~260 bytes/vector
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
IVF_NPROBE = 32  # lists probed per query: this or 1/16 of them, whichever is more
ADD_BLOCK = 65_536  # rows normalised and added to an index at a time
QUERY_BLOCK = 16_384  # query rows normalised and searched at a time
RANGE_START_K = 64  # HNSW range: first k, doubled for queries whose k-th hit still passes
SELF_JOIN_BLOCK = 1024  # self-join tile side: a 1024 x 1024 float32 tile (4 MB) stays in cache
RESCORE_CHUNK = 8192  # candidate pairs re-scored in float64 at a time
PROJECTION_MARGIN = 1e-4  # slack on the projection bound; its float32 error is below 1e-5
PROJECTION_SAMPLE = 2048  # rows sampled to choose the projection


class Neighbours(NamedTuple):
    """k nearest items per query, best first; -1 / -inf where fewer than k exist."""

    ids: np.ndarray  # (Q, k) int64
    similarity: np.ndarray  # (Q, k) float32


class RangeHits(NamedTuple):
    """Every (query, item) at or above a similarity, sorted by query then item."""

    query: np.ndarray  # (M,) int64
    ids: np.ndarray  # (M,) int64
    similarity: np.ndarray  # (M,) float32


class Pairs(NamedTuple):
    """Every pair a < b at or above a similarity, sorted by a then b."""

    a: np.ndarray  # (M,) int64
    b: np.ndarray  # (M,) int64
    similarity: np.ndarray  # (M,) float32


def _check(vectors: Any, dim: int | None = None) -> np.ndarray:
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, d), not shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"embeddings must be float16 or float32, not {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"queries have {array.shape[1]} dimensions, the index {dim}")
    return array


def _inverse_norms(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 1/norm per row (0 for an invalid row) and the valid mask."""
    inverse = np.zeros(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), ADD_BLOCK):
        block = vectors[start:start + ADD_BLOCK].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse[start:start + len(block)] = np.where(
                np.isfinite(norms) & (norms > 0), 1.0 / norms, 0.0)
    return inverse, inverse > 0


def _unit_rows(vectors: np.ndarray, rows: np.ndarray | slice,
               inverse: np.ndarray) -> np.ndarray:
    """float32 unit vectors of the given rows; the one formula used everywhere."""
    block = vectors[rows].astype(np.float32)
    with np.errstate(invalid="ignore"):  # an invalid row: inverse 0 times inf or nan
        block *= inverse[rows][:, None]
    block[~np.isfinite(block).all(axis=1)] = 0.0
    return block


def normalise(vectors: Any) -> np.ndarray:
    """float32 unit rows of (N, d) embeddings; an all-zero or non-finite row becomes zeros."""
    array = _check(vectors)
    inverse, _ = _inverse_norms(array)
    return _unit_rows(array, slice(None), inverse)


def _band(dim: int) -> float:
    """Bound on the float32 rounding error of a d-term inner product of unit vectors."""
    return 2.0 * dim * 2.0 ** -24 + 1e-6


def _rescore(left: np.ndarray, right: np.ndarray, min_similarity: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Exact similarity (float64 sum, rounded to float32) of row pairs; the keep mask."""
    sims = np.empty(len(left), dtype=np.float32)
    for start in range(0, len(left), RESCORE_CHUNK):
        a = left[start:start + RESCORE_CHUNK].astype(np.float64)
        b = right[start:start + RESCORE_CHUNK].astype(np.float64)
        sims[start:start + len(a)] = np.einsum("ij,ij->i", a, b)
    return sims, sims >= min_similarity


def _sort_rows(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by similarity (best first), then id; missing (-1) entries last."""
    order = np.lexsort((ids, -sims.astype(np.float64)), axis=-1)
    return np.take_along_axis(ids, order, -1), np.take_along_axis(sims, order, -1)


@dataclass(frozen=True)
class VectorIndex:
    """A FAISS index over the valid rows of some embeddings; ids are row numbers of the input.

    kind "flat": exact. "hnsw" and "ivf": approximate, they can miss neighbours; their
    `range` re-scores what they find like flat, so it never reports a pair below the
    threshold.
    """

    kind: str
    dim: int
    size: int  # rows given to build(), invalid ones included
    faiss_index: Any
    row_ids: np.ndarray  # (ntotal,) int64: the input row of each indexed vector

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def knn(self, queries: Any, k: int) -> Neighbours:
        """The k most similar items of each query, best first (ties: lower id first).

        flat: the exact top k (which of several items tied at the k-th similarity is kept is
        FAISS's choice); hnsw / ivf: approximate. Similarities come from FAISS's float32
        computation. An invalid query, or one with fewer than k items to find, gets -1 ids
        and -inf similarities in the empty places.
        """
        queries = _check(queries, self.dim)
        if k < 0:
            raise ValueError(f"k must be >= 0, not {k}")
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        k_found = min(k, len(self.row_ids))
        inverse, valid = _inverse_norms(queries)
        rows = np.flatnonzero(valid)
        if k_found == 0 or rows.size == 0:
            return Neighbours(ids, sims)
        for start in range(0, rows.size, QUERY_BLOCK):
            part = rows[start:start + QUERY_BLOCK]
            found_sims, found = self.faiss_index.search(_unit_rows(queries, part, inverse),
                                                        k_found)
            missing = found < 0
            ids[part, :k_found] = np.where(missing, -1, self.row_ids[np.maximum(found, 0)])
            sims[part, :k_found] = np.where(missing, -np.inf, found_sims)
        return Neighbours(*_sort_rows(ids, sims))

    def range(self, queries: Any, min_similarity: float) -> RangeHits:
        """Every (query, item) with similarity >= min_similarity, sorted by query, then id.

        flat: exact, with the float64 re-scoring described in the module docstring (so
        `range(items, t)` holds the pairs of `self_join(items, t)` in both directions, plus
        each valid item with itself). ivf: FAISS's range search over the probed lists.
        hnsw: k nearest with k doubled until the k-th falls below the threshold, so it misses
        what the graph search misses. Never reports a pair below the threshold.
        """
        queries = _check(queries, self.dim)
        inverse, valid = _inverse_norms(queries)
        rows = np.flatnonzero(valid)
        parts = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))]
        if len(self.row_ids) and rows.size:
            for start in range(0, rows.size, QUERY_BLOCK):
                part = rows[start:start + QUERY_BLOCK]
                units = _unit_rows(queries, part, inverse)
                query, found = self._candidates(units, float(min_similarity))
                if found.size == 0:
                    continue
                sims, keep = _rescore(units[query], self.faiss_index.reconstruct_batch(found),
                                      float(min_similarity))
                parts.append((part[query[keep]], self.row_ids[found[keep]], sims[keep]))
        query, ids, sims = (np.concatenate(p) for p in zip(*parts))
        order = np.lexsort((ids, query))
        return RangeHits(query[order], ids[order], sims[order])

    def _candidates(self, units: np.ndarray, min_similarity: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(row in units, internal id) whose FAISS similarity is within the band or above."""
        low = min_similarity - _band(self.dim)
        if self.kind != "hnsw":
            lims, _, found = self.faiss_index.range_search(units, low)  # keeps sim > low
            query = np.repeat(np.arange(len(units)), np.diff(lims).astype(np.int64))
            return query, found.astype(np.int64)
        total = len(self.row_ids)
        k, pending = min(RANGE_START_K, total), np.arange(len(units))
        queries, founds = [], []
        while pending.size:
            sims, found = self.faiss_index.search(units[pending], k)
            done = (k >= total) | (sims[:, -1] < low) | (found[:, -1] < 0)
            hit = (sims >= low) & (found >= 0) & done[:, None]
            queries.append(np.repeat(pending, hit.sum(axis=1)))
            founds.append(found[hit].astype(np.int64))
            pending, k = pending[~done], min(2 * k, total)
        return np.concatenate(queries), np.concatenate(founds)


def _ivf_lists(size: int) -> int:
    """~4 sqrt(N) lists, each with the 39 training vectors FAISS asks for (else it warns)."""
    return max(1, min(int(4 * math.sqrt(size)), size // 39))


def _new_faiss_index(kind: str, dim: int, size: int, train: np.ndarray):
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, _ivf_lists(size),
                               faiss.METRIC_INNER_PRODUCT)
    index.nprobe = min(index.nlist, max(IVF_NPROBE, index.nlist // 16))
    index.train(train)
    index.make_direct_map()  # for reconstruct_batch, used to re-score range candidates
    return index


def build(vectors: Any, kind: str = "auto") -> VectorIndex:
    """An index over (N, d) embeddings: "flat" (exact), "hnsw", "ivf", or "auto"
    (flat up to FLAT_MAX_VECTORS rows, hnsw beyond)."""
    vectors = _check(vectors)
    if kind == "auto":
        kind = "flat" if len(vectors) <= FLAT_MAX_VECTORS else "hnsw"
    if kind not in ("flat", "hnsw", "ivf"):
        raise ValueError(f"unknown index kind {kind!r}; known: auto, flat, hnsw, ivf")
    inverse, valid = _inverse_norms(vectors)
    row_ids = np.flatnonzero(valid).astype(np.int64)
    train = np.empty((0, vectors.shape[1]), np.float32)
    if kind == "ivf":
        if row_ids.size == 0:
            kind = "flat"  # nothing to train on; an empty flat index answers the same
        else:
            step = max(1, row_ids.size // (256 * _ivf_lists(row_ids.size)))
            train = _unit_rows(vectors, row_ids[::step], inverse)  # up to 256 per list
    index = _new_faiss_index(kind, vectors.shape[1], row_ids.size, train)
    for start in range(0, row_ids.size, ADD_BLOCK):
        index.add(_unit_rows(vectors, row_ids[start:start + ADD_BLOCK], inverse))
    return VectorIndex(kind, vectors.shape[1], len(vectors), index, row_ids)


def _sample_units(vectors: np.ndarray, rows: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Unit vectors of up to PROJECTION_SAMPLE rows, evenly spread (deterministic)."""
    picks = np.unique(np.linspace(0, rows.size - 1, PROJECTION_SAMPLE).astype(np.int64))
    return _unit_rows(vectors, rows[picks], inverse)


def _projection_basis(sample: np.ndarray) -> np.ndarray:
    """Orthonormal basis (d, d), float64, columns by decreasing energy of the sample."""
    sample = sample.astype(np.float64)
    moments = sample.T @ sample
    try:  # a small LAPACK call: threads only add synchronisation (seconds on a busy machine)
        from threadpoolctl import threadpool_limits
    except ImportError:
        energy, basis = np.linalg.eigh(moments)
    else:
        with threadpool_limits(1):
            energy, basis = np.linalg.eigh(moments)
    return basis[:, np.argsort(energy)[::-1]]


def _bound_vectors(units: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Rows [u.w_1 .. u.w_{p-1}, |residual|]: their inner product bounds u.v from above.

    With orthonormal w, u.v = u_P.v_P + u_R.v_R <= u_P.v_P + |u_R| |v_R| (Cauchy-Schwarz on
    the dimensions left out), and that is one inner product of p numbers.
    """
    unit64 = units.astype(np.float64)
    head = unit64 @ basis
    residual = np.einsum("ij,ij->i", unit64, unit64) - np.einsum("ij,ij->i", head, head)
    return np.hstack([head, np.sqrt(np.maximum(residual, 0.0))[:, None]]).astype(np.float32)


def _choose_projection(sample: np.ndarray, basis: np.ndarray, min_similarity: float) -> int:
    """The bound width p that costs least on the sample, or 0 where none pays.

    Cost relative to a full-width tile: the p-wide tile, plus the share of pairs whose bound
    still passes (each costs a gathered re-score, taken as 64 tile entries).
    """
    dim, half = sample.shape[1], len(sample) // 2
    best_cost, best_width = 0.75, 0  # a projection must save at least a quarter
    for width in range(32, dim // 2 + 1, 32):
        bound = _bound_vectors(sample, basis[:, :width - 1])
        products = bound[:half] @ bound[half:].T  # two disjoint halves: no pair with itself
        passing = np.mean(products >= min_similarity - PROJECTION_MARGIN)
        cost = (width + 16) / (dim + 16) + min(1.0, 64 * float(passing))
        if cost < best_cost:
            best_cost, best_width = cost, width
    return best_width


def _bounds(vectors: np.ndarray, rows: np.ndarray, inverse: np.ndarray,
            min_similarity: float, projection: int | None) -> np.ndarray | None:
    """(len(rows), p) bound vectors, or None to compute every tile in full."""
    if projection == 0 or rows.size == 0:
        return None
    if projection is None and (vectors.shape[1] < 64 or rows.size < 8 * SELF_JOIN_BLOCK):
        return None  # small: full-width tiles take about as long as choosing
    sample = _sample_units(vectors, rows, inverse)
    basis = _projection_basis(sample)
    if projection is None:
        projection = _choose_projection(sample, basis, min_similarity)
        if projection == 0:
            return None
    basis = basis[:, :projection - 1]
    step = 8 * SELF_JOIN_BLOCK  # float64 temporaries of 8192 rows: 16 MB at 256-d
    return np.concatenate([_bound_vectors(_unit_rows(vectors, rows[s:s + step], inverse),
                                          basis) for s in range(0, rows.size, step)])


def _tile_candidates(left: np.ndarray, right: np.ndarray, low: float, diagonal: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of left @ right.T entries >= low; on a diagonal tile only j > i."""
    tile = left @ right.T
    if diagonal:
        np.fill_diagonal(tile, -np.inf)  # a row with itself would pass every row-max test
    rows = np.flatnonzero(tile.max(axis=1) >= low)
    if rows.size == 0:
        return rows, rows
    i, j = np.nonzero(tile[rows] >= low)
    i = rows[i]
    if diagonal:
        keep = j > i
        i, j = i[keep], j[keep]
    return i, j


def self_join(vectors: Any, min_similarity: float, block: int = SELF_JOIN_BLOCK,
              projection: int | None = None) -> Pairs:
    """Every pair of rows a < b with similarity >= min_similarity, exact, sorted by (a, b).

    Works tile by tile (block x block) over the upper triangle, so the extra memory is a few
    tiles, (N, p) bound vectors and the result: never an N x N matrix. With a projection
    p > 0 a tile is first the inner products of p-wide bound vectors (_bound_vectors): pairs
    whose bound is below the threshold are dropped unchecked, the others are re-scored, and
    a tile where many pass is computed in full instead. None: p chosen on a sample of the
    rows (0, no bound, where it would not pay); the result is the same for every p.
    """
    vectors = _check(vectors)
    if block < 1:
        raise ValueError(f"block must be >= 1, not {block}")
    if projection is not None and projection < 0:
        raise ValueError(f"projection must be >= 0 or None, not {projection}")
    min_similarity = float(min_similarity)
    inverse, valid = _inverse_norms(vectors)
    rows = np.flatnonzero(valid)  # tiles run over the valid rows only
    bounds = _bounds(vectors, rows, inverse, min_similarity, projection)
    full_low = min_similarity - _band(vectors.shape[1])
    dense = block * block // 64  # more passing pairs than this: compute the tile in full
    parts = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))]
    for start in range(0, rows.size, block):
        left = _unit_rows(vectors, rows[start:start + block], inverse)
        found = []
        for other in range(start, rows.size, block):
            diagonal = other == start
            right_rows = rows[other:other + block]
            right = None
            if bounds is not None:
                i, j = _tile_candidates(bounds[start:start + block],
                                        bounds[other:other + block],
                                        min_similarity - PROJECTION_MARGIN, diagonal)
                if i.size > dense:
                    right = _unit_rows(vectors, right_rows, inverse)
                    i, j = _tile_candidates(left, right, full_low, diagonal)
            else:
                right = left if diagonal else _unit_rows(vectors, right_rows, inverse)
                i, j = _tile_candidates(left, right, full_low, diagonal)
            if i.size == 0:
                continue
            right_units = right[j] if right is not None else \
                _unit_rows(vectors, right_rows[j], inverse)
            sims, keep = _rescore(left[i], right_units, min_similarity)
            found.append((rows[start + i[keep]], right_rows[j[keep]], sims[keep]))
        if found:
            a, b, sims = (np.concatenate(f) for f in zip(*found))
            order = np.lexsort((b, a))
            parts.append((a[order], b[order], sims[order]))
    a, b, sims = (np.concatenate(p) for p in zip(*parts))
    return Pairs(a.astype(np.int64), b.astype(np.int64), sims)
