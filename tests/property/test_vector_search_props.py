"""search/vectors.py against a brute-force NumPy reference: self-join, flat range and knn on
random and clustered embeddings, float16 and float32, tiles smaller than N, ties at the
threshold; HNSW and IVF recall measured against the exact answer."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lookalike.search import vectors
from lookalike.search.vectors import build, normalise, self_join


def _embeddings(seed: int, n: int, dim: int, clustered: bool, zeros: int) -> np.ndarray:
    """(n, dim) float32: Gaussian rows, or a few centres with members at spreads from
    near-identical (cosine ~0.9999) to loose (~0.8), so many pairs fall near any threshold;
    `zeros` rows set to zero (they must match nothing)."""
    rng = np.random.default_rng(seed)
    if clustered:
        centres = rng.standard_normal((max(1, n // 5), dim))
        spread = rng.choice([0.01, 0.1, 0.3, 0.6], size=(n, 1))
        rows = centres[rng.integers(0, len(centres), n)] + spread * rng.standard_normal((n, dim))
    else:
        rows = rng.standard_normal((n, dim))
    rows[rng.choice(n, size=min(zeros, n), replace=False)] = 0.0
    return rows.astype(np.float32)


def _reference_similarities(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(Q, N) float32 similarities, by float64 matrix product of the unit vectors; -inf where
    either row is invalid."""
    left, right = normalise(queries).astype(np.float64), normalise(items).astype(np.float64)
    sims = (left @ right.T).astype(np.float32)
    sims[~left.any(axis=1)] = -np.inf
    sims[:, ~right.any(axis=1)] = -np.inf
    return sims


def _reference_pairs(x: np.ndarray, threshold: float):
    sims = _reference_similarities(x, x)
    a, b = np.nonzero(np.triu(sims >= threshold, 1))
    return a, b, sims[a, b]


def _check_pairs(pairs, a, b, sims):
    assert pairs.a.dtype == np.int64 and pairs.b.dtype == np.int64
    assert pairs.similarity.dtype == np.float32
    assert np.all(pairs.a < pairs.b)
    assert np.array_equal(pairs.a, a) and np.array_equal(pairs.b, b)  # same pairs, (a, b) order
    np.testing.assert_allclose(pairs.similarity, sims, rtol=0, atol=2e-7)


THRESHOLDS = st.sampled_from([-1.0, 0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0])
DATA = dict(
    seed=st.integers(0, 2 ** 32 - 1),
    n=st.integers(0, 120),
    dim=st.sampled_from([3, 16, 72]),
    clustered=st.booleans(),
    half=st.booleans(),
    zeros=st.sampled_from([0, 0, 3]),
)


@given(**DATA, threshold=THRESHOLDS, block=st.sampled_from([2, 7, 50, None]),
       projection=st.sampled_from([None, 0, 1, 8, 33]))
def test_self_join_equals_brute_force(seed, n, dim, clustered, half, zeros, threshold, block,
                                      projection):
    x = _embeddings(seed, n, dim, clustered, zeros)
    if half:
        x = x.astype(np.float16)
    pairs = self_join(x, threshold, block=block or vectors.SELF_JOIN_BLOCK, projection=projection)
    _check_pairs(pairs, *_reference_pairs(x, threshold))


@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 80), threshold=THRESHOLDS,
       block=st.sampled_from([3, 64]), projection=st.sampled_from([0, 8]))
def test_float16_input_equals_float32_of_the_same_values(seed, n, threshold, block, projection):
    x16 = _embeddings(seed, n, 24, True, 1).astype(np.float16)
    p16 = self_join(x16, threshold, block=block, projection=projection)
    p32 = self_join(x16.astype(np.float32), threshold, block=block, projection=projection)
    assert all(np.array_equal(u, v) for u, v in zip(p16, p32))


