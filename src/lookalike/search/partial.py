"""Partial copies: which indexed pictures appear inside a query picture, and which indexed
pictures appear inside one another.

Candidates come from an inverted file over the visual words of the `local` signatures (each
indexed picture as it is and mirrored): a picture that shares many rare words with the query
is a candidate, and only candidates are verified geometrically (verify.py). No query is
compared with every indexed picture's features.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..decode import decode
from ..errors import DecodeError, LookalikeError
from ..index.store import Index
from ..methods import local
from ..methods.registry import get_spec
from ..types import Failure, FileRef
from ..worker import read_file
from .verify import MIN_INLIERS, Verification, verify

log = logging.getLogger(__name__)

QUERY_SIDE = 1024  # find-in looks at the query picture at this size ...
QUERY_FEATURES = 2048  # ... with this many features, spread over a finer grid: a small
QUERY_GRID = 8  # copy inside keeps enough of them
QUERY_DRAFT = 1024  # JPEG queries are decoded at least this big
MIN_SHARED = 5  # words a candidate must share with the query (inverted file)
CANDIDATES = 40  # verified per query picture, best word scores first
PAIR_CANDIDATES = 8  # per indexed picture in dupes --partial
STOP_SHARE = 0.01  # words in more than this share of pictures carry no evidence
MIN_STOP = 50


@dataclass(frozen=True)
class WordIndex:
    """The inverted file: for each word, the rows (picture x orientation) that hold it."""

    content_ids: np.ndarray  # (R,) content of each row
    mirrored: np.ndarray  # (R,) bool: the row holds the mirrored picture's words
    offsets: np.ndarray  # (V + 1,) int64 into `rows`
    rows: np.ndarray  # (P,) int32 postings, grouped by word
    idf: np.ndarray  # (V,) float32; 0 for stop words
    row_words: list[np.ndarray] = field(repr=False)  # distinct words of each row

    @property
    def size(self) -> int:
        return len(self.content_ids)


def build_word_index(index: Index) -> WordIndex:
    """Read every live `local` signature's words (in blocks) into an inverted file."""
    spec = get_spec("local")
    content_ids, mirrored, row_words = [], [], []
    for block in index.iter_values(spec):
        for content_id, value in block:
            signature = local.unpack(value)
            for flag, features in ((False, signature.plain), (True, signature.mirrored)):
                if len(features):
                    content_ids.append(content_id)
                    mirrored.append(flag)
                    row_words.append(np.unique(features.words))
    return words_to_index(np.asarray(content_ids, np.int64), np.asarray(mirrored, bool),
                          row_words)


def words_to_index(content_ids: np.ndarray, mirrored: np.ndarray,
                   row_words: list[np.ndarray]) -> WordIndex:
    n_words = 1 << 16
    lengths = np.asarray([len(w) for w in row_words], dtype=np.int64)
    flat = np.concatenate(row_words) if row_words else np.empty(0, np.uint16)
    owner = np.repeat(np.arange(len(row_words), dtype=np.int32), lengths)
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat.astype(np.int64), minlength=n_words)
    offsets = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n_pictures = max(len(np.unique(content_ids)), 1)
    idf = np.log((n_pictures + 1) / (counts + 1)).astype(np.float32)
    idf[counts > max(MIN_STOP, STOP_SHARE * len(row_words))] = 0.0
    return WordIndex(content_ids, mirrored, offsets, owner[order], idf, row_words)


