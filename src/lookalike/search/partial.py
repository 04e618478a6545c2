"""Partial copies: which indexed pictures appear inside a query picture, and which indexed
pictures appear inside one another.

Candidates come from an inverted file over the visual words of the `local` signatures (each
indexed picture as it is and mirrored): every query descriptor looks in the lists of its
nearest words and votes for the pictures holding a close descriptor there. Only the pictures
with most votes are verified geometrically (verify.py); no query is compared with every
indexed picture's features.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LookalikeError
from ..index.paths import display_path
from ..index.store import Index
from ..methods import local, vocabulary
from ..methods.registry import get_spec
# The pair check moved to local_pairs.py; its names are still importable from here.
from .local_pairs import (MIN_FEATURES, ContentVerification, cpu_count,  # noqa: F401
                          judgeable, require_local, stored_min_inliers, verify_content_pairs)
from .tiles import TileHit, TileLookup, describe
from .verify import MIN_INLIERS, Verification, verify

if TYPE_CHECKING:
    from ..methods.tiles import Tiles

_cpu_count = cpu_count  # its name when it lived here (bench/bench_partial.py)

QUERY_SIDE = 1024  # find-in looks at the query picture at this size ...
QUERY_FEATURES = 2048  # ... with this many features, spread over a finer grid: a small
QUERY_GRID = 8  # copy inside keeps enough of them
# ... and again at twice that size (upscaled when smaller): a copy filling a fifth of the
# query's width is then seen at about its indexed scale. find-in with both: 0.90 of such
# copies found instead of 0.80 (bench/eval_local.py); the fine set alone loses large copies.
# 6,144 fine features rather than 4,096: 0.93 of them instead of 0.895.
FINE_SIDE, FINE_FEATURES, FINE_GRID = 2048, 6144, 16
QUERY_DRAFT = 2048  # JPEG queries are decoded at least this big
QUERY_PROBES = 4  # words looked up per query descriptor (its 4 nearest fine centres)
MAX_HAMMING = 64  # a vote needs a descriptor this close (of 256 bits) ...
MARGIN = 6  # ... and within this of the query descriptor's best match
MAX_POSTING = 1500  # longer word lists (near-blank patches: ~6% of postings) are skipped
MIN_VOTES = 4  # query descriptors that must vote for a candidate
CANDIDATES = 40  # verified per query picture, most votes first
PAIR_CANDIDATES = 8  # per indexed picture in dupes --partial
ROW_BLOCK = 64  # indexed pictures voted for at once in dupes --partial


@dataclass(frozen=True)
class FeatureIndex:
    """An inverted file over the visual words of every indexed feature, holding each
    feature's descriptor too: a vote is cast only by a descriptor that is also close in
    Hamming distance (Hamming embedding, Jegou et al. 2008), which removes most of the chance
    collisions of a word. Rows are pictures as they are and mirrored."""

    content_ids: np.ndarray  # (R,) content of each row
    mirrored: np.ndarray  # (R,) bool: the row holds the mirrored picture's features
    offsets: np.ndarray  # (V + 1,) int64: word w's postings are offsets[w]:offsets[w + 1]
    rows: np.ndarray  # (P,) int32: the row of each posting
    descriptors: np.ndarray  # (P, 4) uint64: the descriptor of each posting
    row_offsets: np.ndarray  # (R + 1,) int64 into by_row
    by_row: np.ndarray  # (P,) int64: postings grouped by row (a row's own features)
    words: np.ndarray  # (P,) int64: the word of each posting
    # the layout tiles of the pictures that have some (content id -> tiles), read in the
    # same pass: dupes --partial looks them up too
    tiles: dict[int, "Tiles"] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.content_ids)


def build_word_index(index: Index) -> FeatureIndex:
    """Read every live `local` signature (in blocks) into the inverted file."""
    spec = get_spec("local")
    content_ids, mirrored, descriptors, words = [], [], [], []
    tiles = {}
    for block in index.iter_values(spec):
        for content_id, value in block:
            signature = local.unpack(value)
            if signature.tiles is not None and len(signature.tiles):
                tiles[content_id] = signature.tiles
            for flag, features in ((False, signature.plain), (True, signature.mirrored)):
                if len(features):
                    content_ids.append(content_id)
                    mirrored.append(flag)
                    descriptors.append(features.descriptors)
                    words.append(features.words)
    return replace(features_to_index(np.asarray(content_ids, np.int64),
                                     np.asarray(mirrored, bool), descriptors, words),
                   tiles=tiles)


def features_to_index(content_ids: np.ndarray, mirrored: np.ndarray,
                      descriptors: list[np.ndarray], words: list[np.ndarray]) -> FeatureIndex:
    n_words = 1 << 16
    lengths = np.asarray([len(w) for w in words], dtype=np.int64)
    flat_words = np.concatenate(words).astype(np.int64) if words else np.empty(0, np.int64)
    flat = np.concatenate(descriptors) if descriptors else \
        np.empty((0, local.DESCRIPTOR_BYTES), np.uint8)
    owner = np.repeat(np.arange(len(words), dtype=np.int32), lengths)
    order = np.argsort(flat_words, kind="stable")
    offsets = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat_words, minlength=n_words), out=offsets[1:])
    position = np.empty(len(order), dtype=np.int64)  # where each feature went
    position[order] = np.arange(len(order))
    row_offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(lengths, out=row_offsets[1:])
    packed = np.ascontiguousarray(flat).view(np.uint64).reshape(-1, local.DESCRIPTOR_BYTES // 8)
    return FeatureIndex(content_ids, mirrored, offsets, owner[order], packed[order],
                        row_offsets, position, flat_words[order])


def votes(features: FeatureIndex, descriptors: np.ndarray, probes: np.ndarray,
          query_of: np.ndarray, n_queries: int,
          query_contents: np.ndarray | None = None) -> np.ndarray:
    """(n_queries, R) votes: for each query picture, how many of its descriptors have a
    close match in each row. descriptors: (Q, 4) uint64 query descriptors; probes: (Q, K)
    words to look in; query_of: (Q,) the query picture of each descriptor;
    query_contents: (n_queries,) content ids whose own rows are left out (indexed queries)."""
    from . import _vote_kernels

    skip = np.full(n_queries, -1, dtype=np.int64) if query_contents is None else \
        np.asarray(query_contents, dtype=np.int64)
    return _vote_kernels.vote(np.ascontiguousarray(descriptors, dtype=np.uint64),
                              np.ascontiguousarray(probes, dtype=np.int64),
                              np.asarray(query_of, dtype=np.int64), skip, features.offsets,
                              features.rows, features.descriptors, features.content_ids,
                              MAX_POSTING, MAX_HAMMING, MARGIN, n_queries)


def query_votes(features: FeatureIndex, query: local.Features) -> np.ndarray:
    """(R,) votes of one query picture's features, each looked up in QUERY_PROBES words."""
    probes = vocabulary.load().assign_multi(query.descriptors, QUERY_PROBES)
    packed = np.ascontiguousarray(query.descriptors).view(np.uint64).reshape(len(query), -1)
    return votes(features, packed, probes, np.zeros(len(query), np.int64), 1)[0]


