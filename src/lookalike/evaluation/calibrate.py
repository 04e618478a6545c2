"""Match thresholds measured on the user's own collection.

Positives: a seeded sample of the indexed pictures, each edited in memory by the evaluation
transforms and looked up in the index by the search `lookalike query` runs (NearSearch). A hit
on the source picture (or on a byte or pixel copy of it) is a true positive; every other hit
is false: the collection's own nearest other pictures are its realistic negatives. Per
method, precision and recall at every candidate threshold give a curve, and the most
permissive threshold that still reaches the target precision is chosen.

Precision is a lower bound where the collection already holds near copies of a sampled
picture (they count as false hits), and it is measured on planted edits, not on the copies
the collection really holds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..decode import decode
from ..errors import DecodeError, EvaluationError
from ..index.store import Codes, Index, StoredThreshold
from ..methods.registry import MethodSpec, get_spec
from ..search.dupes import AUTO_PRIMARY, make_rule
from ..search.query import NearSearch, code_cache, signature_names
from ..types import Failure, FileRef, Signature
from ..worker import compute_signatures, read_file
from . import metrics
from .transforms import ALL_EDITS, apply_seeded
from ..methods.local import unpack
from ..search import embed, partial
from ..search.verify import verify

# Exact copies (copy, metadata, png) match at distance 0 whatever the radius: they would only
# inflate recall, so the default edits are the ones that move a hash.
DEFAULT_EDITS = tuple(e for e in ALL_EDITS if e not in ("copy", "metadata", "png"))
# Big pictures are shrunk before editing: hashes look at a small grey image anyway, and a
# 24-megapixel rotation per edit would dominate the run.
MAX_SIDE = 1024
# Hits held at once while scoring: at a wide radius a query meets most of the collection.
HIT_BUDGET = 1 << 19
NOTHING_PASSES = -1.0


@dataclass(frozen=True)
class Scores:
    """Candidates of a batch of query pictures: picture `query` (its row) scored `score`
    against indexed content `content_id`."""

    query: np.ndarray
    content_id: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Scorer:
    """How one method scores query pictures against the index, for calibration.

    thresholds: the candidate thresholds, strictest first; higher_is_better: whether a larger
    score is more alike (an inlier count) or a smaller one (a distance); names: the
    signatures a query picture needs; score: candidates of a batch of pictures' signatures.
    """

    thresholds: np.ndarray
    higher_is_better: bool
    names: tuple[str, ...]
    score: Callable[[Sequence[dict[str, Signature]]], Scores]
    batch: int  # pictures per call of `score`


def hamming_scorer(index: Index, method: str,
                   codes_of: Callable[[MethodSpec], Codes]) -> Scorer:
    """Hamming distance under the method's rule (for "auto": the orientation rule and the
    dHash confirmation of dupes), searched once at half the code length.

    One wide search gives every narrower radius: a hit found under make_rule at radius r is
    exactly a hit of the wide search at distance <= r (tests/integration/test_cli_calibrate.py
    checks this against searches at r).
    """
    probe = make_rule(index, method, max_distance=0)
    if probe is None:
        raise EvaluationError(f"{method!r} matches exact copies only; it has no threshold")
    widest = probe.primary.bits // 2
    # at half the code length most items are hits: every distance beats listing them
    engine = "dense" if hasattr(np, "bitwise_count") else None
    search = NearSearch(index, make_rule(index, method, max_distance=widest), codes_of, engine)

    def score(signatures: Sequence[dict[str, Signature]]) -> Scores:
        found = search.matches(signatures)
        return Scores(found.query, found.content_id, found.distance)

    return Scorer(np.arange(widest + 1, dtype=np.float64), False,
                  tuple(signature_names(search.rule)), score,
                  max(1, HIT_BUDGET // max(1, len(search.items))))


def local_scorer(index: Index, method: str,
                 codes_of: Callable[[MethodSpec], Codes]) -> Scorer:
    """Inliers of geometric verification against the candidates that the inverted file
    gives (as find-in and dupes --partial find them); higher is better."""
    words = partial.build_word_index(index)
    spec = get_spec(method)

    def score(signatures: Sequence[dict[str, Signature]]) -> Scores:
        rows, ids, inliers = [], [], []
        for row, found in enumerate(signatures):
            query = unpack(found[method].value)
            candidates = partial.best_contents(words, partial.query_votes(words, query.plain),
                                               partial.CANDIDATES)
            values = index.values_for(spec, candidates)
            for cid in candidates:
                if cid in values:
                    v = verify(unpack(values[cid]), query, min_inliers=LOCAL_THRESHOLDS[0])
                    if v.confirmed:
                        rows.append(row)
                        ids.append(cid)
                        inliers.append(v.inliers)
        return Scores(np.asarray(rows, np.int64), np.asarray(ids, np.int64),
                      np.asarray(inliers, np.float64))

    return Scorer(np.asarray(LOCAL_THRESHOLDS, np.float64)[::-1], True, (method,), score, 64)


LOCAL_THRESHOLDS = tuple(range(6, 101))  # inlier counts tried for `local`
# Cosine similarities tried for embeddings, strictest first, and the neighbours scored per
# query: at a precision worth choosing, a query's true match is among its nearest few.
VECTOR_THRESHOLDS = np.round(np.arange(1.0, 0.4999, -0.005), 3)
VECTOR_NEIGHBOURS = 50


def vector_scorer(index: Index, method: str,
                  codes_of: Callable[[MethodSpec], Codes]) -> Scorer:
    """Cosine similarity of the embeddings of the index's model (search/embed.py) to each
    query's nearest VECTOR_NEIGHBOURS indexed pictures; higher is better."""
    spec, name = embed.index_method(index)
    search = embed.EmbedSearch(index, spec)

    def score(signatures: Sequence[dict[str, Signature]]) -> Scores:
        vectors = embed.vectors_of([s[embed.NAME].value for s in signatures], spec)
        rows, ids, sims = search.nearest(vectors, VECTOR_NEIGHBOURS)
        keep = sims >= VECTOR_THRESHOLDS[-1]
        return Scores(rows[keep], ids[keep], sims[keep].astype(np.float64))

    return Scorer(VECTOR_THRESHOLDS.astype(np.float64), True, (name,), score, 256)


