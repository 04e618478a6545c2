"""search/binary.py against a brute-force NumPy reference: all pairs, min over variants."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lookalike.methods import dihedral
from lookalike.search import binary, mih
from lookalike.search.binary import hamming, search, self_join


def _popcount_table() -> np.ndarray:
    return np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


POP = _popcount_table()


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, nbytes) x (B, nbytes) -> (A, B) bit distances, by a byte popcount table."""
    return POP[np.bitwise_xor(a[:, None, :], b[None, :, :])].sum(axis=-1)


def _make_codes(seed: int, n: int, variants: int, nbytes: int, clustered: bool) -> np.ndarray:
    """(n, variants, nbytes) codes: uniform random, or a few random centres with a few bits
    flipped per member (so that many pairs fall at small distances)."""
    rng = np.random.default_rng(seed)
    if not clustered:
        return rng.integers(0, 256, (n, variants, nbytes), dtype=np.uint8)
    centres = rng.integers(0, 256, (max(1, n // 4), variants, nbytes), dtype=np.uint8)
    codes = centres[rng.integers(0, len(centres), n)].copy()
    bits = np.unpackbits(codes, axis=-1)
    for i in range(n):
        flips = int(rng.integers(0, 6 if nbytes == 8 else 20))
        for v in range(variants):
            where = rng.choice(nbytes * 8, size=flips, replace=False)
            bits[i, v, where] ^= 1
    return np.packbits(bits, axis=-1)


def _as_set(hits) -> dict[tuple[int, int], tuple[int, int]]:
    pairs = list(zip(hits.query.tolist(), hits.item.tolist()))
    assert len(pairs) == len(set(pairs)), "a (query, item) pair reported twice"
    return {pair: (int(d), int(v)) for pair, d, v in
            zip(pairs, hits.distance.tolist(), hits.variant.tolist())}


def _check_dtypes(hits):
    assert hits.query.dtype == np.int64 and hits.item.dtype == np.int64
    assert hits.distance.dtype == np.int32 and hits.variant.dtype == np.int8
    assert len({hits.query.size, hits.item.size, hits.distance.size, hits.variant.size}) == 1


CASES = dict(
    seed=st.integers(0, 2 ** 32 - 1),
    n=st.integers(0, 40),
    nbytes=st.sampled_from([8, 32]),
    clustered=st.booleans(),
    radius_fraction=st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0]),
)


def _radius(nbytes: int, fraction: float) -> int:
    return int(round(nbytes * 8 * fraction))


@given(**CASES, n_queries=st.integers(0, 12), variants=st.sampled_from([1, 8]),
       block=st.sampled_from([None, 1, 3]), method=st.sampled_from(["faiss", "mih", "dense"]))
def test_search_equals_brute_force(seed, n, nbytes, clustered, radius_fraction, n_queries,
                                   variants, block, method):
    radius = _radius(nbytes, radius_fraction)
    items = _make_codes(seed, n, 1, nbytes, clustered)[:, 0]
    pool = _make_codes(seed + 1, n_queries, variants, nbytes, clustered)
    if n and n_queries and clustered:  # queries near some items
        near = min(n, n_queries // 2)
        pool[:near, 0] = items[:near]
    patch = mock.patch.object(binary, "QUERY_BLOCK", block) if block else mock.patch.object(
        binary, "QUERY_BLOCK", binary.QUERY_BLOCK)
    with patch:
        hits = search(items, pool, radius, method)
    _check_dtypes(hits)
    got = _as_set(hits)

    expected = {}
    if n and n_queries:
        per_variant = np.stack([_distances(pool[:, v], items) for v in range(variants)])
        best = per_variant.min(axis=0)  # (Q, N)
        first_variant = per_variant.argmin(axis=0)  # lowest variant at the min distance
        for q, i in zip(*np.nonzero(best <= radius)):
            expected[int(q), int(i)] = (int(best[q, i]), int(first_variant[q, i]))
    assert got == expected


@given(**CASES, variants=st.sampled_from([1, 8]), method=st.sampled_from(["faiss", "mih", "dense"]))
def test_self_join_equals_brute_force(seed, n, nbytes, clustered, radius_fraction, variants,
                                      method):
    radius = _radius(nbytes, radius_fraction)
    codes = _make_codes(seed, n, variants, nbytes, clustered)
    hits = self_join(codes, radius, method)
    _check_dtypes(hits)
    got = _as_set(hits)
    assert all(a < b for a, b in got)

    expected = {}
    if n:
        # d[v, a, b]: variant v of a against identity of b.
        d = np.stack([_distances(codes[:, v], codes[:, 0]) for v in range(variants)])
        best = np.minimum(d.min(axis=0), d.min(axis=0).T)
        for a, b in zip(*np.nonzero(best <= radius)):
            if a < b:
                expected[int(a), int(b)] = int(best[a, b])
    assert {pair: dv[0] for pair, dv in got.items()} == expected

    # The variant names a transform from a to b that achieves the distance: either a's
    # variant v is at that distance from b's identity, or b's variant INVERSE[v] from a's.
    for (a, b), (distance, v) in got.items():
        forward = int(POP[codes[a, v] ^ codes[b, 0]].sum())
        backward = int(POP[codes[b, dihedral.INVERSE[v]] ^ codes[a, 0]].sum())
        assert distance in (forward, backward), (a, b, distance, v)


def _grid_codes(grid: np.ndarray) -> np.ndarray:
    """(8, nbytes) codes of a square bit grid: its 8 dihedral variants, packed."""
    return np.packbits(dihedral.all_variants(grid).reshape(8, -1), axis=1)


@given(seed=st.integers(0, 2 ** 32 - 1), t=st.integers(0, 7), side=st.sampled_from([8, 16]),
       b_first=st.booleans())
def test_self_join_variant_is_the_transform_from_a_to_b(seed, t, side, b_first):
    """Picture b is picture a under transform T_t (dihedral.variant): the pair's variant is t
    when a comes first, INVERSE[t] when b does; the distance is 0."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 2, (side, side), dtype=np.uint8)
    codes_a = _grid_codes(grid)
    assume(len({c.tobytes() for c in codes_a}) == 8)  # no symmetric grid: one answer only
    codes_b = _grid_codes(dihedral.variant(grid, t))
    assert np.array_equal(codes_b[0], codes_a[t])
    stranger = rng.integers(0, 256, (8, codes_a.shape[1]), dtype=np.uint8)
    ordered = [codes_b, stranger, codes_a] if b_first else [codes_a, stranger, codes_b]
    hits = self_join(np.stack(ordered), radius=side * side // 8)
    got = _as_set(hits)
    assert got == {(0, 2): (0, dihedral.INVERSE[t] if b_first else t)}


def test_self_join_variant_on_real_pictures():
    """astronaut and astronaut turned a quarter counter-clockwise: the transform from the
    first to the second is rot90, from the second to the first rot270."""
    import io
    import os

    import skimage
    from PIL import Image

    from lookalike.decode import decode
    from lookalike.methods import Picture, create_method

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    image = Image.open(path).convert("RGB")
    turned = image.transpose(Image.Transpose.ROTATE_90)
    pictures = []
    for im in (image, turned):
        buffer = io.BytesIO()
        im.save(buffer, "PNG")
        pictures.append(Picture(decode(buffer.getvalue())))
    for method in ("phash", "pdq"):
        signatures = create_method(method).compute(pictures)
        codes = np.stack([np.frombuffer(s.value, np.uint8).reshape(8, -1) for s in signatures])
        forward = _as_set(self_join(codes, 10))
        backward = _as_set(self_join(codes[::-1].copy(), 10))
        assert forward[0, 1][1] == dihedral.NAMES.index("rot90"), method
        assert backward[0, 1][1] == dihedral.NAMES.index("rot270"), method


@given(seed=st.integers(0, 2 ** 32 - 1), nbytes=st.sampled_from([8, 32]),
       shape=st.sampled_from([(), (5,), (3, 4)]))
def test_hamming_is_a_metric(seed, nbytes, shape):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.integers(0, 256, (*shape, nbytes), dtype=np.uint8) for _ in range(3))
    ab = hamming(a, b)
    assert ab.shape == shape
    assert np.array_equal(ab, hamming(b, a))
    assert not hamming(a, a).any()
    assert np.all(ab <= hamming(a, c) + hamming(c, b))
    expected = np.vectorize(lambda x: bin(int(x)).count("1"))(np.bitwise_xor(a, b)).sum(axis=-1)
    assert np.array_equal(ab, expected)
    assert np.all((ab == 0) == np.all(a == b, axis=-1))


def test_search_radius_zero_finds_exact_copies_only():
    rng = np.random.default_rng(5)
    items = rng.integers(0, 256, (50, 8), dtype=np.uint8)
    queries = items[[3, 7, 7]].copy()[:, None, :]
    queries[2, 0, 0] ^= 1  # one bit off
    hits = search(items, queries, 0)
    assert _as_set(hits) == {(0, 3): (0, 0), (1, 7): (0, 0)}


@pytest.mark.parametrize("nbytes,radius", [(8, 0), (8, 4), (8, 8), (8, 12), (32, 31)])
def test_mih_equals_faiss_on_larger_clustered_sets(nbytes, radius):
    """Thousands of codes, so that the block tables have real buckets."""
    rng = np.random.default_rng(radius)
    centres = rng.integers(0, 256, (300, nbytes), dtype=np.uint8)
    bits = np.unpackbits(centres[rng.integers(0, 300, 3000)], axis=-1)
    flips = rng.random(bits.shape) < radius / (nbytes * 8) / 2
    codes = np.concatenate([np.packbits(bits ^ flips, axis=-1),
                            rng.integers(0, 256, (1000, nbytes), dtype=np.uint8)])[:, None, :]
    got = _as_set(self_join(codes, radius, "mih"))
    assert got == _as_set(self_join(codes, radius, "faiss"))
    assert len(got) > 100  # the clusters give real pairs to find


@given(bits=st.sampled_from([64, 256]), radius=st.integers(0, 80),
       n_items=st.sampled_from([10, 10_000, 1_000_000]))
def test_every_mih_plan_satisfies_the_pigeonhole_bound(bits, radius, n_items):
    """Probed blocks are disjoint, and their radii + 1 add up to more than the radius: any
    code within the radius is within some block's radius."""
    plan, _ = mih.best_plan(n_items, bits, radius)
    assume(plan is not None)
    spans = [(s, s + w) for s, w in zip(plan.starts, plan.widths)]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert spans[-1][1] <= bits and max(plan.widths) <= mih.MAX_BLOCK_BITS
    # A radius above the code's length means the length: no two codes differ in more bits.
    assert sum(r + 1 for r in plan.radii) > min(radius, bits)


def test_engine_choice_follows_the_cost():
    assert binary.engine(1000, 8000, 8, 8) == "faiss"  # too small to be worth it
    assert binary.engine(1_000_000, 8_000_000, 8, 8) == "mih"
    assert binary.engine(1_000_000, 8_000_000, 8, 40) == "faiss"  # radius too wide
    assert binary.engine(1_000_000, 8_000_000, 9, 8) == "faiss"  # not whole 64-bit words


@given(**CASES, cuts=st.lists(st.integers(0, 40), max_size=4),
       method=st.sampled_from(["faiss", "mih", "dense"]))
def test_self_join_in_blocks_equals_one_block(seed, n, nbytes, clustered, radius_fraction, cuts,
                                              method):
    """Queries streamed in blocks (as dupes reads them from the index) give the same pairs."""
    radius = _radius(nbytes, radius_fraction)
    codes = _make_codes(seed, n, 8, nbytes, clustered)
    edges = sorted({0, n, *(min(c, n) for c in cuts)})
    blocks = (codes[a:b] for a, b in zip(edges, edges[1:]))
    streamed = binary.self_join_blocks(codes[:, 0], blocks, radius, method, variants=8)
    assert _as_set(streamed) == _as_set(self_join(codes, radius, method))


@given(**CASES, n_queries=st.integers(0, 6), variants=st.sampled_from([1, 8]),
       k=st.integers(0, 12))
def test_knn_equals_brute_force(seed, n, nbytes, clustered, radius_fraction, n_queries,
                                variants, k):
    items = _make_codes(seed, n, 1, nbytes, clustered)[:, 0]
    pool = _make_codes(seed + 1, n_queries, variants, nbytes, clustered)
    hits = binary.knn(items, pool, k)
    _check_dtypes(hits)
    expected = []
    if n and n_queries and k:
        best = np.stack([_distances(pool[:, v], items) for v in range(variants)]).min(axis=0)
        for q in range(n_queries):
            order = np.lexsort((np.arange(n), best[q]))[:k]
            expected += [(q, int(i), int(best[q, i])) for i in order]
    got = list(zip(hits.query.tolist(), hits.item.tolist(), hits.distance.tolist()))
    assert got == expected
