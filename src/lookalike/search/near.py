"""Near matches of pictures that were never scanned, by their hash signatures, under a rule
of rule.py: `lookalike query`, `lookalike calibrate` and layout tiles (tiles.py) share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..index.store import Codes, Index
from ..methods.registry import MethodSpec
from ..types import Signature
from . import binary
from .rule import Rule, confirmed, orientation_rule, usable_rows


def code_cache(index: Index) -> Callable[[MethodSpec], Codes]:
    """Each method's identity codes, read from the index once (queries carry the variants)."""
    loaded: dict[str, Codes] = {}

    def codes_of(spec: MethodSpec) -> Codes:
        if spec.name not in loaded:
            loaded[spec.name] = index.load_codes(spec, identity_only=True)
        return loaded[spec.name]

    return codes_of


@dataclass(frozen=True)
class NearHits:
    """Query picture `query` (its row in the batch) is near indexed content `content_id`, at
    `distance`, through the query's flip or turn `variant`."""

    query: np.ndarray  # (M,) int64
    content_id: np.ndarray  # (M,) int64
    distance: np.ndarray  # (M,) int32
    variant: np.ndarray  # (M,) int8


class NearSearch:
    """The one path from the signatures of pictures that were never scanned to their near
    matches in the index under a rule: `lookalike query` and `lookalike calibrate` share it.

    The indexed codes are read once (through `codes_of`, which may cache them) and reused
    for every batch of queries. `engine`: binary.search's method (None: by cost).
    """

    def __init__(self, index: Index, rule: Rule, codes_of: Callable[[MethodSpec], Codes],
                 engine: str | None = None):
        self.index, self.rule, self.engine = index, rule, engine
        codes = codes_of(rule.primary)
        rows = usable_rows(codes, rule.primary)
        self.content_ids = codes.content_ids[rows]
        self.items = np.ascontiguousarray(codes.codes[rows, 0])
        self._confirm_codes = codes_of(rule.confirm) if rule.confirm is not None else None

    @staticmethod
    def _stack(signatures: Sequence[dict[str, Signature]],
               spec: MethodSpec) -> tuple[np.ndarray, np.ndarray]:
        """(Q, variants, nbytes) codes of `spec` for the batch, and which are strong enough."""
        values = [s[spec.name] for s in signatures]
        codes = np.frombuffer(b"".join(v.value for v in values), dtype=np.uint8)
        good = np.fromiter((v.quality >= spec.min_quality for v in values), dtype=bool,
                           count=len(values))
        return codes.reshape(len(values), spec.variants, spec.nbytes), good

    def nearest(self, signatures: Sequence[dict[str, Signature]], k: int) -> NearHits:
        """The k closest indexed pictures of each query by the primary hash, at any distance
        (no radius, no confirming hash)."""
        codes, good = self._stack(signatures, self.rule.primary)
        rows = np.flatnonzero(good)
        hits = binary.knn(self.items, codes[rows], k)
        return NearHits(rows[hits.query], self.content_ids[hits.item], hits.distance,
                        hits.variant)

    def matches(self, signatures: Sequence[dict[str, Signature]]) -> NearHits:
        """Every indexed picture within the rule of each query: the primary hash within its
        radius at the best flip or turn (the orientation rule of dupes), confirmed by the
        second hash where the rule has one."""
        rule = self.rule
        codes, good = self._stack(signatures, rule.primary)
        rows = np.flatnonzero(good)  # too weak a code matches nothing (near-blank pictures)
        queries = codes[rows]
        hits = binary.search(self.items, queries, rule.radius, self.engine)
        hits = orientation_rule(rule, hits, queries[hits.query, 0], self.items[hits.item])
        item_ids = self.content_ids[hits.item]
        keep = np.ones(item_ids.size, dtype=bool)
        if rule.confirm is not None:
            confirm, strong = self._stack(signatures, rule.confirm)
            # a query too weak for the confirming hash keeps its matches unconfirmed
            checked = np.flatnonzero(strong[rows][hits.query])
            keep[checked] = confirmed(rule, self.index, item_ids[checked], item_ids[checked],
                                      hits.variant[checked],
                                      confirm[rows][hits.query[checked]], self._confirm_codes)
        hits = hits.take(keep)
        return NearHits(rows[hits.query], item_ids[keep], hits.distance, hits.variant)