def _tie_vectors(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """16-d rows with four entries of +-0.5 (norm exactly 1) times a power of two: every
    similarity is an exact multiple of 1/4 in any arithmetic, so thresholds at multiples of
    1/4 are exact ties. Returns the rows and their signs as integers."""
    rng = np.random.default_rng(seed)
    signs = np.zeros((n, 16), dtype=np.int64)
    for row in signs:
        row[rng.choice(16, 4, replace=False)] = rng.choice([-1, 1], 4)
    signs[1::3] = signs[0::3][: len(signs[1::3])]  # repeats: similarity exactly 1
    scale = 2.0 ** rng.integers(-3, 4, (n, 1))
    return (0.5 * signs * scale).astype(np.float32), signs


@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(2, 60),
       quarter=st.integers(-4, 4), half=st.booleans(), block=st.sampled_from([4, 1024]),
       projection=st.sampled_from([0, 1, 5]))
def test_ties_at_the_threshold_are_kept(seed, n, quarter, half, block, projection):
    """`>=`: a pair exactly at min_similarity is in the result, in the join and the range."""
    x, signs = _tie_vectors(seed, n)
    if half:
        x = x.astype(np.float16)
    threshold = quarter / 4
    exact = signs @ signs.T  # 4 x similarity, in integers
    a, b = np.nonzero(np.triu(exact >= quarter, 1))
    pairs = self_join(x, threshold, block=block, projection=projection)
    _check_pairs(pairs, a, b, (exact[a, b] / 4).astype(np.float32))

    hits = build(x, "flat").range(x, threshold)
    q, i = np.nonzero(exact >= quarter)
    assert np.array_equal(hits.query, q) and np.array_equal(hits.ids, i)
    np.testing.assert_array_equal(hits.similarity, (exact[q, i] / 4).astype(np.float32))


@given(**DATA, n_queries=st.integers(0, 15), threshold=THRESHOLDS)
def test_flat_range_equals_brute_force(seed, n, dim, clustered, half, zeros, n_queries,
                                       threshold):
    x = _embeddings(seed, n, dim, clustered, zeros)
    rng = np.random.default_rng(seed + 1)
    queries = np.vstack([x[: n_queries // 2] + 0.05 * rng.standard_normal((min(n, n_queries // 2),
                                                                            dim)),
                         rng.standard_normal((n_queries - min(n, n_queries // 2), dim)),
                         np.zeros((1, dim))]).astype(np.float32)  # last query: zero, no hits
    if half:
        x, queries = x.astype(np.float16), queries.astype(np.float16)
    hits = build(x, "flat").range(queries, threshold)
    sims = _reference_similarities(queries, x)
    q, i = np.nonzero(sims >= threshold)
    assert hits.query.dtype == np.int64 and hits.ids.dtype == np.int64
    assert np.array_equal(hits.query, q) and np.array_equal(hits.ids, i)
    np.testing.assert_allclose(hits.similarity, sims[q, i], rtol=0, atol=2e-7)


@given(**DATA, threshold=THRESHOLDS)
def test_range_over_the_items_mirrors_the_self_join(seed, n, dim, clustered, half, zeros,
                                                    threshold):
    x = _embeddings(seed, n, dim, clustered, zeros)
    if half:
        x = x.astype(np.float16)
    hits = build(x, "flat").range(x, threshold)
    pairs = self_join(x, threshold, block=16)
    forward = hits.query < hits.ids
    assert np.array_equal(hits.query[forward], pairs.a)
    assert np.array_equal(hits.ids[forward], pairs.b)
    backward = hits.query > hits.ids
    assert sorted(zip(hits.ids[backward].tolist(), hits.query[backward].tolist())) == \
        list(zip(pairs.a.tolist(), pairs.b.tolist()))


@given(**DATA, n_queries=st.integers(0, 12), k=st.sampled_from([0, 1, 5, 200]))
def test_flat_knn_equals_brute_force(seed, n, dim, clustered, half, zeros, n_queries, k):
    x = _embeddings(seed, n, dim, clustered, zeros)
    queries = _embeddings(seed + 1, n_queries, dim, clustered, 1)
    if half:
        x, queries = x.astype(np.float16), queries.astype(np.float16)
    found = build(x, "flat").knn(queries, k)
    assert found.ids.shape == found.similarity.shape == (n_queries, k)
    assert found.ids.dtype == np.int64 and found.similarity.dtype == np.float32
    sims = _reference_similarities(queries, x)
    for row, ids, got in zip(sims, found.ids, found.similarity):
        expected = np.sort(row[np.isfinite(row)])[::-1][:k]  # the best k, from valid pairs
        present = ids >= 0
        assert present.sum() == len(expected) and np.all(present[: len(expected)])
        assert np.all(np.isneginf(got[~present]))
        assert len(set(ids[present].tolist())) == len(expected)
        np.testing.assert_allclose(got[present], expected, rtol=0, atol=2e-6)
        np.testing.assert_allclose(row[ids[present]], got[present], rtol=0, atol=2e-6)
        assert np.all(np.diff(got[present]) <= 0)  # best first


def _hard_set(seed: int, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A set where approximate search can fail: clusters of widely varying spread, half the
    points alone, and queries far from any item (noise as large as the signal)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 20, dim))
    members = n // 2
    spread = rng.uniform(0.05, 1.5, (members, 1))
    clustered = centres[rng.integers(0, len(centres), members)] + \
        spread * rng.standard_normal((members, dim))
    items = np.vstack([clustered, rng.standard_normal((n - members, dim))])
    queries = items[rng.integers(0, n, 300)] + rng.standard_normal((300, dim))
    return items.astype(np.float32), queries.astype(np.float32)


def _recall_at_10(truth: np.ndarray, found: np.ndarray) -> float:
    return float(np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found)]))


