"""Is this picture already in the index? Queries for files that were never scanned."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xxhash

from ..decode import decode
from ..errors import DecodeError
from ..index.store import Codes, Index
from ..methods import dihedral
from ..methods.registry import get_spec
from ..types import Failure, FileRef, Match
from ..worker import compute_signatures, read_file
from . import binary
from .dupes import confirmed, make_rule, orientation_rule, usable_rows


@dataclass(frozen=True)
class QueryResult:
    path: str
    matches: tuple[Match, ...]
    failure: Failure | None = None


def query(index: Index, paths: Sequence[str], method: str = "auto",
          max_distance: int | None = None, limit: int = 20,
          nearest: int | None = None) -> list[QueryResult]:
    """The indexed files each of `paths` duplicates, closest first.

    With `nearest`, the `nearest` closest pictures by the method's hash are listed whatever
    their distance (no radius, no confirming hash): "how close is the closest?".
    """
    rule = make_rule(index, method, max_distance)
    names = ["pixels"] + ([rule.primary.name] if rule else []) + \
        ([rule.confirm.name] if rule and rule.confirm else [])
    files = index.live_files()
    loaded: dict[str, Codes] = {}

    def codes_of(spec) -> Codes:  # each method's codes are read once for all the queries
        if spec.name not in loaded:  # queries carry the variants: identity codes suffice
            loaded[spec.name] = index.load_codes(spec, identity_only=True)
        return loaded[spec.name]

    results = []
    for path in paths:
        try:
            result = _one(index, os.path.abspath(path), rule, names, files, method, codes_of,
                          nearest)
        except (OSError, DecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            result = QueryResult(path, (), Failure(path, "decode", reason))
        results.append(QueryResult(path, result.matches[:limit], result.failure))
    return results


def _one(index: Index, path: str, rule, names, files, method: str, codes_of,
         nearest: int | None = None) -> QueryResult:
    stat = os.stat(path)
    data = read_file(FileRef(path, stat.st_size, stat.st_mtime_ns))
    matches: list[Match] = []
    content_id = index.content_ids_by_hash([xxhash.xxh3_128_digest(data)]).values()
    for cid in content_id:
        matches += [Match(path, f.path, "bytes", 0, 1.0) for f in files.get(cid, [])]
    decoded = decode(data)
    signatures = {s.method: s for s in compute_signatures(decoded, names)}
    if method in ("auto", "pixels"):
        pixels = codes_of(get_spec("pixels"))
        value = np.frombuffer(signatures["pixels"].value, dtype=np.uint8)
        same = np.flatnonzero((pixels.codes[:, 0] == value).all(axis=1))
        for cid in pixels.content_ids[same].tolist():
            matches += [Match(path, f.path, "pixels", 0, 1.0) for f in files.get(cid, [])]
    if rule is not None:
        matches += _near(index, path, rule, signatures, files, codes_of, nearest)
    best: dict[str, Match] = {}
    for m in matches:
        if m.b not in best or m.distance < best[m.b].distance:
            best[m.b] = m
    return QueryResult(path, tuple(sorted(best.values(), key=lambda m: (-m.score, m.b))))


def _near(index: Index, path: str, rule, signatures, files, codes_of,
          nearest: int | None = None) -> list[Match]:
    spec = rule.primary
    mine = signatures[spec.name]
    if mine.quality < spec.min_quality:
        return []
    codes = codes_of(spec)
    rows = usable_rows(codes, spec)
    query_codes = np.frombuffer(mine.value, dtype=np.uint8).reshape(1, spec.variants, spec.nbytes)
    items = np.ascontiguousarray(codes.codes[rows, 0])
    if nearest:
        hits = binary.knn(items, query_codes, nearest)
    else:
        hits = binary.search(items, query_codes, rule.radius)
        hits = orientation_rule(rule, hits, query_codes[hits.query, 0], items[hits.item])
    item_ids = codes.content_ids[rows][hits.item]
    confirm_codes = None
    if rule.confirm is not None and not nearest:
        c = signatures[rule.confirm.name]
        one = np.frombuffer(c.value, dtype=np.uint8).reshape(1, rule.confirm.variants, -1)
        confirm_codes = np.repeat(one, item_ids.size, axis=0)
        if c.quality < rule.confirm.min_quality:
            confirm_codes = None
    keep = np.ones(item_ids.size, dtype=bool)
    if confirm_codes is not None:
        keep = confirmed(rule, index, item_ids, item_ids, hits.variant, confirm_codes,
                         codes_of(rule.confirm))
    out = []
    for cid, d, v in zip(item_ids[keep].tolist(), hits.distance[keep].tolist(),
                         hits.variant[keep].tolist()):
        for f in files.get(cid, []):
            out.append(Match(path, f.path, spec.name, d, 1.0 - d / spec.bits,
                             dihedral.describe(v)))
    return out
