"""The distributed descriptor search (search/distributed_vectors.py), its tasks run one after
another in this process without Ray: the self-join equals vectors.self_join exactly (the same
pairs, the same float32 similarities) for every shard count, and the knn equals a flat
index's knn within FAISS's float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.search import distributed_vectors as dv
from lookalike.search import vectors


@pytest.fixture(autouse=True)
def _one_thread():
    """As in a Ray task (one CPU each): FAISS's OpenMP threads only cost time at these sizes."""
    with dv._one_thread():
        yield


def _planted(rng, n: int, dim: int, planted: int, dtype=np.float32) -> np.ndarray:
    """Random rows, `planted` of them near copies of others at similarities spread over
    0.3-1.0 (so every threshold below has pairs on both sides of it), an exact copy, a zero
    row and a non-finite one (both invalid: they match nothing)."""
    rows = rng.standard_normal((n, dim))
    for _ in range(planted):
        a, b = rng.choice(np.arange(4, n), 2, replace=False)
        noise = rng.standard_normal(dim)
        rows[b] = rows[a] / np.linalg.norm(rows[a]) + rng.uniform(0.0, 1.5) * (
            noise / np.linalg.norm(noise))
    rows[1] = rows[n - 1]  # an exact copy: similarity 1 (or its float32 rounding)
    rows[2] = 0.0
    rows[3, 0] = np.inf if dtype == np.float32 else np.nan
    return rows.astype(dtype)


def _same_pairs(expected: vectors.Pairs, got: vectors.Pairs) -> None:
    for field in ("a", "b", "similarity"):
        want, have = getattr(expected, field), getattr(got, field)
        assert have.dtype == want.dtype, field
        np.testing.assert_array_equal(have, want, err_msg=field)


@pytest.mark.parametrize("dim", [8, 64, 512])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_block_join_equals_the_local_self_join(dim, dtype):
    rng = np.random.default_rng(dim)
    array = _planted(rng, 700, dim, planted=120, dtype=dtype)
    for threshold in (0.3, 0.75, 0.95):
        local = vectors.self_join(array, threshold)
        assert len(local.a) >= 10  # the planted pairs reach every threshold
        for shards in (1, 2, 3, 7):  # 700 / 3 and 700 / 7: uneven and even shards
            _same_pairs(local, dv.self_join_local(array, threshold, shards))


def test_block_join_with_the_projection_bound_and_thresholds_on_a_pair():
    """9,000 rows: the local join (and a diagonal task) picks a projection bound; a threshold
    set to a pair's exact float32 similarity keeps that pair (ties are kept) in both."""
    rng = np.random.default_rng(7)
    array = _planted(rng, 9000, 64, planted=400)
    local = vectors.self_join(array, 0.6)
    tie = float(local.similarity[len(local.a) // 2])
    for threshold in (0.6, tie):
        local = vectors.self_join(array, threshold)
        assert tie in local.similarity
        for shards in (1, 4, 5):
            _same_pairs(local, dv.self_join_local(array, threshold, shards))


def test_block_join_edges():
    rng = np.random.default_rng(3)
    one = rng.standard_normal((1, 16)).astype(np.float32)
    assert len(dv.self_join_local(one, 0.0, 3).a) == 0
    twins = np.vstack([one, one, one])
    _same_pairs(vectors.self_join(twins, 0.99), dv.self_join_local(twins, 0.99, 3))
    assert len(dv.self_join_local(twins, 0.99, 3).a) == 3
    empty = np.empty((0, 16), np.float32)
    assert len(dv.self_join_local(empty, 0.5, 4).a) == 0
    with pytest.raises(ValueError):
        dv.self_join_local(one, 0.5, 0)
    with pytest.raises(ValueError):
        dv.self_join_local(twins, 0.5, 2, kind="hnsw")


def test_ivf_shards_never_report_a_pair_the_exact_join_does_not_have():
    rng = np.random.default_rng(11)
    array = _planted(rng, 3000, 32, planted=300)
    exact = vectors.self_join(array, 0.7)
    got = dv.self_join_local(array, 0.7, 3, kind="ivf")
    want = dict(zip(zip(exact.a.tolist(), exact.b.tolist()), exact.similarity.tolist()))
    found = dict(zip(zip(got.a.tolist(), got.b.tolist()), got.similarity.tolist()))
    assert found.items() <= want.items()  # same similarity for every pair it finds
    assert len(found) >= 0.5 * len(want)


def test_shard_plans():
    assert dv.shard_starts(10, 3).tolist() == [0, 4, 7, 10]
    assert dv.shard_starts(2, 5).tolist() == [0, 1, 2]  # never an empty shard
    assert dv.block_pairs(3) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    # two CPUs: 4 join tasks wanted, 3 shards give 6; memory: 1M x 512 x 4 B / 256 MB = 8
    assert dv.shard_count(100_000, 512, cpus=2) == 3
    assert dv.shard_count(1_000_000, 512, cpus=2) == 8
    assert dv.shard_count(3, 512, cpus=64) == 3


@pytest.mark.parametrize("dim", [8, 128, 512])
def test_sharded_knn_equals_the_flat_knn(dim):
    rng = np.random.default_rng(100 + dim)
    array = _planted(rng, 900, dim, planted=150)
    local = vectors.build(array, "flat").knn(array, 11)
    for shards in (1, 2, 4, 7):
        got = dv.knn_local(array, 11, shards)
        np.testing.assert_allclose(got.similarity, local.similarity, atol=1e-6, rtol=0)
        differ = got.ids != local.ids
        # an id differs only where two items tie (within the tolerance) at that place
        assert np.all(np.abs(got.similarity[differ] - local.similarity[differ]) <= 1e-6)
        assert differ.mean() < 0.01
        assert (got.ids[2:3] == -1).all() and (got.ids[3:4] == -1).all()  # invalid rows


def test_sharded_knn_with_k_larger_than_a_shard():
    rng = np.random.default_rng(5)
    array = rng.standard_normal((12, 16)).astype(np.float32)
    local = vectors.build(array, "flat").knn(array, 8)
    got = dv.knn_local(array, 8, 5)  # shards of 2-3 rows: each returns -1 padding
    np.testing.assert_array_equal(got.ids, local.ids)
    np.testing.assert_allclose(got.similarity, local.similarity, atol=1e-6, rtol=0)
