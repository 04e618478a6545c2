"""`lookalike find-in`: which indexed pictures appear inside a page, collage or screenshot.

Two looks at each query picture, and their finds together:

* local features (partial.py): the query's features vote in the inverted file and the best
  candidates are verified geometrically; finds copies anywhere, at any scale or angle;
* layout tiles (regions.py): the regions the page's gutters cut it into are hashed and looked
  up like whole pictures (tiles.py); finds copies too soft or plain for local features to
  verify.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..decode import decode
from ..errors import DecodeError, LookalikeError
from ..index.paths import display_path
from ..index.store import Index
from ..methods import local
from ..methods import tiles as tile_signatures
from ..methods.registry import Picture, get_spec
from ..types import Decoded, Failure, FileRef
from ..worker import read_file
from . import partial, regions
from .tiles import TileLookup, describe
from .verify import Verification, region_agrees

LOCAL = "local"


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
        return describe(self.verification, self.method, self.distance)

    def to_dict(self) -> dict:
        """The verification as partial.PartialPair.to_dict shows it; `box` is in the query."""
        v = self.verification
        return {"path": display_path(self.path),
                "box": None if v.box_in_b is None else [round(c, 1) for c in v.box_in_b],
                "method": self.method, "distance": self.distance, "inliers": v.inliers,
                "scale": round(v.scale, 4), "rotation": round(v.rotation, 2),
                "mirror": v.mirror}


@dataclass(frozen=True)
class FindInResult:
    path: str
    matches: tuple[PartialMatch, ...]
    failure: Failure | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """As `find-in --format json` prints it (without the time taken)."""
        return {"path": display_path(self.path), "matches": [m.to_dict() for m in self.matches],
                "error": self.failure.reason if self.failure else None}


LOOKS = ("local", "tiles")


def find_in(index: Index, paths: Sequence[str], min_inliers: int | None = None,
            limit: int = 20, looks: Sequence[str] = LOOKS) -> list[FindInResult]:
    """The indexed pictures that appear inside each of `paths`, with where and how.
    `looks`: local features, layout tiles, or both (each where the index allows it)."""
    has_local = "local" in looks and index.has_signatures(get_spec(LOCAL))
    if "local" in looks and not has_local and LOCAL in index.methods_present():
        partial.require_local(index)  # local features of an older version: rescan
    files = index.live_files()
    tiles = None
    if "tiles" in looks:
        try:
            tiles = TileLookup(index, files)
        except LookalikeError:
            pass
    if not has_local and tiles is None:
        partial.require_local(index)  # says what to scan
    threshold = min_inliers or partial.stored_min_inliers(index)
    words = partial.build_word_index(index) if has_local else None
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
        rgb = Picture(decoded).rgb  # one copy of the pixels for both looks
        found: dict[int, PartialMatch] = {}
        if words is not None:
            for cid, v in _by_features(index, words, decoded, rgb, threshold).items():
                found[cid] = PartialMatch("", v)
        if tiles is not None:
            query_tiles = tile_signatures.compute(decoded, regions.propose(rgb))
            for hit in tiles.hits([query_tiles]):
                if hit.content_id not in found:
                    found[hit.content_id] = PartialMatch("", hit.verification, hit.method,
                                                         hit.distance)
        matches = [PartialMatch(f.path, m.verification, m.method, m.distance)
                   for cid, m in found.items() for f in files.get(cid, [])]
        matches.sort(key=lambda m: (m.method != LOCAL, -m.verification.inliers,
                                    m.distance or 0, m.path))
        results.append(FindInResult(path, tuple(matches[:limit]), None,
                                    time.perf_counter() - started))
    return results


def _by_features(index: Index, words: partial.FeatureIndex, decoded: Decoded,
                 rgb: np.ndarray, threshold: int) -> dict[int, Verification]:
    query = partial.query_features_of(rgb, decoded.width, decoded.height)
    row_votes = partial.query_votes(words, query.coarse.plain) + \
        partial.query_votes(words, query.fine.plain)
    candidates = partial.best_contents(words, row_votes, partial.CANDIDATES)
    values = index.values_for(get_spec(LOCAL), candidates)
    out = {}
    for cid in candidates:
        if cid in values:
            signature = local.unpack(values[cid])
            v = partial.verify_query(signature, query, threshold)
            if v.confirmed and region_agrees(rgb, decoded.width, decoded.height, v,
                                             signature):
                out[cid] = v
    return out
