"""numba loops for mih.py. Codes are rows of big-endian uint64 words: bit i of a code is bit
63 - i % 64 of word i // 64, so a block of bits is read with at most two shifts."""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_ONE = np.uint64(1)
_SIXTY_FOUR = np.uint64(64)


@intrinsic
def popcount(typingctx, x):
    """The CPU's popcount instruction (LLVM ctpop)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(nogil=True, cache=True, inline="always")
def _key(row, start, width):
    a = start // 64
    off = np.uint64(start % 64)
    w = np.uint64(width)
    mask = (_ONE << w) - _ONE
    if off + w <= _SIXTY_FOUR:
        return (row[a] >> (_SIXTY_FOUR - off - w)) & mask
    low_bits = off + w - _SIXTY_FOUR  # bits taken from the next word
    high = row[a] & ((_ONE << (_SIXTY_FOUR - off)) - _ONE)
    return (high << low_bits) | (row[a + 1] >> (_SIXTY_FOUR - low_bits))


@njit(nogil=True, cache=True)
def block_keys(words, start, width):
    out = np.empty(words.shape[0], dtype=np.int64)
    for i in range(words.shape[0]):
        out[i] = np.int64(_key(words[i], start, width))
    return out


@njit(nogil=True, cache=True)
def _grow(arr, size):
    out = np.empty(size, dtype=arr.dtype)
    out[:arr.shape[0]] = arr
    return out


@njit(nogil=True, cache=True)
def block_search(rows, lows, order, j, radius, words, starts, widths, radii,
                 ids, sorted_words, offsets, masks):
    """Hits of query rows order[...] found through block j: (row, item, distance).

    Rows are taken in order of their block value, so neighbouring rows probe the same
    buckets while they are in cache.
    """
    n_words = rows.shape[1]
    start, width = starts[j], widths[j]
    cap = 1024
    out_r = np.empty(cap, dtype=np.int64)
    out_i = np.empty(cap, dtype=np.int64)
    out_d = np.empty(cap, dtype=np.int64)
    n = 0
    for r in order:
        row = rows[r]
        low = lows[r]
        key = _key(row, start, width)
        for t in range(masks.shape[0]):
            bucket = np.int64(key ^ np.uint64(masks[t]))
            for p in range(offsets[bucket], offsets[bucket + 1]):
                item = ids[p]
                if item <= low:
                    continue
                at = p * n_words
                d = 0
                for w in range(n_words):
                    d += popcount(row[w] ^ sorted_words[at + w])
                if d > radius:
                    continue
                other = words[item]
                seen = False  # reachable from an earlier block: reported there
                for i in range(j):
                    x = _key(row, starts[i], widths[i]) ^ _key(other, starts[i], widths[i])
                    if popcount(x) <= radii[i]:
                        seen = True
                        break
                if seen:
                    continue
                if n == out_r.shape[0]:
                    out_r = _grow(out_r, 2 * n)
                    out_i = _grow(out_i, 2 * n)
                    out_d = _grow(out_d, 2 * n)
                out_r[n] = r
                out_i[n] = item
                out_d[n] = d
                n += 1
    return out_r[:n], out_i[:n], out_d[:n]
