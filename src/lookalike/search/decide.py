"""One decision rule for every candidate pair of the thorough mode: a copy-detection
descriptor's score, normalised by each picture's background, judges hash pairs, descriptor
neighbours and local-feature fits alike.

Normalisation (as the DISC21 winners did): a picture's *background* is its similarity to its
k-th nearest other picture of the collection. A picture in a frame, template or style that
many pictures share has close neighbours that are not copies, so a high background; a pair's
normalised score is its cosine similarity less the mean of the two backgrounds. That sinks
pairs in a frame shared by more than k pictures; fewer are left to the local-feature check
below, which does most of the work on the benchmark (bench/README.md, "Thorough mode"). The
background is the collection at search time, so a pair's score can change as the
collection grows; a query is normalised against the same collection (search/query.py).

A pair is a copy when (thresholds chosen on the benchmark's tune split, bench/tune_decide.py),
unless local features fit it on a part of the pictures only (a frame or template they share)
or in other colours:
- its normalised score is at least `high` ("descriptor"), or
- it is at least `low` and a perceptual hash pair ("descriptor + hash") or confirmed by local
  features covering both pictures' content ("descriptor + local features"), or
- a hash pair under a flip or quarter turn (the descriptor is not turn-invariant) that local
  features confirm with the same coverage ("hash + local features").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LookalikeError
from ..index.store import Index
from ..methods import local
from ..methods.dihedral import INVERSE
from ..methods.registry import get_spec
from . import vectors
from .embed import Knn, local_knn
from .local_pairs import judgeable, stored_min_inliers, verify_content_pairs
from .verify import same_thumbnail, verify

TURN_MARGIN = 0.03  # how much better a query's flip or turn must score to be named
DESCRIPTOR = "descriptor"
WITH_HASH = "descriptor + hash"
WITH_LOCAL = "descriptor + local features"
TURNED = "hash + local features"


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the thorough mode, on normalised scores."""

    # Chosen on the tune split of bench/make_copydetect.py's collection (bench/tune_decide.py):
    # at 0.35 / 0.12 precision 0.960, recall 0.799 of family pairs; at 0.30 / 0.08, 0.945
    # and 0.807. The holdout split, never tuned on: 0.945 and 0.804 (0.946 and 0.822 with
    # the cell-wise thumbnail rescue of _local_fits).
    high: float = 0.35  # alone
    low: float = 0.12  # with a hash pair or a local-feature fit
    neighbours: int = 10  # descriptor neighbours of each picture that are candidates
    background_k: int = 10  # the background is the similarity to the k-th nearest other
    # A collection with fewer than background_k + 1 pictures has no k-th neighbour: its
    # background is this prior (the median background on the benchmark's tune split).
    prior_background: float = 0.25
    # Local fits must reach into this share of both pictures' content. A pair that local
    # features fit on less is two pictures in one frame or template, whatever the
    # descriptor says (a fit on a pad, crop or overlay copy covers 0.8-1.0 of the shared
    # part; one on a shared frame 0.25-0.5).
    coverage: float = 0.6

    def __post_init__(self) -> None:
        if not (-1.0 <= self.low <= self.high <= 2.0):
            raise LookalikeError(f"need -1 <= low <= high <= 2, got {self.low}, {self.high}")
        if not (1 <= self.neighbours <= 1000 and 1 <= self.background_k <= 1000):
            raise LookalikeError("neighbours and background_k must be 1-1000")


@dataclass(frozen=True)
class Decided:
    """Pairs of content ids judged copies, with their normalised score and evidence."""

    a: np.ndarray
    b: np.ndarray
    score: np.ndarray  # normalised descriptor score
    variant: np.ndarray  # the hash's flip or turn from a to b (0 for descriptor pairs)
    evidence: np.ndarray  # object array of the strings above


def backgrounds(found: vectors.Neighbours, rule: DecisionRule,
                self_rows: np.ndarray | None = None) -> np.ndarray:
    """Each query's similarity to its background_k-th nearest other row, from a knn against
    the collection with at least background_k + 1 columns. `self_rows`: each query's own
    row in the collection (default: query i is row i), left out; -1 for a query that is not
    in it (a new picture)."""
    sims, ids = found.similarity, found.ids
    rows = np.arange(len(ids)) if self_rows is None else np.asarray(self_rows)
    others = np.where(ids != rows[:, None], sims, -np.inf)  # not the row itself
    others = -np.sort(-others, axis=1)
    k = rule.background_k
    if others.shape[1] < k:
        return np.full(len(ids), rule.prior_background, np.float32)
    kth = others[:, k - 1]
    return np.where(np.isfinite(kth), kth, rule.prior_background).astype(np.float32)


