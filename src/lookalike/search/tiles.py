"""Layout tiles (methods/tiles.py) looked up among the index's whole pictures by their hashes,
under the rule of `dupes`, then checked against the indexed picture's colours and light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..decode import decode
from ..errors import DecodeError, LookalikeError
from ..index.store import Index
from ..methods import dihedral, local
from ..methods import tiles as tile_signatures
from ..methods.registry import Picture, get_spec
from ..types import FileInfo
from .near import NearSearch, code_cache
from .rule import make_rule
from .verify import Verification, thumbnails_agree

# A tile matched by its hashes must also have the indexed picture's colours and light:
# pHash and dHash ignore both, and blank-ish pages, dialogs and dark frames otherwise match
# one another. Mean |difference| of 8x8 CIELAB lightness (each mean removed), and of the
# means. On bench_partial's 20k collection: 0.99 of right tile matches kept, 1 of 15 wrong.
TILE_LIGHTNESS, TILE_BRIGHTNESS = 10.0, 10.0


@dataclass(frozen=True)
class TileHit:
    """A tile of picture `owner` (its position in the batch looked up) is indexed content
    `content_id`, by `method` at `distance`; `verification` says where and how."""

    owner: int
    content_id: int
    method: str
    distance: int
    verification: Verification


class TileLookup:
    """The index's whole pictures, searched by tiles' hashes."""

    def __init__(self, index: Index, files: dict[int, list[FileInfo]]) -> None:
        rule = make_rule(index, "auto")
        if rule is None or rule.primary.name not in tile_signatures.METHODS or (
                rule.confirm is not None and rule.confirm.name not in tile_signatures.METHODS):
            raise LookalikeError("layout tiles are looked up by pHash and dHash; the index "
                                 "has neither: run 'lookalike scan DIR --method phash,dhash'")
        self.index, self.files = index, files
        self.has_local = index.has_signatures(get_spec("local"))
        self.search = NearSearch(index, rule, code_cache(index))

    def hits(self, batch: Sequence[tile_signatures.Tiles]) -> list[TileHit]:
        """Each tile's indexed pictures (the closest per picture and owner), colour-checked."""
        owners = np.repeat(np.arange(len(batch)), [len(t) for t in batch])
        firsts = np.cumsum([0] + [len(t) for t in batch])
        signatures = [s for t in batch for s in t.signatures()]
        if not signatures:
            return []
        found = self.search.matches(signatures)
        thumbs = self.thumbnails(set(found.content_id.tolist()))
        best: dict[tuple[int, int], TileHit] = {}
        method = self.search.rule.primary.name
        for row, cid, d, v in zip(found.query.tolist(), found.content_id.tolist(),
                                  found.distance.tolist(), found.variant.tolist()):
            owner = int(owners[row])
            tile, k = batch[owner], row - int(firsts[owner])
            key = (owner, cid)
            if (key in best and best[key].distance <= d) or cid not in thumbs:
                continue
            if not thumbnails_agree(tile.thumbnails[k], thumbs[cid], v, TILE_LIGHTNESS,
                                    TILE_BRIGHTNESS):
                continue
            size = self.files[cid][0] if self.files.get(cid) else None
            box = tuple(float(x) for x in tile.boxes[k])
            best[key] = TileHit(owner, cid, method, d, tile_verification(
                box, dihedral.INVERSE[v], (size.width, size.height) if size else None))
        return sorted(best.values(), key=lambda h: (h.owner, h.distance, h.content_id))

    def thumbnails(self, content_ids: set[int]) -> dict[int, np.ndarray]:
        """Colour thumbnails of indexed pictures: from their `local` signatures, else from
        their files (one that cannot be read is left out)."""
        out: dict[int, np.ndarray] = {}
        if self.has_local and content_ids:
            for cid, value in self.index.values_for(get_spec("local"), content_ids).items():
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
                out[cid] = local.thumbnail(Picture(decoded).rgb)
        return out


def tile_verification(box: tuple[float, ...], variant: int,
                      size: tuple[int, int] | None) -> Verification:
    """A tile match in Verification's terms: the indexed picture's box in the tile's picture,
    and the flip or turn (`variant`, indexed to tile) and scale that take it there."""
    turned = dihedral.TRANSPOSES[variant]
    scale = 0.0
    if size and size[0] > 0:
        scale = (box[3] - box[1] if turned else box[2] - box[0]) / size[0]
    return Verification(True, 0, 0, scale, 90.0 * (variant % 4), variant >= 4,
                        tuple(box), a_in_b=1.0)


def describe(v: Verification, method: str, distance: int | None) -> str:
    """The evidence of a partial match in words: local features' fit, or a tile's hash."""
    if method == "local":
        return v.describe()
    turn = f", rotation {round(v.rotation) + 0:+d} deg" if v.rotation else ""
    return (f"layout tile, {method} distance {distance}, scale {v.scale:.2f}{turn}"
            + (", mirrored" if v.mirror else ""))
