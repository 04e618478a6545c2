"""Retrieval metrics over scored pairs: precision/recall, micro average precision (µAP as in
the DISC21 image similarity benchmark), recall at a fixed precision, threshold curves.

Also the IoU of two boxes (where a partial copy was found against where it is).

Pure NumPy on plain arrays; the caller decides what a "pair" and a "positive" are. Scores
here are larger-is-more-alike; a Hamming distance d becomes the score 1 - d / bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PRF:
    precision: float  # NaN when nothing was predicted
    recall: float  # NaN when there is nothing to find
    f1: float


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def precision_recall_f1(tp: int, fp: int, n_positives: int) -> PRF:
    """Precision tp / (tp + fp), recall tp / n_positives, and their harmonic mean."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_positives)
    f1 = _ratio(2 * precision * recall, precision + recall) if tp else 0.0
    return PRF(precision, recall, f1)


def ranked(scores: np.ndarray, is_positive: np.ndarray) -> np.ndarray:
    """The positive flags in rank order: highest score first, and among equal scores the
    negatives first (DISC21's rule: a tie never flatters the result)."""
    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive, dtype=bool)
    if scores.shape != is_positive.shape:
        raise ValueError("scores and is_positive must have the same shape")
    return is_positive[np.lexsort((is_positive, -scores))]


def micro_average_precision(scores: np.ndarray, is_positive: np.ndarray,
                            n_positives: int) -> float:
    """µAP: every scored pair ranked together, AP = sum over the ranks k that hold a positive
    of precision@k, divided by `n_positives` (all positives, also those never scored, which
    count as found at no rank)."""
    flags = ranked(scores, is_positive)
    if n_positives <= 0:
        return float("nan")
    if int(flags.sum()) > n_positives:
        raise ValueError("more positive pairs scored than n_positives")
    hits = np.cumsum(flags)
    precision_at = hits / np.arange(1, flags.size + 1)
    return float(precision_at[flags].sum() / n_positives)


def _precision_cuts(scores: np.ndarray, is_positive: np.ndarray, min_precision: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores in rank order, true positives at each rank, the ranks that end a tie and
    reach `min_precision`): the thresholds recall at precision chooses among."""
    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, flags = scores[order], is_positive[order]
    tp = np.cumsum(flags)
    predicted = np.arange(1, s.size + 1)
    last_of_tie = np.ones(s.size, dtype=bool)
    last_of_tie[:-1] = s[1:] != s[:-1]
    return s, tp, np.flatnonzero(last_of_tie & (tp >= min_precision * predicted))


def recall_at_precision(scores: np.ndarray, is_positive: np.ndarray, n_positives: int,
                        min_precision: float) -> float:
    """The largest recall of a score threshold (everything scoring >= it is predicted) whose
    precision is at least `min_precision`; 0.0 when none reaches it. Thresholds sit between
    distinct scores: tied pairs are kept or dropped together."""
    if n_positives <= 0:
        return float("nan")
    _, tp, ok = _precision_cuts(scores, is_positive, min_precision)
    return float(tp[ok].max() / n_positives) if ok.size else 0.0


def threshold_at_precision(scores: np.ndarray, is_positive: np.ndarray,
                           min_precision: float) -> float | None:
    """The score threshold behind `recall_at_precision` (the largest recall whose precision
    is at least `min_precision`, ties kept or dropped together); None when none reaches it."""
    s, tp, ok = _precision_cuts(scores, is_positive, min_precision)
    if ok.size == 0:
        return None
    return float(s[ok[np.argmax(tp[ok])]])


def counts_at(scores: np.ndarray, thresholds: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """How many of `scores` pass each threshold: score <= t for distances, score >= t when a
    larger score is better (an inlier count, a similarity)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    t = np.asarray(thresholds, dtype=np.float64)
    if higher_is_better:
        return (s.size - np.searchsorted(s, t, side="left")).astype(np.int64)
    return np.searchsorted(s, t, side="right").astype(np.int64)


def precision_curve(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """tp / (tp + fp) element-wise; NaN where nothing passes."""
    tp, fp = np.asarray(tp, dtype=np.float64), np.asarray(fp, dtype=np.float64)
    total = tp + fp
    out = np.full(tp.shape, np.nan)
    np.divide(tp, total, out=out, where=total > 0)
    return out


def loosest_passing(thresholds: np.ndarray, precision: np.ndarray, target: float,
                    higher_is_better: bool) -> int | None:
    """Position of the most permissive threshold whose precision is >= target (the largest
    distance, or the smallest score when higher is better); None when none is."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    passing = np.flatnonzero(np.nan_to_num(np.asarray(precision), nan=-1.0) >= target)
    if passing.size == 0:
        return None
    values = thresholds[passing]
    return int(passing[np.argmin(values) if higher_is_better else np.argmax(values)])


def box_iou(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes; 0.0 when either is
    missing (a detector that found no box scores nothing) or both are empty."""
    if a is None or b is None:
        return 0.0
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