# Method kind -> scorer.
SCORERS: dict[str, Callable[[Index, str, Callable[[MethodSpec], Codes]], Scorer]] = {
    "hamming": hamming_scorer,
    "local": local_scorer,
    "vector": vector_scorer,
}


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    tp: int  # hits on the source picture or a copy of it
    fp: int  # hits on any other picture
    precision: float  # NaN when nothing passes
    recall: float  # share of the edited pictures whose source passes


@dataclass(frozen=True)
class MethodCalibration:
    method: str
    kind: str
    higher_is_better: bool
    threshold: float  # NOTHING_PASSES when no threshold reaches the target
    precision: float | None
    recall: float | None
    curve: tuple[CurvePoint, ...]

    @property
    def passed(self) -> bool:
        return self.threshold != NOTHING_PASSES


@dataclass(frozen=True)
class Calibration:
    methods: tuple[MethodCalibration, ...]
    target_precision: float
    seed: int
    edits: tuple[str, ...]
    sources: int  # sampled pictures that could be read and edited
    sampled: tuple[str, ...]  # a path of each of them
    queries: int  # edited pictures looked up
    skipped: tuple[Failure, ...]  # sampled pictures that could not be read or edited
    seconds: float


def method_kind(method: str) -> str:
    if method == "embed":  # whichever model the index holds, its kind is "vector"
        return "vector"
    return get_spec(AUTO_PRIMARY if method == "auto" else method).kind


def default_methods(index: Index) -> list[str]:
    """auto, every Hamming method the index holds, and its embeddings."""
    present = index.methods_present()
    hamming = sorted(m for m in present if m != "embed" and get_spec(m).kind == "hamming")
    return ["auto", *hamming, *(["embed"] if "embed" in present else [])]


def calibrate(index: Index, methods: Sequence[str] | None = None, sample: int = 200,
              target_precision: float = 0.99, seed: int = 0,
              edits: Sequence[str] | None = None) -> Calibration:
    """Measure each method's precision/recall curve on edited copies of `sample` indexed
    pictures and choose its threshold (see the module docstring). Stores nothing."""
    started = time.perf_counter()
    edits = tuple(edits or DEFAULT_EDITS)
    _check(sample, target_precision, edits)
    methods = list(methods or default_methods(index))
    codes_of = code_cache(index)
    scorers = {m: _scorer(index, m, codes_of) for m in methods}
    names = sorted({n for s in scorers.values() for n in s.names})
    files = index.live_files()
    picks = _sample(sorted(files), sample, seed)
    sources, signatures, skipped = _edited(files, picks, edits, names, seed)
    if not signatures:
        raise EvaluationError("no indexed picture could be read and edited"
                              + (f" (first failure: {skipped[0].reason})" if skipped else ""))
    copy_label = _copy_labels(index, codes_of)
    results = tuple(_one_method(m, scorers[m], sources, signatures, copy_label,
                                target_precision) for m in methods)
    used = sorted(set(sources.tolist()))
    return Calibration(results, target_precision, seed, edits, len(used),
                       tuple(files[cid][0].path for cid in used), len(signatures),
                       tuple(skipped), time.perf_counter() - started)


def _check(sample: int, target_precision: float, edits: Sequence[str]) -> None:
    if sample < 1:
        raise EvaluationError(f"the sample must hold at least one picture (got {sample})")
    if not 0.0 < target_precision <= 1.0:
        raise EvaluationError(f"target precision must be in (0, 1] (got {target_precision})")
    unknown = [e for e in edits if e not in ALL_EDITS]
    if unknown:
        raise EvaluationError(f"unknown edit(s) {', '.join(unknown)}; known: "
                              f"{', '.join(ALL_EDITS)}")


def _scorer(index: Index, method: str, codes_of) -> Scorer:
    kind = method_kind(method)
    if kind not in SCORERS:
        raise EvaluationError(f"cannot calibrate {method!r}: no scorer for {kind!r} methods "
                              f"(calibrated kinds: {', '.join(SCORERS)})")
    return SCORERS[kind](index, method, codes_of)


