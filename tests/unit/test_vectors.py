"""search/vectors.py: normalisation, bounded memory of the self-join, the projection it
chooses, typed input errors, empty inputs."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lookalike.search import vectors
from lookalike.search.vectors import build, normalise, self_join


def test_normalise_makes_unit_rows_and_zeroes_invalid_ones():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 10)).astype(np.float16) * np.float16(30)
    x[2] = 0
    x[4, 1] = np.nan
    x[5, 0] = np.inf
    units = normalise(x)
    assert units.dtype == np.float32 and units.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(units[[0, 1, 3]], axis=1), 1.0, atol=1e-6)
    assert not units[[2, 4, 5]].any()
    direction = x[0].astype(np.float64) / np.linalg.norm(x[0].astype(np.float64))
    np.testing.assert_allclose(units[0], direction, atol=1e-7)


def test_invalid_rows_match_nothing_even_at_the_lowest_threshold():
    x = np.vstack([np.zeros((2, 4)), np.eye(4), [[np.nan, 1, 0, 0]]]).astype(np.float32)
    pairs = self_join(x, -1.0)
    assert set(pairs.a.tolist()) | set(pairs.b.tolist()) == {2, 3, 4, 5}
    assert len(pairs.a) == 6
    index = build(x)
    assert index.size == 7 and index.faiss_index.ntotal == 4
    assert set(index.range(x, -1.0).ids.tolist()) == {2, 3, 4, 5}
    assert index.knn(x[:1], 3).ids.tolist() == [[-1, -1, -1]]


def test_self_join_memory_is_bounded_by_the_block_not_n_squared():
    """6,000 rows: an N x N float32 matrix would be 144 MB, one block of rows against all
    items 12 MB; the join stays within a few 1 MB tiles. (tracemalloc sees NumPy's buffers.)"""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6_000, 16)).astype(np.float32)
    x[3_000:3_100] = x[:100] + 0.01  # some pairs to find
    tracemalloc.start()
    try:
        pairs = self_join(x, 0.99, block=512, projection=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pairs.a) >= 100
    assert peak < 8 * 2 ** 20, peak


def test_projection_is_chosen_where_it_pays_and_changes_nothing():
    """Random 256-d rows at 0.9: a 64-wide bound drops nearly every pair, so the sample
    picks one; the pairs found are the same as with full-width tiles."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5_000, 256)).astype(np.float32)
    x[1::50] = x[::50] + 0.2 * rng.standard_normal((100, 256))  # 100 pairs near 0.98
    rows = np.arange(len(x))
    inverse, _ = vectors._inverse_norms(x)
    sample = vectors._sample_units(x, rows, inverse)
    width = vectors._choose_projection(sample, vectors._projection_basis(sample), 0.9)
    assert 0 < width < 256
    # ... and none where it cannot pay: at 0.2 the bound passes too many pairs
    assert vectors._choose_projection(sample, vectors._projection_basis(sample), 0.2) == 0
    chosen, full = self_join(x, 0.9, projection=width), self_join(x, 0.9, projection=0)
    assert len(full.a) == 100
    assert all(np.array_equal(u, v) for u, v in zip(chosen, full))


def test_bound_vectors_bound_the_similarity():
    rng = np.random.default_rng(3)
    units = normalise(rng.standard_normal((300, 40)))
    basis = vectors._projection_basis(units)[:, :7]
    bounds = vectors._bound_vectors(units, basis)
    assert bounds.shape == (300, 8)
    exact = units.astype(np.float64) @ units.T.astype(np.float64)
    assert np.all(bounds.astype(np.float64) @ bounds.T.astype(np.float64) >= exact - 1e-6)


@pytest.mark.parametrize("call", [
    lambda: build(np.ones(5, np.float32)),
    lambda: build(np.ones((5, 3), np.int64)),
    lambda: build(np.ones((5, 3), np.float32), "lsh"),
    lambda: build(np.ones((5, 3), np.float32)).knn(np.ones((2, 4), np.float32), 1),
    lambda: build(np.ones((5, 3), np.float32)).knn(np.ones((2, 3), np.float32), -1),
    lambda: self_join(np.ones((5, 3), np.float32), 0.5, block=0),
    lambda: self_join(np.ones((5, 3), np.float32), 0.5, projection=-2),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_empty_inputs(kind):
    empty = np.empty((0, 8), np.float32)
    index = build(empty, kind)
    assert index.knn(np.ones((2, 8)), 3).ids.tolist() == [[-1] * 3] * 2
    assert index.range(np.ones((2, 8)), 0.0).query.size == 0
    assert build(np.ones((4, 8)), kind).knn(empty, 3).ids.shape == (0, 3)
    assert build(np.ones((4, 8)), kind).range(empty, 0.0).ids.size == 0
    assert self_join(empty, 0.5).a.size == 0