def best_contents(features: FeatureIndex, row_votes: np.ndarray, limit: int,
                  exclude: int | None = None) -> list[int]:
    """Content ids of the rows with the most votes (at least MIN_VOTES), best first."""
    rows = np.flatnonzero(row_votes >= MIN_VOTES)
    if exclude is not None:
        rows = rows[features.content_ids[rows] != exclude]
    rows = rows[np.argsort(-row_votes[rows], kind="stable")]
    out: list[int] = []
    for cid in features.content_ids[rows].tolist():
        if cid not in out:
            out.append(cid)
            if len(out) == limit:
                break
    return out


@dataclass(frozen=True)
class QueryFeatures:
    """A query picture's features at find-in's two sizes (no mirrored sets: the index has
    them)."""

    coarse: local.LocalSignature
    fine: local.LocalSignature


def query_features_of(rgb: np.ndarray, width: int, height: int) -> QueryFeatures:
    """Features of upright RGB pixels of a width x height picture (possibly reduced)."""
    import cv2

    coarse = local.compute(rgb, width, height, QUERY_SIDE, QUERY_FEATURES, mirror=False,
                           grid=QUERY_GRID)
    gray = local.grey_for_features(rgb, FINE_SIDE)
    scale = FINE_SIDE / max(gray.shape)
    if scale > 1.0:
        size = (round(gray.shape[1] * scale), round(gray.shape[0] * scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC)
    plain = local.detect(gray, width, height, FINE_FEATURES, FINE_GRID)
    words = vocabulary.load().assign(plain.descriptors)
    fine = local.LocalSignature(local.with_words(plain, words),
                                local.empty_features(width, height), coarse.thumbnail)
    return QueryFeatures(coarse, fine)


def verify_query(indexed: local.LocalSignature, query: QueryFeatures,
                 min_inliers: int = MIN_INLIERS) -> Verification:
    """An indexed picture against a query picture at both sizes, the better fit (the fine
    size is skipped when the coarse one is clearly a match)."""
    coarse = verify(indexed, query.coarse, min_inliers)
    if coarse.confirmed and coarse.inliers >= 3 * min_inliers:
        return coarse
    fine = verify(indexed, query.fine, min_inliers)
    return max(coarse, fine, key=lambda v: (v.confirmed, v.inliers))


def partial_pairs(index: Index, min_inliers: int | None = None,
                  candidates: int = PAIR_CANDIDATES, words: FeatureIndex | None = None
                  ) -> list[ContentVerification]:
    """Verified pairs of indexed pictures that share a part: crops, copies inside collages.
    Every picture's own features vote in the inverted file (`words`, built when not given);
    its best candidates are verified once per unordered pair."""
    require_local(index)
    threshold = min_inliers or stored_min_inliers(index)
    words = words if words is not None else build_word_index(index)
    plain_rows = np.flatnonzero(~words.mirrored)
    blocks = [plain_rows[s:s + ROW_BLOCK] for s in range(0, len(plain_rows), ROW_BLOCK)]

    def block_votes(block: np.ndarray) -> np.ndarray:
        at = np.concatenate([words.by_row[words.row_offsets[r]:words.row_offsets[r + 1]]
                             for r in block])
        counts = words.row_offsets[block + 1] - words.row_offsets[block]
        query_of = np.repeat(np.arange(len(block)), counts)
        return votes(words, words.descriptors[at], words.words[at][:, None], query_of,
                     len(block), words.content_ids[block])

    tried: set[tuple[int, int]] = set()
    todo: list[tuple[int, int]] = []
    with ThreadPoolExecutor(cpu_count()) as pool:  # the vote loop releases the GIL
        for block, found in zip(blocks, pool.map(block_votes, blocks)):
            for row, row_votes in zip(block.tolist(), found):
                cid = int(words.content_ids[row])
                for other in best_contents(words, row_votes, candidates, exclude=cid):
                    key = (min(cid, other), max(cid, other))
                    if key not in tried:
                        tried.add(key)
                        todo.append(key)
    return verify_content_pairs(index, todo, threshold)


@dataclass(frozen=True)
class PartialPair:
    """`inner` appears inside `outer` at `box` (outer's pixels), or they are the same
    picture, or they overlap (share a part, neither inside the other)."""

    inner: str
    outer: str
    relation: str  # "inside", "same" or "overlap"
    box: tuple[float, float, float, float] | None
    verification: Verification
    method: str = "local"  # the evidence: local features, or a layout tile's hash ...
    distance: int | None = None  # ... at this distance

    def describe(self) -> str:
        return describe(self.verification, self.method, self.distance)

    def to_dict(self) -> dict:
        """As `dupes --partial --format json` prints it (find_in.PartialMatch.to_dict shows
        its verification the same way)."""
        v = self.verification
        return {"inner": display_path(self.inner), "outer": display_path(self.outer),
                "relation": self.relation,
                "box": None if self.box is None else [round(c, 1) for c in self.box],
                "method": self.method, "distance": self.distance, "inliers": v.inliers,
                "scale": round(v.scale, 4), "rotation": round(v.rotation, 2),
                "mirror": v.mirror}


def containment_pairs(index: Index, min_inliers: int | None = None) -> list[PartialPair]:
    """`dupes --partial`: every verified pair of files, containments first, then by the
    evidence (inliers); then the pictures found in another's layout tiles only."""
    files = index.live_files()
    require_local(index)
    words = build_word_index(index)
    found: list[tuple[int, int, str, tuple | None, Verification, str, int | None]] = []
    for r in partial_pairs(index, min_inliers, words=words):
        v = r.verification
        if not v.confirmed:
            continue
        relation = v.relation
        inner, outer, box = (r.b, r.a, v.box_in_a) if relation == "b in a" else \
            (r.a, r.b, v.box_in_b)
        kind = "inside" if relation in ("a in b", "b in a") else relation
        found.append((inner, outer, kind, box, v, "local", None))
    known = {frozenset((f[0], f[1])) for f in found}
    for hit, outer in tile_pairs(index, files, words.tiles):
        if frozenset((hit.content_id, outer)) not in known:
            known.add(frozenset((hit.content_id, outer)))
            found.append((hit.content_id, outer, "inside", hit.verification.box_in_b,
                          hit.verification, hit.method, hit.distance))
    out = [PartialPair(x.path, y.path, kind, box, v, method, distance)
           for inner, outer, kind, box, v, method, distance in found
           for x in files.get(inner, []) for y in files.get(outer, [])]
    rank = {"inside": 0, "overlap": 1, "same": 2}
    out.sort(key=lambda p: (rank[p.relation], p.method != "local", -p.verification.inliers,
                            p.distance or 0, p.inner, p.outer))
    return out


def tile_pairs(index: Index, files, tiles: dict[int, "Tiles"]) -> list[tuple[TileHit, int]]:
    """Indexed pictures found in the layout `tiles` of another (hit, the tiles' owner); none
    when the index has no pHash and dHash to look tiles up by."""
    owners, batch = list(tiles), list(tiles.values())
    try:
        lookup = TileLookup(index, files)
    except LookalikeError:
        return []
    return [(hit, owners[hit.owner]) for hit in lookup.hits(batch)
            if hit.content_id != owners[hit.owner]]