def _sample(content_ids: list[int], sample: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(content_ids, min(sample, len(content_ids))))


def _edited(files: dict, picks: list[int], edits: tuple[str, ...], names: list[str],
            seed: int) -> tuple[np.ndarray, list[dict[str, Signature]], list[Failure]]:
    """The source content id and the signatures of every edited picture; what failed."""
    sources: list[int] = []
    signatures: list[dict[str, Signature]] = []
    skipped: list[Failure] = []
    for cid in picks:
        info = files[cid][0]
        try:
            data = read_file(FileRef(info.path, info.bytes, 0))
            image = _bounded(decode(data).image)
        except (OSError, DecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            skipped.append(Failure(info.path, "read", reason))
            continue
        for edit in edits:
            # one generator per (seed, picture, edit): the same run gives the same copies
            rng = random.Random(f"{seed}:{cid}:{edit}")
            try:
                edited, _ = apply_seeded(edit, image, data, rng)
                found = compute_signatures(decode(edited), names)
            except (DecodeError, ValueError, OSError) as exc:
                skipped.append(Failure(info.path, f"edit {edit}", str(exc)))
                continue
            sources.append(cid)
            signatures.append({s.method: s for s in found})
    return np.asarray(sources, dtype=np.int64), signatures, skipped


def _bounded(image: Image.Image) -> Image.Image:
    if max(image.size) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _copy_labels(index: Index, codes_of) -> Callable[[np.ndarray], np.ndarray]:
    """content ids -> the smallest content id with the same pixels (byte copies are one
    content already); a content without a pixels code is its own label."""
    codes = codes_of(get_spec("pixels"))
    ids = codes.content_ids
    labels = ids.copy()
    if ids.size:
        _, inverse = np.unique(codes.codes[:, 0], axis=0, return_inverse=True)
        inverse = inverse.ravel()
        smallest = np.full(inverse.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, inverse, ids)
        labels = smallest[inverse]

    def label(content_ids: np.ndarray) -> np.ndarray:
        out = np.asarray(content_ids, dtype=np.int64).copy()
        if ids.size:
            pos = np.clip(np.searchsorted(ids, out), 0, ids.size - 1)
            known = ids[pos] == out
            out[known] = labels[pos[known]]
        return out

    return label


def _one_method(method: str, scorer: Scorer, sources: np.ndarray,
                signatures: list[dict[str, Signature]], copy_label, target: float
                ) -> MethodCalibration:
    thresholds = scorer.thresholds
    tp = np.zeros(thresholds.size, dtype=np.int64)
    fp = np.zeros(thresholds.size, dtype=np.int64)
    best_true = np.full(len(signatures), np.nan)  # the source's score, per edited picture
    keep_best = np.fmax if scorer.higher_is_better else np.fmin  # NaN: not found yet
    for start in range(0, len(signatures), scorer.batch):
        found = scorer.score(signatures[start:start + scorer.batch])
        rows = found.query + start
        true = copy_label(found.content_id) == copy_label(sources[rows])
        tp += metrics.counts_at(found.score[true], thresholds, scorer.higher_is_better)
        fp += metrics.counts_at(found.score[~true], thresholds, scorer.higher_is_better)
        keep_best.at(best_true, rows[true], found.score[true].astype(np.float64))
    recall = metrics.counts_at(best_true[~np.isnan(best_true)], thresholds,
                               scorer.higher_is_better) / len(signatures)
    precision = metrics.precision_curve(tp, fp)
    curve = tuple(CurvePoint(float(t), int(a), int(b), float(p), float(r))
                  for t, a, b, p, r in zip(thresholds, tp, fp, precision, recall))
    chosen = metrics.loosest_passing(thresholds, precision, target, scorer.higher_is_better)
    kind = method_kind(method)
    if chosen is None:
        return MethodCalibration(method, kind, scorer.higher_is_better, NOTHING_PASSES, None,
                                 None, curve)
    point = curve[chosen]
    return MethodCalibration(method, kind, scorer.higher_is_better, point.threshold,
                             point.precision, point.recall, curve)


def save_thresholds(index: Index, calibration: Calibration) -> list[str]:
    """Store the chosen thresholds (the caller holds the writer lock); a method where nothing
    reached the target is left as it was. Returns the methods stored."""
    stored = []
    for m in calibration.methods:
        if not m.passed:
            continue
        key = m.method
        if m.kind == "vector":
            from ..search import embed

            key = embed.threshold_key(embed.index_spec(index))
        index.set_threshold(StoredThreshold(
            key, m.threshold, calibration.target_precision, m.precision, m.recall,
            calibration.sources, None, curve_json(m.curve)))
        stored.append(m.method)
    return stored


def curve_json(curve: Sequence[CurvePoint]) -> list[dict]:
    """The curve as JSON-ready dicts (NaN precision as null)."""
    return [{"threshold": p.threshold, "tp": p.tp, "fp": p.fp,
             "precision": None if np.isnan(p.precision) else p.precision,
             "recall": p.recall} for p in curve]
