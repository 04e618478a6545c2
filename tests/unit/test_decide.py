"""search/decide.py's pure parts: backgrounds, normalised scores, query scores."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.search import vectors
from lookalike.search.decide import DecisionRule, backgrounds, normalised, query_scores


def _units(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    return vectors.normalise(np.random.default_rng(seed).normal(size=(n, dim)))


def test_the_background_is_the_kth_nearest_other_picture_not_itself():
    units = _units(40)
    rule = DecisionRule(background_k=3)
    found = vectors.build(units).knn(units, 4)
    bg = backgrounds(found, rule)
    sims = units @ units.T
    np.fill_diagonal(sims, -np.inf)
    expected = -np.sort(-sims, axis=1)[:, 2]
    assert np.allclose(bg, expected, atol=1e-5)


def test_a_picture_among_many_look_alikes_has_a_high_background():
    rng = np.random.default_rng(1)
    frame = rng.normal(size=32)
    framed = vectors.normalise(frame + 0.3 * rng.normal(size=(12, 32)))  # one shared frame
    units = np.vstack([framed, _units(30, seed=2)])
    rule = DecisionRule(background_k=10)
    bg = backgrounds(vectors.build(units).knn(units, 11), rule)
    assert bg[:12].min() > bg[12:].max()
    a, b = 0, 1  # two framed pictures: alike, but so is everything around them
    score = normalised(units[a] @ units[b], bg[a], bg[b])
    assert units[a] @ units[b] > 0.8 and score < 0.2


def test_a_small_collection_uses_the_prior():
    units = _units(5)
    rule = DecisionRule(background_k=10, prior_background=0.25)
    bg = backgrounds(vectors.build(units).knn(units, 5), rule)
    assert np.all(bg == np.float32(0.25))


def test_query_scores_normalise_like_the_scan_and_name_the_best_turn():
    units = _units(60, seed=3)
    search = vectors.build(units)
    rule = DecisionRule(background_k=5, neighbours=5)
    query = np.vstack([_units(1, seed=9), units[7:8]])  # as it is, then "turned": row 7
    found = query_scores(units, search, query, rule)
    best = int(np.argmax(found.score))
    assert found.rows[best] == 7 and found.variant[best] == 1
    known: dict[int, float] = {}
    again = query_scores(units, search, query, rule, known=known)
    assert 7 in known and np.allclose(again.score, found.score)


def test_a_bad_rule_is_a_typed_error():
    with pytest.raises(LookalikeError):
        DecisionRule(high=0.1, low=0.3)