def normalised(similarity: np.ndarray, background_a: np.ndarray,
               background_b: np.ndarray) -> np.ndarray:
    return (np.asarray(similarity, np.float32)
            - (np.asarray(background_a, np.float32) + np.asarray(background_b, np.float32)) / 2)


def decide_pairs(index: Index, content_ids: np.ndarray, units: np.ndarray,
                 hash_a: np.ndarray, hash_b: np.ndarray, hash_variant: np.ndarray,
                 rule: DecisionRule, has_local: bool, knn: Knn = local_knn) -> Decided:
    """Judge the candidates: `content_ids` (sorted) with their (N, d) descriptor rows `units`, and
    the hash pairs (content ids, variant from a to b). Local features, where the index
    holds them, are asked only about pairs the descriptor alone does not settle. `knn`: the
    descriptor neighbour search (embed.local_knn, or the same on a Ray cluster)."""
    n = len(content_ids)
    if n == 0:
        return _decided([], [], [], [], [])
    k = min(max(rule.neighbours, rule.background_k) + 1, n)
    found = knn(units, k)
    background = backgrounds(found, rule)
    # candidates: descriptor neighbours and hash pairs, as unordered row pairs (a < b)
    rows, cols = np.repeat(np.arange(n), k), found.ids.ravel()
    near = (cols >= 0) & (cols != rows)
    near_keys = np.minimum(rows, cols)[near] * n + np.maximum(rows, cols)[near]
    ha, hb = np.searchsorted(content_ids, hash_a), np.searchsorted(content_ids, hash_b)
    ha, hb = np.minimum(ha, n - 1), np.minimum(hb, n - 1)
    usable = (content_ids[ha] == hash_a) & (content_ids[hb] == hash_b) & (ha != hb)
    ha, hb, hv = ha[usable], hb[usable], np.asarray(hash_variant, np.int64)[usable]
    hv = np.where(ha < hb, hv, np.asarray(INVERSE)[hv])  # the variant from the lower row
    hash_keys = np.minimum(ha, hb) * n + np.maximum(ha, hb)
    keys = np.unique(np.concatenate([near_keys, hash_keys]))
    if not len(keys):
        return _decided([], [], [], [], [])
    ra, rb = keys // n, keys % n
    sim = np.einsum("ij,ij->i", units[ra], units[rb])
    score = normalised(sim, background[ra], background[rb])
    is_hash = np.isin(keys, hash_keys)
    variant = np.zeros(len(keys), np.int64)
    variant[np.searchsorted(keys, hash_keys)] = hv

    evidence = np.full(len(keys), "", dtype=object)
    evidence[score >= rule.high] = DESCRIPTOR
    evidence[(evidence == "") & is_hash & (score >= rule.low)] = WITH_HASH
    if has_local:
        ask = (score >= rule.low) | (is_hash & (variant != 0))
        fits, covered, recoloured = _local_fits(index, content_ids[ra[ask]],
                                                content_ids[rb[ask]], variant[ask],
                                                rule.coverage)
        asked = np.flatnonzero(ask)
        confirms = fits & (covered >= rule.coverage)
        undecided = evidence[asked] == ""
        evidence[asked[confirms & undecided & (score[asked] >= rule.low)
                       & (variant[ask] == 0)]] = WITH_LOCAL
        evidence[asked[confirms & undecided & (variant[ask] != 0)]] = TURNED
        # a fit that holds on a part of the pictures only (a shared frame or template), or
        # one whose colours differ (the same product in another colour)
        evidence[asked[(fits & ~confirms) | recoloured]] = ""
    keep = evidence != ""
    return _decided(content_ids[ra[keep]], content_ids[rb[keep]], score[keep],
                    variant[keep], evidence[keep])


@dataclass(frozen=True)
class QueryScores:
    """A new picture against the collection: candidate rows, their normalised score, and
    which of the query's vectors (its flips and turns, row 0 as it is) scored best."""

    rows: np.ndarray
    score: np.ndarray
    variant: np.ndarray


