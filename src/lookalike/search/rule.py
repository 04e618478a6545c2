"""The near-match rule of the hash methods (the primary hash, its radius, the confirming
hash and the radius under a flip or turn) and the constants of the "auto" cascade: the small
pieces that finding pairs in the index (dupes), looking up new pictures (near, query), layout
tiles and the thorough mode's decisions share. It imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arguments import in_range
from ..errors import LookalikeError
from ..index.store import Codes, Index
from ..methods import dihedral
from ..methods.registry import CASCADE_HASHES, MethodSpec, get_spec
from ..methods.registry import evidence_rank as method_evidence_rank
from ..types import Match
from . import binary

# "auto": exact copies, plus pHash neighbours (radius 8) confirmed by dHash (radius 10),
# under any flip or rotation. Requiring two independent hashes to agree removes look-alike
# false pairs at little cost in recall (docs/methods.md, "Choosing a method").
AUTO_PRIMARY, AUTO_CONFIRM = CASCADE_HASHES
AUTO_PRIMARY_RADIUS = 8  # wider than pHash alone (6): the dHash check pays for it
AUTO_CONFIRM_RADIUS = 10
# Under a flip or turn, pHash <= 4: eight orientations give a flat or one-gradient picture
# eight chances to meet a stranger, while real turned copies sit at 0-2 (README, "Choosing a
# method": on the 20k benchmark this cut wrong pairs by 60% for 1.6% of recall).
AUTO_TURNED_RADIUS = 4
EXACT = ("bytes", "pixels")
MAX_RADIUS = 256  # bits of the longest code (PDQ): no Hamming radius can mean more
EMBED = "embed"
BYTES_EVIDENCE = 0  # byte-identical files: no method computes them, nothing is stronger


@dataclass(frozen=True)
class Rule:
    primary: MethodSpec
    radius: int
    confirm: MethodSpec | None = None
    confirm_radius: int = 0
    turned_radius: int | None = None  # a tighter radius for matches under a flip or turn


def make_rule(index: Index, method: str = "auto", max_distance: int | None = None,
              confirm_distance: int | None = None, calibrated: bool = True) -> Rule | None:
    """The near-match rule for `method`; None for exact-only methods.

    The radius is `max_distance` if given, else (with `calibrated`) the one `lookalike
    calibrate` stored for `method` (for "auto": its pHash radius), else the method's default.
    """
    if max_distance is None and calibrated:
        stored = index.thresholds().get(method)
        max_distance = None if stored is None else int(round(stored.value))
    return rule_of(set(index.methods_present()), method, max_distance, confirm_distance)


def rule_of(present: set[str], method: str = "auto", max_distance: int | None = None,
            confirm_distance: int | None = None) -> Rule | None:
    """make_rule for a collection whose signatures are of the methods `present`, with no
    calibration (`max_distance` None: the default radius)."""
    in_range(max_distance, 0, MAX_RADIUS, "max_distance")  # MAX_RADIUS: the longest code
    in_range(confirm_distance, 0, MAX_RADIUS, "confirm_distance")
    if method in EXACT:
        return None
    if method == "auto":
        primary = get_spec(AUTO_PRIMARY)
        if primary.name not in present:
            near = [get_spec(m) for m in sorted(present) if get_spec(m).kind == "hamming"]
            return Rule(near[0], _radius(near[0], max_distance)) if near else None
        confirm = get_spec(AUTO_CONFIRM) if AUTO_CONFIRM in present else None
        radius = AUTO_PRIMARY_RADIUS if max_distance is None else min(max_distance,
                                                                      primary.bits)
        radius = radius if confirm else _radius(primary, max_distance)
        return Rule(primary, radius, confirm,
                    AUTO_CONFIRM_RADIUS if confirm_distance is None else confirm_distance,
                    min(radius, AUTO_TURNED_RADIUS))
    spec = get_spec(method)
    if spec.name not in present:
        raise LookalikeError(
            f"the index has no {spec.name!r} signatures; run 'lookalike scan DIR --method "
            f"{spec.name}' first (present: {', '.join(sorted(present)) or 'none'})")
    if spec.kind != "hamming":
        return None
    return Rule(spec, _radius(spec, max_distance))


def _radius(spec: MethodSpec, max_distance: int | None) -> int:
    # A radius of the code's length already matches every code; more only costs time.
    return spec.default_radius if max_distance is None else min(int(max_distance), spec.bits)


def usable_rows(codes: Codes, spec: MethodSpec) -> np.ndarray:
    return np.flatnonzero(codes.quality >= spec.min_quality)


def aligned_rows(codes: Codes, content_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `codes` for `content_ids`, and a mask of which ids have a row."""
    pos = np.searchsorted(codes.content_ids, content_ids)
    pos = np.clip(pos, 0, max(len(codes.content_ids) - 1, 0))
    found = (codes.content_ids[pos] == content_ids) if len(codes.content_ids) else \
        np.zeros(len(content_ids), dtype=bool)
    return pos, found