def word_scores(words: WordIndex, query_words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many of the query's distinct words it holds, and their summed idf."""
    query_words = np.unique(query_words).astype(np.int64)
    query_words = query_words[words.idf[query_words] > 0]
    starts, stops = words.offsets[query_words], words.offsets[query_words + 1]
    lengths = stops - starts
    if lengths.sum() == 0:
        return np.zeros(words.size, np.int32), np.zeros(words.size, np.float32)
    idx = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + \
        np.arange(lengths.sum())
    hit_rows = words.rows[idx]
    weights = np.repeat(words.idf[query_words], lengths)
    shared = np.bincount(hit_rows, minlength=words.size).astype(np.int32)
    score = np.bincount(hit_rows, weights=weights, minlength=words.size).astype(np.float32)
    return shared, score


def best_contents(words: WordIndex, shared: np.ndarray, score: np.ndarray, limit: int,
                  exclude: int | None = None) -> list[int]:
    """Content ids of the best-scoring rows with at least MIN_SHARED words, best first."""
    rows = np.flatnonzero(shared >= MIN_SHARED)
    if exclude is not None:
        rows = rows[words.content_ids[rows] != exclude]
    rows = rows[np.argsort(-score[rows], kind="stable")]
    out: list[int] = []
    for cid in words.content_ids[rows].tolist():
        if cid not in out:
            out.append(cid)
            if len(out) == limit:
                break
    return out


@dataclass(frozen=True)
class PartialMatch:
    """Indexed picture `path` was found inside the query (or inside/around another)."""

    path: str
    verification: Verification


@dataclass(frozen=True)
class FindInResult:
    path: str
    matches: tuple[PartialMatch, ...]
    failure: Failure | None = None
    seconds: float = 0.0


def query_features(path: str) -> local.LocalSignature:
    """Features of a query picture at find-in's size (no mirrored set: the index has it)."""
    stat = os.stat(path)
    data = read_file(FileRef(path, stat.st_size, stat.st_mtime_ns))
    decoded = decode(data, draft_size=QUERY_DRAFT)
    return local.compute(np.asarray(decoded.image), decoded.width, decoded.height,
                         QUERY_SIDE, QUERY_FEATURES, mirror=False, grid=QUERY_GRID)


def find_in(index: Index, paths: Sequence[str], min_inliers: int | None = None,
            limit: int = 20) -> list[FindInResult]:
    """The indexed pictures that appear inside each of `paths`, with where and how."""
    _require_local(index)
    threshold = min_inliers or stored_min_inliers(index)
    words = build_word_index(index)
    files = index.live_files()
    spec = get_spec("local")
    results = []
    for path in paths:
        started = time.perf_counter()
        try:
            query = query_features(os.path.abspath(path))
        except (OSError, DecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            results.append(FindInResult(path, (), Failure(path, "decode", reason)))
            continue
        shared, score = word_scores(words, query.plain.words)
        candidates = best_contents(words, shared, score, CANDIDATES)
        values = index.values_for(spec, candidates)
        found = []
        for cid in candidates:
            if cid not in values:
                continue
            v = verify(local.unpack(values[cid]), query, threshold)
            if v.confirmed:
                found += [PartialMatch(f.path, v) for f in files.get(cid, [])]
        found.sort(key=lambda m: (-m.verification.inliers, m.path))
        results.append(FindInResult(path, tuple(found[:limit]), None,
                                    time.perf_counter() - started))
    return results


MIN_FEATURES = 2 * MIN_INLIERS  # fewer on either side: verification cannot judge the pair


@dataclass(frozen=True)
class ContentVerification:
    a: int  # content ids
    b: int
    verification: Verification
    judgeable: bool = True  # both pictures have enough features to tell


def judgeable(a: local.LocalSignature, b: local.LocalSignature) -> bool:
    return min(len(a.plain), len(b.plain)) >= MIN_FEATURES


def partial_pairs(index: Index, min_inliers: int | None = None,
                  candidates: int = PAIR_CANDIDATES) -> list[ContentVerification]:
    """Verified pairs of indexed pictures that share a part: crops, copies inside collages.
    Every picture's own words are looked up in the inverted file; its best candidates are
    verified once per unordered pair."""
    _require_local(index)
    threshold = min_inliers or stored_min_inliers(index)
    words = build_word_index(index)
    plain_rows = np.flatnonzero(~words.mirrored)
    tried: set[tuple[int, int]] = set()
    todo: list[tuple[int, int]] = []
    for row in plain_rows.tolist():
        cid = int(words.content_ids[row])
        shared, score = word_scores(words, words.row_words[row])
        for other in best_contents(words, shared, score, candidates, exclude=cid):
            key = (min(cid, other), max(cid, other))
            if key not in tried:
                tried.add(key)
                todo.append(key)
    return verify_content_pairs(index, todo, threshold)


def verify_content_pairs(index: Index, pairs: Iterable[tuple[int, int]],
                         min_inliers: int | None = None) -> list[ContentVerification]:
    """Verify pairs of contents from their stored `local` signatures, in blocks; pairs where
    either side has no signature are left out of the result."""
    spec = get_spec("local")
    threshold = min_inliers or stored_min_inliers(index)
    pairs = sorted(set(pairs))
    out = []
    for start in range(0, len(pairs), 4096):
        block = pairs[start:start + 4096]
        values = index.values_for(spec, {c for pair in block for c in pair})
        cache: dict[int, local.LocalSignature] = {}

        def sig(cid: int) -> local.LocalSignature:
            if cid not in cache:
                cache[cid] = local.unpack(values[cid])
            return cache[cid]

        for a, b in block:
            if a in values and b in values:
                sa, sb = sig(a), sig(b)
                out.append(ContentVerification(a, b, verify(sa, sb, threshold),
                                               judgeable(sa, sb)))
    return out


def stored_min_inliers(index: Index) -> int:
    """The inlier count `lookalike calibrate` stored for `local`, else the default."""
    stored = index.thresholds().get("local")
    return MIN_INLIERS if stored is None else max(4, int(round(stored.value)))


def _require_local(index: Index) -> None:
    if "local" not in index.methods_present():
        raise LookalikeError("the index has no 'local' signatures; run 'lookalike scan DIR "
                             "--method local' (with the other methods you use) first")


def inliers_to_score(inliers: int) -> float:
    """A 0..1 score for ranking verified pairs with hash matches (1 - exp(-inliers / 30))."""
    return 1.0 - math.exp(-inliers / 30.0)


@dataclass(frozen=True)
class PartialPair:
    """`inner` appears inside `outer` at `box` (outer's pixels), or they are the same
    picture, or they overlap (share a part, neither inside the other)."""

    inner: str
    outer: str
    relation: str  # "inside", "same" or "overlap"
    box: tuple[float, float, float, float] | None
    verification: Verification


def containment_pairs(index: Index, min_inliers: int | None = None) -> list[PartialPair]:
    """`dupes --partial`: every verified pair of files, containments first, then by the
    evidence (inliers)."""
    files = index.live_files()
    out = []
    for r in partial_pairs(index, min_inliers):
        v = r.verification
        if not v.confirmed:
            continue
        relation = v.relation
        inner, outer, box = (r.b, r.a, v.box_in_a) if relation == "b in a" else \
            (r.a, r.b, v.box_in_b)
        kind = "inside" if relation in ("a in b", "b in a") else relation
        for x in files.get(inner, []):
            for y in files.get(outer, []):
                out.append(PartialPair(x.path, y.path, kind, box, v))
    rank = {"inside": 0, "overlap": 1, "same": 2}
    out.sort(key=lambda p: (rank[p.relation], -p.verification.inliers, p.inner, p.outer))
    return out
