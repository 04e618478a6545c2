"""`lookalike find-in`: which indexed pictures appear inside a page, collage or screenshot.

Two looks at each query picture, and their finds together:

* local features (partial.py): the query's features vote in the inverted file and the best
  candidates are verified geometrically; finds copies anywhere, at any scale or angle;
* layout tiles (regions.py): the regions the page's gutters cut it into are hashed and looked
  up like whole pictures; finds copies too soft or plain for local features to verify.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..decode import decode
from ..errors import DecodeError, LookalikeError
from ..index.store import Index
from ..methods import dihedral, local
from ..methods.registry import get_spec
from ..types import Decoded, Failure, FileInfo, FileRef
from ..worker import compute_signatures, read_file
from . import partial, regions
from .dupes import make_rule
from .query import NearSearch, code_cache, signature_names
from .verify import Verification, thumbnails_agree

LOCAL = "local"
# A tile matched by its hashes must also have the indexed picture's colours and light:
# pHash and dHash ignore both, and blank-ish pages, dialogs and dark frames otherwise match
# one another. Mean |difference| of 8x8 CIELAB lightness (each mean removed), and of the
# means. On bench_partial's 20k collection: 0.99 of right tile matches kept, 1 of 15 wrong.
TILE_LIGHTNESS, TILE_BRIGHTNESS = 10.0, 10.0


@dataclass(frozen=True)
class PartialMatch:
    """Indexed picture `path` was found inside the query, where `verification` says (its
    box_in_b is the box in the query). `method` is the evidence: local features, or the hash
    that matched a layout tile (then at `distance`)."""

    path: str
    verification: Verification
    method: str = LOCAL
    distance: int | None = None

    def describe(self) -> str:
        if self.method == LOCAL:
            return self.verification.describe()
        v = self.verification
        turn = f", rotation {round(v.rotation) + 0:+d} deg" if v.rotation else ""
        return (f"layout tile, {self.method} distance {self.distance}, scale {v.scale:.2f}"
                f"{turn}" + (", mirrored" if v.mirror else ""))


@dataclass(frozen=True)
class FindInResult:
    path: str
    matches: tuple[PartialMatch, ...]
    failure: Failure | None = None
    seconds: float = 0.0


class TileSearch:
    """Layout tiles of query pictures looked up by the index's hashes under `dupes`' rule."""

    def __init__(self, index: Index, files: dict[int, list[FileInfo]]) -> None:
        rule = make_rule(index, "auto")
        if rule is None:
            raise LookalikeError("the index has no perceptual hashes to look tiles up with")
        self.index, self.files = index, files
        self.has_local = index.has_signatures(get_spec(LOCAL))
        self.names = signature_names(rule)[1:]  # not "pixels": tiles are never byte copies
        self.search = NearSearch(index, rule, code_cache(index))

    def matches(self, decoded: Decoded, sizes: dict[int, tuple[int, int]]
                ) -> dict[int, tuple[Verification, str, int]]:
        """Indexed content id -> (where, which hash, distance) for each tile of the query
        that matches it; `sizes` gives indexed pictures' width and height."""
        rgb = np.asarray(decoded.image)
        fx, fy = decoded.width / rgb.shape[1], decoded.height / rgb.shape[0]
        boxes = regions.propose(rgb)
        if not boxes:
            return {}
        signatures = []
        for x0, y0, x1, y1 in boxes:
            tile = decoded.image.crop((x0, y0, x1, y1))
            tile_decoded = Decoded(tile, round((x1 - x0) * fx), round((y1 - y0) * fy),
                                   decoded.format, decoded.mode)
            signatures.append({s.method: s for s in compute_signatures(tile_decoded,
                                                                       self.names)})
        hits = self.search.matches(signatures)
        spec = self.search.rule.primary
        thumbs = self.thumbnails(set(hits.content_id.tolist()))
        out: dict[int, tuple[Verification, str, int]] = {}
        for q, cid, d, v in zip(hits.query.tolist(), hits.content_id.tolist(),
                                hits.distance.tolist(), hits.variant.tolist()):
            if cid in out and out[cid][2] <= d:
                continue
            if cid not in thumbs or not thumbnails_agree(
                    local.thumbnail(rgb[boxes[q][1]:boxes[q][3], boxes[q][0]:boxes[q][2]]),
                    thumbs[cid], v, TILE_LIGHTNESS, TILE_BRIGHTNESS):
                continue
            x0, y0, x1, y1 = boxes[q]
            box = (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
            out[cid] = (_tile_verification(box, dihedral.INVERSE[v], sizes.get(cid)),
                        spec.name, d)
        return out


    def thumbnails(self, content_ids: set[int]) -> dict[int, np.ndarray]:
        """Colour thumbnails of indexed pictures: from their `local` signatures, else from
        their files (one that cannot be read is left out)."""
        out: dict[int, np.ndarray] = {}
        if self.has_local and content_ids:
            for cid, value in self.index.values_for(get_spec(LOCAL), content_ids).items():
                thumb = local.unpack(value).thumbnail
                if thumb is not None:
                    out[cid] = thumb
        for cid in content_ids - set(out):
            for f in self.files.get(cid, [])[:1]:
                try:
                    with open(f.path, "rb") as handle:
                        decoded = decode(handle.read())
                except (OSError, DecodeError):
                    continue
                out[cid] = local.thumbnail(np.asarray(decoded.image))
        return out


def _tile_verification(box: tuple[float, float, float, float], variant: int,
                       size: tuple[int, int] | None) -> Verification:
    """The evidence of a tile match in Verification's terms: the box, and the flip or turn
    and scale that take the indexed picture onto the tile."""
    turned = dihedral.TRANSPOSES[variant]
    scale = 0.0
    if size and size[0] > 0:
        scale = (box[3] - box[1] if turned else box[2] - box[0]) / size[0]
    return Verification(True, 0, 0, scale, 90.0 * (variant % 4), variant >= 4, box,
                        a_in_b=1.0)


LOOKS = ("local", "tiles")


def find_in(index: Index, paths: Sequence[str], min_inliers: int | None = None,
            limit: int = 20, looks: Sequence[str] = LOOKS) -> list[FindInResult]:
    """The indexed pictures that appear inside each of `paths`, with where and how.
    `looks`: local features, layout tiles, or both (each where the index allows it)."""
    has_local = "local" in looks and index.has_signatures(get_spec(LOCAL))
    files = index.live_files()
    tiles = None
    if "tiles" in looks:
        try:
            tiles = TileSearch(index, files)
        except LookalikeError:
            pass
    if not has_local and tiles is None:
        partial.require_local(index)  # says what to scan
    threshold = min_inliers or partial.stored_min_inliers(index)
    words = partial.build_word_index(index) if has_local else None
    sizes = {cid: (fs[0].width, fs[0].height) for cid, fs in files.items()}
    results = []
    for path in paths:
        started = time.perf_counter()
        try:
            stat = os.stat(os.path.abspath(path))
            data = read_file(FileRef(os.path.abspath(path), stat.st_size, stat.st_mtime_ns))
            decoded = decode(data, draft_size=partial.QUERY_DRAFT)
        except (OSError, DecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            results.append(FindInResult(path, (), Failure(path, "decode", reason)))
            continue
        found: dict[int, PartialMatch] = {}
        if words is not None:
            for cid, v in _by_features(index, words, decoded, threshold).items():
                found[cid] = PartialMatch("", v)
        if tiles is not None:
            for cid, (v, method, distance) in tiles.matches(decoded, sizes).items():
                if cid not in found:
                    found[cid] = PartialMatch("", v, method, distance)
        matches = [PartialMatch(f.path, m.verification, m.method, m.distance)
                   for cid, m in found.items() for f in files.get(cid, [])]
        matches.sort(key=lambda m: (m.method != LOCAL, -m.verification.inliers,
                                    m.distance or 0, m.path))
        results.append(FindInResult(path, tuple(matches[:limit]), None,
                                    time.perf_counter() - started))
    return results


def _by_features(index: Index, words: partial.FeatureIndex, decoded: Decoded,
                 threshold: int) -> dict[int, Verification]:
    query = partial.query_features_of(np.asarray(decoded.image), decoded.width, decoded.height)
    row_votes = partial.query_votes(words, query.coarse.plain) + \
        partial.query_votes(words, query.fine.plain)
    candidates = partial.best_contents(words, row_votes, partial.CANDIDATES)
    values = index.values_for(get_spec(LOCAL), candidates)
    out = {}
    for cid in candidates:
        if cid in values:
            v = partial.verify_query(local.unpack(values[cid]), query, threshold)
            if v.confirmed:
                out[cid] = v
    return out
