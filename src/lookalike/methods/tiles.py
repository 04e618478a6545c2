"""The layout tiles of a picture (methods/regions.py) with their perceptual hashes and colours.

A page, collage or screenshot splits along its gutters into tiles; each tile is hashed with
the cascade's two hashes (all 8 flips and turns, as whole pictures are) and kept with its box
and an 8x8 colour thumbnail. `dupes --partial` and `find-in` look tiles up among the whole
pictures of the index: a copy too soft or plain for local features is still found when it
sits in a tile of its own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..types import Decoded, Signature
from . import lab, perceptual  # noqa: F401  (perceptual registers the hashes tiles carry)
from .registry import CASCADE_HASHES, Picture, get_spec, shared_method

METHODS = CASCADE_HASHES
_COUNT = struct.Struct("<H")


@dataclass(frozen=True)
class Tiles:
    """K tiles of one picture."""

    boxes: np.ndarray  # (K, 4) float32: x0, y0, x1, y1 in the full-size picture's pixels
    codes: dict[str, np.ndarray]  # method -> (K, variants, nbytes) uint8
    quality: dict[str, np.ndarray]  # method -> (K,) float32
    thumbnails: np.ndarray  # (K, 3, T, T) uint8 CIELAB (methods/lab.thumbnail)

    def __len__(self) -> int:
        return len(self.boxes)

    def signatures(self) -> list[dict[str, Signature]]:
        """Per tile, its hashes as the signatures of a picture (search/query.NearSearch)."""
        out = []
        for k in range(len(self)):
            out.append({name: Signature(name, get_spec(name).version, get_spec(name).params,
                                        codes[k].tobytes(), float(self.quality[name][k]))
                        for name, codes in self.codes.items()})
        return out


def empty() -> Tiles:
    side = lab.THUMBNAIL
    return Tiles(np.empty((0, 4), np.float32),
                 {m: np.empty((0, get_spec(m).variants, get_spec(m).nbytes), np.uint8)
                  for m in METHODS},
                 {m: np.empty(0, np.float32) for m in METHODS},
                 np.empty((0, 3, side, side), np.uint8))


def params() -> str:
    """What the stored tiles depend on besides the layout: the hashes' versions."""
    return "+".join(f"{m}.{get_spec(m).version}" for m in METHODS)


def compute(decoded: Decoded, boxes: list[tuple[int, int, int, int]]) -> Tiles:
    """Tiles of `decoded` at `boxes` (pixels of its possibly reduced image)."""
    if not boxes:
        return empty()
    image = decoded.image
    fx, fy = decoded.width / image.width, decoded.height / image.height
    pictures, thumbs = [], []
    for x0, y0, x1, y1 in boxes:
        tile = image.crop((x0, y0, x1, y1))
        pictures.append(Picture(Decoded(tile, max(1, round(tile.width * fx)),
                                        max(1, round(tile.height * fy)), decoded.format,
                                        decoded.mode)))
        thumbs.append(lab.thumbnail(pictures[-1].rgb))  # the pixels the hashes read too
    codes, quality = {}, {}
    for name in METHODS:
        spec = get_spec(name)
        signed = shared_method(name).compute(pictures)
        codes[name] = np.frombuffer(b"".join(s.value for s in signed), np.uint8).reshape(
            len(boxes), spec.variants, spec.nbytes)
        quality[name] = np.asarray([s.quality for s in signed], np.float32)
    scale = np.asarray([fx, fy, fx, fy], np.float32)
    return Tiles(np.asarray(boxes, np.float32) * scale, codes, quality, np.stack(thumbs))


def pack(tiles: Tiles, width: int, height: int) -> bytes:
    """Count, boxes as 16-bit fractions of the size, each method's codes and qualities
    (float16), thumbnails."""
    size = np.asarray([width, height, width, height], np.float32)
    fixed = np.clip(np.rint(tiles.boxes / np.maximum(size, 1) * 65535.0), 0, 65535)
    parts = [_COUNT.pack(len(tiles)), fixed.astype("<u2").tobytes()]
    for name in METHODS:
        parts.append(np.ascontiguousarray(tiles.codes[name], np.uint8).tobytes())
        parts.append(tiles.quality[name].astype("<f2").tobytes())
    parts.append(np.ascontiguousarray(tiles.thumbnails, np.uint8).tobytes())
    return b"".join(parts)


def unpack(value: bytes, at: int, width: int, height: int) -> Tiles:
    (k,) = _COUNT.unpack_from(value, at)
    at += _COUNT.size
    size = np.asarray([width, height, width, height], np.float32)
    boxes = np.frombuffer(value, "<u2", 4 * k, at).reshape(k, 4).astype(np.float32)
    at += 8 * k
    codes, quality = {}, {}
    for name in METHODS:
        spec = get_spec(name)
        n = k * spec.variants * spec.nbytes
        codes[name] = np.frombuffer(value, np.uint8, n, at).reshape(k, spec.variants,
                                                                    spec.nbytes)
        at += n
        quality[name] = np.frombuffer(value, "<f2", k, at).astype(np.float32)
        at += 2 * k
    side = lab.THUMBNAIL
    thumbs = np.frombuffer(value, np.uint8, k * 3 * side * side, at).reshape(k, 3, side, side)
    return Tiles(boxes / 65535.0 * size, codes, quality, thumbs)
