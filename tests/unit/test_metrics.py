"""evaluation/metrics.py against hand-computed examples (and scikit-learn where installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lookalike.evaluation import metrics


def test_precision_recall_f1_by_hand():
    prf = metrics.precision_recall_f1(tp=3, fp=1, n_positives=6)
    assert prf.precision == 0.75 and prf.recall == 0.5
    assert prf.f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)  # 0.6


def test_nothing_predicted_has_no_precision_and_zero_f1():
    prf = metrics.precision_recall_f1(tp=0, fp=0, n_positives=4)
    assert math.isnan(prf.precision) and prf.recall == 0.0 and prf.f1 == 0.0


def test_micro_ap_counts_positives_never_scored():
    # ranks: + (1/1), - , + (2/3), - ; a third positive was never retrieved
    ap = metrics.micro_average_precision([0.9, 0.8, 0.7, 0.6], [True, False, True, False], 3)
    assert ap == pytest.approx((1 + 2 / 3) / 3)


def test_micro_ap_ties_rank_negatives_first():
    # the two pairs at 1.0 are ranked -, + : precision 1/2 at the first positive, 2/3 after
    ap = metrics.micro_average_precision([1.0, 1.0, 0.5], [True, False, True], 2)
    assert ap == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.micro_average_precision([1.0, 0.9, 0.5], [True, False, True], 2) == \
        pytest.approx((1 + 2 / 3) / 2)


def test_micro_ap_rejects_more_positives_than_exist():
    with pytest.raises(ValueError):
        metrics.micro_average_precision([0.9, 0.8], [True, True], 1)


def test_recall_at_precision_by_hand():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    positive = [True, True, False, True, True]
    # cuts: 1/1, 2/2, 2/3, 3/4, 4/5 (precision), recall 0.2 0.4 0.4 0.6 0.8
    assert metrics.recall_at_precision(scores, positive, 5, 0.99) == pytest.approx(0.4)
    assert metrics.recall_at_precision(scores, positive, 5, 0.75) == pytest.approx(0.8)
    assert metrics.recall_at_precision(scores, positive, 5, 0.76) == pytest.approx(0.8)
    assert metrics.recall_at_precision(scores, positive, 10, 0.7) == pytest.approx(0.4)


def test_recall_at_precision_keeps_ties_together():
    # the tie at 1.0 cannot be split: the cuts are (1 of 2 right) and (2 of 3 right)
    assert metrics.recall_at_precision([1.0, 1.0, 0.5], [True, False, True], 2, 0.99) == 0.0
    assert metrics.recall_at_precision([1.0, 1.0, 0.5], [True, False, True], 2, 0.6) == 1.0


def test_counts_at_both_directions():
    scores = [0, 1, 1, 3]
    assert metrics.counts_at(scores, [0, 1, 2, 3], higher_is_better=False).tolist() == \
        [1, 3, 3, 4]
    assert metrics.counts_at(scores, [0, 1, 2, 3], higher_is_better=True).tolist() == \
        [4, 3, 1, 1]


def test_precision_curve_is_nan_where_nothing_passes():
    curve = metrics.precision_curve([0, 1, 3], [0, 1, 1])
    assert math.isnan(curve[0]) and curve[1:].tolist() == [0.5, 0.75]


def test_loosest_passing_threshold():
    # precision need not fall monotonically: the largest passing radius wins
    assert metrics.loosest_passing([0, 1, 2, 3], [1.0, 1.0, 0.98, 0.995], 0.99, False) == 3
    assert metrics.loosest_passing([0, 1, 2, 3], [1.0, np.nan, 0.5, 0.2], 0.99, False) == 0
    # larger scores are better (an inlier count): the smallest passing score wins
    assert metrics.loosest_passing([5, 10, 15], [0.9, 0.99, 1.0], 0.99, True) == 1
    assert metrics.loosest_passing([0, 1], [0.5, 0.4], 0.99, False) is None


def test_micro_ap_agrees_with_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        scores = rng.permutation(n) / n  # distinct: scikit-learn groups ties differently
        positive = rng.random(n) < 0.4
        positive[0] = True
        missed = int(rng.integers(0, 5))  # positives that were never scored
        ours = metrics.micro_average_precision(scores, positive, int(positive.sum()) + missed)
        theirs = sklearn_metrics.average_precision_score(positive, scores)
        # scikit-learn's recall is over the scored positives only
        assert ours == pytest.approx(theirs * positive.sum() / (positive.sum() + missed))


def test_threshold_at_precision_is_the_cut_behind_recall_at_precision():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    positive = [True, True, False, True, True]
    # precision 1/1 2/2 2/3 3/4 4/5: at 0.99 the cut is after 0.8, at 0.75 after 0.5
    assert metrics.threshold_at_precision(scores, positive, 0.99) == 0.8
    assert metrics.threshold_at_precision(scores, positive, 0.75) == 0.5
    # the tie at 1.0 is kept or dropped whole: no cut reaches 0.99
    assert metrics.threshold_at_precision([1.0, 1.0, 0.5], [True, False, True], 0.99) is None


def test_threshold_and_recall_at_precision_agree_on_random_scores():
    rng = np.random.default_rng(1)
    for _ in range(20):
        scores = rng.integers(0, 8, 40) / 8  # many ties
        positive = rng.random(40) < 0.5
        n = int(positive.sum()) + 3
        cut = metrics.threshold_at_precision(scores, positive, 0.8)
        recall = metrics.recall_at_precision(scores, positive, n, 0.8)
        kept = 0 if cut is None else int((positive & (scores >= cut)).sum())
        assert recall == pytest.approx(kept / n)


def test_box_iou_by_hand():
    assert metrics.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert metrics.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert metrics.box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0  # apart
    assert metrics.box_iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(4 / 100)  # inside
    assert metrics.box_iou(None, (0, 0, 1, 1)) == 0.0  # nothing found
    assert metrics.box_iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0.0  # empty boxes