def query_scores(units: np.ndarray, search: vectors.VectorIndex, queries: np.ndarray,
                 rule: DecisionRule, extra_rows: np.ndarray | None = None,
                 known: dict[int, float] | None = None) -> QueryScores:
    """Normalised scores of the query (`queries`: its unit vectors, row 0 as it is, then its
    flips and turns) against its `rule.neighbours` nearest stored rows and `extra_rows` (hash
    matches). The query's background is its own k-th nearest stored picture, each
    candidate's as at search time: scans and queries of one collection give one score to
    one pair. `known`: stored rows' backgrounds from earlier queries (filled here), so a
    long-lived caller does not search for them again."""
    n = len(units)
    if n == 0:
        empty = np.empty(0, np.int64)
        return QueryScores(empty, np.empty(0, np.float32), empty)
    k = min(max(rule.neighbours, rule.background_k), n)
    found = search.knn(queries, k)
    own = backgrounds(vectors.Neighbours(found.ids[:1], found.similarity[:1]), rule,
                      np.asarray([-1]))[0]
    near = np.unique(found.ids[found.ids >= 0])
    sims = queries @ units[near].T  # (variants, candidates)
    nearest = near[np.argsort(-sims.max(axis=0), kind="stable")[:rule.neighbours]]
    rows = np.unique(np.concatenate([nearest, np.asarray(
        extra_rows if extra_rows is not None else [], np.int64)]))
    sims = queries @ units[rows].T
    variant = sims.argmax(axis=0)
    # a flip or turn only where it scores clearly better than the picture as it is
    variant[sims[0] >= sims.max(axis=0) - TURN_MARGIN] = 0
    known = {} if known is None else known
    todo = np.asarray([r for r in rows.tolist() if r not in known], np.int64)
    if len(todo):
        found_todo = search.knn(units[todo], min(rule.background_k + 1, n))
        known.update(zip(todo.tolist(), backgrounds(found_todo, rule, todo).tolist()))
    theirs = np.asarray([known[r] for r in rows.tolist()], np.float32)
    score = normalised(sims[variant, np.arange(len(rows))], own, theirs)
    return QueryScores(rows, score, variant)


def local_veto(index: Index, content_ids: np.ndarray, query_local: bytes,
                     rule: DecisionRule) -> np.ndarray:
    """Mask of indexed pictures that a query's local signature (packed, as scanned) fits
    on a part of the pictures only (the same frame or template around other content), or
    fits in other colours (verify.recoloured): not copies, whatever the descriptor says."""
    query = local.unpack(query_local)
    values = index.values_for(get_spec("local"), set(content_ids.tolist()))
    least = stored_min_inliers(index)
    out = np.zeros(len(content_ids), bool)
    for i, cid in enumerate(content_ids.tolist()):
        if cid not in values:
            continue
        indexed = local.unpack(values[cid])
        if judgeable(indexed, query):
            fit = verify(indexed, query, least)
            out[i] = (fit.confirmed and fit.coverage < rule.coverage) or fit.recoloured
    return out


def _local_fits(index: Index, a: np.ndarray, b: np.ndarray, variant: np.ndarray,
                coverage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask of pairs that local features confirm, with colours that agree; the coverage
    of their inliers, verify.Verification.coverage, or 1 where it is under `coverage` but
    the thumbnails are the same cell by cell (a re-encode of a plain picture, whose
    features fit on a few cells only); mask of pairs whose geometry fits but
    whose colours differ: verify.recoloured, or for pictures too plain for features, colour
    thumbnails that disagree). Pairs either picture of which has too few features, or no
    local signature, have no fit."""
    keys = list(zip(a.tolist(), b.tolist()))
    transforms = dict(zip(keys, variant.tolist()))
    results = {(r.a, r.b): r for r in verify_content_pairs(
        index, keys, stored_min_inliers(index), transforms=transforms)}
    fits, covered = np.zeros(len(keys), bool), np.zeros(len(keys), np.float32)
    recoloured = np.zeros(len(keys), bool)
    partial = [key for key in keys if (r := results.get(key)) is not None and r.judgeable
               and r.verification.confirmed and r.verification.coverage < coverage]
    same = _same_thumbnails(index, partial, transforms)
    for i, key in enumerate(keys):
        r = results.get(key)
        if r is not None and r.judgeable:
            recoloured[i] = r.verification.recoloured
            if r.verification.confirmed:
                fits[i], covered[i] = True, 1.0 if same.get(key) else r.verification.coverage
        elif r is not None:  # too few features: the colour thumbnails tell a recolour
            recoloured[i] = r.thumbnails_agree is False
    return fits, covered, recoloured


def _same_thumbnails(index: Index, keys: list[tuple[int, int]],
                     transforms: dict[tuple[int, int], int]) -> dict[tuple[int, int], bool]:
    """verify.same_thumbnail of each pair's stored colour thumbnails."""
    if not keys:
        return {}
    values = index.values_for(get_spec("local"), {c for key in keys for c in key})
    thumbs = {cid: local.unpack(value).thumbnail for cid, value in values.items()}
    return {(a, b): thumbs.get(a) is not None and thumbs.get(b) is not None
            and same_thumbnail(thumbs[a], thumbs[b], transforms.get((a, b), 0))
            for a, b in keys}


def _decided(a, b, score, variant, evidence) -> Decided:
    return Decided(np.asarray(a, np.int64), np.asarray(b, np.int64),
                   np.asarray(score, np.float32), np.asarray(variant, np.int8),
                   np.asarray(evidence, dtype=object))