# kind, recall it must reach, a crippled setting of it, the recall that setting stays below
APPROXIMATE = [("hnsw", 0.95, lambda index: setattr(index.hnsw, "efSearch", 4), 0.85),
               ("ivf", 0.85, lambda index: setattr(index, "nprobe", 1), 0.7)]


@pytest.mark.parametrize("kind, least_recall, cripple, crippled_recall", APPROXIMATE)
def test_approximate_recall_against_exact(kind, least_recall, cripple, crippled_recall):
    items, queries = _hard_set(7, 3000, 128)
    exact, approx = build(items, "flat"), build(items, kind)
    assert approx.kind == kind and not approx.exact
    truth = exact.knn(queries, 10).ids
    recall = _recall_at_10(truth, approx.knn(queries, 10).ids)
    assert recall >= least_recall, recall

    threshold = 0.5
    truth_hits, hits = exact.range(queries, threshold), approx.range(queries, threshold)
    true_pairs = set(zip(truth_hits.query.tolist(), truth_hits.ids.tolist()))
    found_pairs = set(zip(hits.query.tolist(), hits.ids.tolist()))
    assert len(true_pairs) > 500  # the range is not trivially small
    assert found_pairs <= true_pairs  # never below the threshold
    assert len(found_pairs) / len(true_pairs) >= least_recall
    sims = _reference_similarities(queries, items)[hits.query, hits.ids]
    np.testing.assert_allclose(hits.similarity, sims, rtol=0, atol=2e-7)  # exact scores

    # The set is hard enough to tell: the same index with its search crippled does worse.
    cripple(approx.faiss_index)
    assert _recall_at_10(truth, approx.knn(queries, 10).ids) < crippled_recall


def test_hnsw_range_grows_k_past_its_first_guess():
    """A cluster larger than RANGE_START_K: every member is found, not the first k only."""
    rng = np.random.default_rng(3)
    size = 3 * vectors.RANGE_START_K
    cluster = rng.standard_normal(32) + 0.01 * rng.standard_normal((size, 32))
    items = np.vstack([cluster, rng.standard_normal((500, 32))]).astype(np.float32)
    hits = build(items, "hnsw").range(items[:1], 0.99)
    assert np.array_equal(hits.ids, np.arange(size))


def test_auto_is_flat_up_to_the_threshold():
    x = _embeddings(1, 12, 8, False, 0)
    with mock.patch.object(vectors, "FLAT_MAX_VECTORS", 12):
        assert build(x).kind == "flat" and build(x).exact
    with mock.patch.object(vectors, "FLAT_MAX_VECTORS", 11):
        assert build(x).kind == "hnsw"