def confirmed(rule: Rule, index: Index, ids_a: np.ndarray, ids_b: np.ndarray,
              variant: np.ndarray | None = None, query_codes: np.ndarray | None = None,
              codes: Codes | None = None) -> np.ndarray:
    """Mask of pairs whose confirm-method codes are also within the confirm radius, in the
    orientation the primary method found (`variant`: the transform from a to b, or the
    query's variant when `query_codes` are given); with no variant, in any orientation.

    Pairs where either side lacks (or has too weak) a confirm code are kept as they are.
    """
    if rule.confirm is None or ids_a.size == 0:
        return np.ones(ids_a.size, dtype=bool)
    codes = codes if codes is not None else index.load_codes(rule.confirm)
    pos_b, has_b = aligned_rows(codes, ids_b)
    right = codes.codes[pos_b, 0]
    if query_codes is None:
        pos_a, has_a = aligned_rows(codes, ids_a)
        left = codes.codes[pos_a]  # (M, 8, nbytes)
        has_a &= codes.quality[pos_a] >= rule.confirm.min_quality
    else:
        left, has_a = query_codes, np.ones(ids_a.size, dtype=bool)
    if variant is None:
        distance = binary.hamming(left, right[:, None, :]).min(axis=1)
    else:
        rows = np.arange(ids_a.size)
        distance = binary.hamming(left[rows, variant], right)
        if query_codes is None:  # the other direction too: b turned back onto a
            back = np.asarray(dihedral.INVERSE)[variant]
            distance = np.minimum(distance, binary.hamming(left[:, 0], codes.codes[pos_b, back]))
    has_b &= codes.quality[pos_b] >= rule.confirm.min_quality
    return ~(has_a & has_b) | (distance <= rule.confirm_radius)


def orientation_rule(rule: Rule, hits: binary.Hits, left: np.ndarray,
                     right: np.ndarray) -> binary.Hits:
    """Hits whose best match is under a flip or turn must be within rule.turned_radius; one
    beyond it stays only if the pictures as they are (identity codes `left`, `right`, one row
    per hit) are within the radius, and then it is reported as that."""
    if rule.turned_radius is None or hits.query.size == 0:
        return hits
    far = (hits.variant != 0) & (hits.distance > rule.turned_radius)
    distance, variant = hits.distance.copy(), hits.variant.copy()
    distance[far] = binary.hamming(left[far], right[far])
    variant[far] = 0
    keep = ~far | (distance <= rule.radius)
    return binary.Hits(hits.query, hits.item, distance, variant).take(keep)


def evidence_rank(method: str) -> int:
    """The cascade's order of evidence: byte copies, then each method's registered rank
    (exact pixels, then hashes and local features, then embeddings)."""
    return BYTES_EVIDENCE if method == "bytes" else method_evidence_rank(method)


def stronger(match: Match, than: Match | None) -> bool:
    """Whether `match` is better evidence for its pair than `than`: a stronger kind of
    evidence, then a smaller distance."""
    return than is None or ((evidence_rank(match.method), match.distance)
                            < (evidence_rank(than.method), than.distance))
