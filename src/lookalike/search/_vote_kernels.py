"""numba loop for partial.py's Hamming-embedding votes (one pass per query descriptor over
the word lists it probes; no temporary arrays the size of the postings)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._mih_kernels import popcount


@njit(nogil=True, cache=True, inline="always")
def _distance(a, b) -> int:
    total = 0
    for k in range(a.shape[0]):
        total += popcount(a[k] ^ b[k])
    return total


@njit(nogil=True, cache=True, inline="always")
def _postings(offsets, word, max_posting):
    """The posting range of a word, empty when the list is longer than max_posting."""
    start, stop = offsets[word], offsets[word + 1]
    return (start, start) if stop - start > max_posting else (start, stop)


@njit(nogil=True, cache=True)
def vote(queries, probes, query_of, skip_content, offsets, rows, descriptors, content_ids,
         max_posting, max_hamming, margin, n_queries):
    """votes[q, r]: query descriptors of picture q with a close descriptor in row r (at most
    one vote each per row). A posting counts when within max_hamming and within margin of
    the descriptor's best posting; rows of skip_content[q] (>= 0) are left out."""
    n_rows = content_ids.shape[0]
    votes = np.zeros((n_queries, n_rows), dtype=np.int32)
    last = np.full(n_rows, -1, dtype=np.int64)  # the last descriptor that voted for a row
    for i in range(queries.shape[0]):
        skip = skip_content[query_of[i]]
        best = 1 << 30
        for k in range(probes.shape[1]):
            start, stop = _postings(offsets, probes[i, k], max_posting)
            for p in range(start, stop):
                if content_ids[rows[p]] == skip:
                    continue
                d = _distance(queries[i], descriptors[p])
                if d < best:
                    best = d
        limit = min(max_hamming, best + margin)
        for k in range(probes.shape[1]):
            start, stop = _postings(offsets, probes[i, k], max_posting)
            for p in range(start, stop):
                r = rows[p]
                if content_ids[r] == skip or last[r] == i:
                    continue
                if _distance(queries[i], descriptors[p]) <= limit:
                    last[r] = i
                    votes[query_of[i], r] += 1
    return votes
