"""Score an index against labelled duplicates: which pairs `dupes` finds, and how well the
pairs it would rank are ordered (µAP).

Labels (JSON) come in three shapes:

    {"pairs": [[a, b], ...], "files": [c, ...]}      duplicate pairs ("files": optional,
                                                       more labelled files with no duplicate)
    {"groups": [[a, b, c], ...], "files": [...]}     every two files of a group are duplicates
    bench/make_collection.py's truth.json            {"groups": [{"original": a, "copies":
                                                       [{"file": b, "transform": t}, ...]}],
                                                       "originals": {a: ..., ...}}

Every other pair of labelled files is a non-duplicate; a found pair with a file that is not
labelled is not judged. Labelled paths are matched to indexed files by exact path, else by
path relative to a scanned folder, else by unique file name.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import EvaluationError
from ..index.store import Index
from ..search.dupes import find_pairs, make_rule
from ..types import Match
from . import metrics
from .collection import read_json

RECALL_AT_PRECISION = 0.99  # the operating point reported as "recall at precision"


@dataclass(frozen=True)
class Labels:
    files: tuple[str, ...]  # every labelled file
    positives: frozenset[tuple[str, str]]  # duplicate pairs, each as a sorted tuple
    transform: dict[tuple[str, str], str]  # (original, copy) pair -> the copy's transform
    shape: str  # "pairs", "groups" or "bench"


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def load_labels(path: str | os.PathLike) -> Labels:
    return parse_labels(read_json(path, "labels"))


def parse_labels(data: object) -> Labels:
    """Labels from decoded JSON in one of the shapes of the module docstring."""
    if not isinstance(data, dict) or not ({"pairs", "groups"} & set(data)):
        keys = ", ".join(sorted(map(str, data))) if isinstance(data, dict) else type(data).__name__
        raise EvaluationError(
            'labels must be {"pairs": [[a, b], ...]}, {"groups": [[a, b, ...], ...]} or a '
            f"bench/make_collection.py truth.json; got {keys or 'an empty object'}")
    extra = _strings(data.get("files", []), "files")
    if "pairs" in data:
        pairs = [_strings(p, "a pair") for p in _list(data["pairs"], "pairs")]
        if any(len(p) != 2 for p in pairs):
            raise EvaluationError("every entry of \"pairs\" must hold exactly two paths")
        return _labels(pairs, extra, {}, "pairs")
    groups = _list(data["groups"], "groups")
    if groups and all(isinstance(g, dict) for g in groups):
        return _bench_labels(groups, data.get("originals", {}))
    return _labels([_strings(g, "a group") for g in groups], extra, {}, "groups")


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise EvaluationError(f'"{what}" must be a list')
    return value


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvaluationError(f"{what} must be a list of paths (strings)")
    return value


def _bench_labels(groups: list[dict], originals: object) -> Labels:
    members, transform = [], {}
    for group in groups:
        try:
            original = group["original"]
            copies = [(c["file"], c.get("transform", "?")) for c in group["copies"]]
        except (KeyError, TypeError):
            raise EvaluationError('each bench group needs "original" and "copies" '
                                  '[{"file": ..., "transform": ...}]') from None
        members.append([original, *(name for name, _ in copies)])
        for name, kind in copies:
            transform[_pair(original, name)] = str(kind)
    extra = list(originals) if isinstance(originals, dict) else []
    return _labels(members, extra, transform, "bench")


def _labels(groups: list[list[str]], extra: list[str], transform: dict, shape: str) -> Labels:
    positives = {_pair(a, b) for g in groups for i, a in enumerate(g) for b in g[i + 1:]
                 if a != b}
    files = tuple(dict.fromkeys([*(f for g in groups for f in g), *extra]))
    if not files:
        raise EvaluationError("the labels name no files")
    return Labels(files, frozenset(positives), transform, shape)


@dataclass(frozen=True)
class PathMatch:
    """How labelled paths were found among the indexed files."""

    indexed: dict[str, str]  # labelled path -> indexed path
    how: dict[str, int]  # "exact", "relative", "name" -> how many were matched so
    missing: tuple[str, ...]  # labelled paths not found (or whose name is ambiguous)


def match_paths(labelled: tuple[str, ...], indexed: list[str], roots: list[str]) -> PathMatch:
    """Each labelled path's indexed file: the same path, else that path under a scanned
    folder, else the indexed file with that name when exactly one has it."""
    live = {os.path.normpath(p): p for p in indexed}
    by_name: dict[str, list[str]] = {}
    for p in indexed:
        by_name.setdefault(os.path.basename(p), []).append(p)
    folders = [r for r in roots if os.path.isdir(r)] or roots
    found: dict[str, str] = {}
    how: Counter = Counter()
    missing = []
    for label in labelled:
        norm = os.path.normpath(label)
        under = [live[c] for c in (os.path.normpath(os.path.join(r, label)) for r in folders)
                 if c in live]
        named = by_name.get(os.path.basename(norm), [])
        if norm in live:
            found[label], kind = live[norm], "exact"
        elif under:
            found[label], kind = under[0], "relative"
        elif len(named) == 1:
            found[label], kind = named[0], "name"
        else:
            missing.append(label)
            continue
        how[kind] += 1
    return PathMatch(found, dict(how), tuple(missing))


@dataclass(frozen=True)
class Evaluation:
    method: str
    radius: int | None  # the method's radius (None: exact copies only)
    calibrated: bool  # whether that radius came from `lookalike calibrate`
    wide_radius: int | None  # the radius of the ranked list behind µAP
    positives: int  # labelled duplicate pairs with both files indexed
    tp: int
    fp: int
    precision: float
    recall: float
    f1: float
    micro_ap: float
    recall_at_precision: float  # at RECALL_AT_PRECISION, over the ranked list
    per_transform: dict[str, tuple[int, int]]  # transform -> (found, labelled pairs)
    matching: PathMatch
    unjudged: int  # found pairs with a file that is not labelled
    incomplete_pairs: int  # labelled pairs with a file that is not indexed


def evaluate(index: Index, labels: Labels, method: str = "auto",
             calibrated: bool = True) -> Evaluation:
    """Pairs found by `find_pairs` at the method's radius against `labels`; µAP and recall
    at precision over the pairs found at a wide radius (a quarter of the code length, or
    the method's radius if wider), ranked by score."""
    files = index.live_files()
    matching = match_paths(labels.files, [f.path for fs in files.values() for f in fs],
                           index.scanned_roots())
    if not matching.indexed:
        raise EvaluationError(
            f"none of the {len(labels.files)} labelled files is in the index "
            f"(first: {labels.files[0] if labels.files else 'none'}); scan their folder, or "
            "give paths relative to the scanned folder")
    to_index = matching.indexed
    positives = {_pair(to_index[a], to_index[b]) for a, b in labels.positives
                 if a in to_index and b in to_index}
    judged = set(to_index.values())
    rule = make_rule(index, method, calibrated=calibrated)
    radius = None if rule is None else rule.radius
    at_radius = find_pairs(index, method, calibrated=calibrated)
    found = _judge(at_radius, judged)
    tp = sum(1 for pair in found if pair in positives)
    prf = metrics.precision_recall_f1(tp, len(found) - tp, len(positives))
    wide_radius = None if rule is None else max(radius, rule.primary.bits // 4)
    ranked = found if rule is None or wide_radius == radius else \
        _judge(find_pairs(index, method, max_distance=wide_radius), judged)
    scores = np.fromiter(ranked.values(), dtype=np.float64, count=len(ranked))
    flags = np.fromiter((p in positives for p in ranked), dtype=bool, count=len(ranked))
    per_transform: dict[str, list[int]] = {}
    for (a, b), kind in labels.transform.items():
        if a in to_index and b in to_index:
            counts = per_transform.setdefault(kind, [0, 0])
            counts[0] += _pair(to_index[a], to_index[b]) in found
            counts[1] += 1
    return Evaluation(
        method, radius, calibrated and rule is not None and method in index.thresholds(),
        wide_radius, len(positives), tp, len(found) - tp, prf.precision, prf.recall, prf.f1,
        metrics.micro_average_precision(scores, flags, len(positives)),
        metrics.recall_at_precision(scores, flags, len(positives), RECALL_AT_PRECISION),
        {k: (v[0], v[1]) for k, v in sorted(per_transform.items())}, matching,
        sum(1 for m in at_radius if m.a not in judged or m.b not in judged),
        sum(1 for a, b in labels.positives if a not in to_index or b not in to_index))


def _judge(matches: list[Match], judged: set[str]) -> dict[tuple[str, str], float]:
    """Found pairs between labelled files -> their best score."""
    out: dict[tuple[str, str], float] = {}
    for m in matches:
        if m.a in judged and m.b in judged and m.a != m.b:
            key = _pair(m.a, m.b)
            out[key] = max(out.get(key, -np.inf), m.score)
    return out
