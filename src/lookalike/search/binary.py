"""Hamming search over binary codes with FAISS, in blocks; never a Python all-pairs loop.

Codes carry 8 dihedral variants per picture. The index holds each picture's identity code and
the queries are all 8 variants, so a flipped or rotated copy is found whichever came first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUERY_BLOCK = 32_768


@dataclass(frozen=True)
class Hits:
    """Query q is within `distance` of indexed item `item`, through query variant `variant`."""

    query: np.ndarray  # (M,) int64
    item: np.ndarray  # (M,) int64
    distance: np.ndarray  # (M,) int32
    variant: np.ndarray  # (M,) int8


def _index(codes: np.ndarray):
    import faiss

    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(np.ascontiguousarray(codes))
    return index


def _best_per_pair(hits: Hits) -> Hits:
    """Keep the smallest distance (then the lowest variant) of each (query, item)."""
    if hits.query.size == 0:
        return hits
    order = np.lexsort((hits.variant, hits.distance, hits.item, hits.query))
    q, i = hits.query[order], hits.item[order]
    first = np.ones(q.size, dtype=bool)
    first[1:] = (q[1:] != q[:-1]) | (i[1:] != i[:-1])
    keep = order[first]
    return Hits(hits.query[keep], hits.item[keep], hits.distance[keep], hits.variant[keep])


def search(items: np.ndarray, queries: np.ndarray, radius: int) -> Hits:
    """All (query, item) within `radius` bits.

    items: (N, nbytes) identity codes; queries: (Q, V, nbytes) codes with V variants.
    """
    empty = Hits(*(np.empty(0, dtype=t) for t in (np.int64, np.int64, np.int32, np.int8)))
    if len(items) == 0 or len(queries) == 0:
        return empty
    index = _index(items)
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
    if not parts:
        return empty
    merged = Hits(*(np.concatenate([getattr(p, f) for p in parts])
                    for f in ("query", "item", "distance", "variant")))
    return _best_per_pair(merged)


def self_join(codes: np.ndarray, radius: int) -> Hits:
    """All pairs a < b of pictures within `radius` under some flip or rotation.

    codes: (N, V, nbytes). The smaller distance of the two directions wins. In the result,
    `variant` is the transform that turns picture a into picture b (dihedral.NAMES).
    """
    from ..methods.dihedral import INVERSE

    hits = search(codes[:, 0], codes, radius)
    keep = hits.query != hits.item
    q, i, v = hits.query[keep], hits.item[keep], hits.variant[keep]
    # Query variant v of q matched i, so i = T_v(q): a->b is T_v when q is a, else its inverse.
    v = np.where(q < i, v, np.asarray(INVERSE, dtype=np.int8)[v]).astype(np.int8)
    return _best_per_pair(Hits(np.minimum(q, i), np.maximum(q, i), hits.distance[keep], v))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise bit distance of two (..., nbytes) uint8 arrays."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(axis=-1, dtype=np.int32)
