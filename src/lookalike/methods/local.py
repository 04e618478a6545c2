"""Local features: ORB keypoints and binary descriptors, spread over the picture and its scales.

Hashes and embeddings describe a whole picture; a crop, or a copy pasted into a collage,
shares only part of it. Local features survive that, and a geometric fit between two sets
of them tells where one picture sits inside the other (search/verify.py).

ORB was chosen over SIFT by measurement (bench/eval_local.py): ~10x faster to compute, 32
bytes a descriptor instead of 128, and about the same recall on crops and pasted copies of
textured pictures once keypoints are spread over a grid. ORB is not mirror-invariant, so the
signature also holds the features of the mirrored picture: a mirrored copy matches those.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..types import Signature
from . import regions, tiles, vocabulary
from .lab import THUMBNAIL, lab_of, thumbnail  # noqa: F401  (callers read them from here)
from .registry import MethodSpec, Picture, register_method
from .tiles import Tiles

SIDE = 512  # long side of the grey image features are found on (index side)
MAX_FEATURES = 384  # kept per picture and orientation (index side)
GRID = 4  # keypoints are spread over GRID x GRID cells and over pyramid levels
# Pictures larger than SIDE (pages, collages, screenshots) are looked at in more detail, so
# that a copy filling a fifth of their width still holds enough features.
BIG_SIDE, BIG_FEATURES, BIG_GRID = 1024, 768, 8
# FAST corner contrast. At 1 rather than 12, soft pictures (clouds, gradients, blurred
# textures) get corners too, and textured ones keep their strongest: with 384 features a 20%
# crop is verified for 0.91 of the sources instead of 0.78, a 30% one for 0.97 instead of
# 0.88 (bench/eval_local.py). It must be the same for every picture: two soft pictures seen
# at different thresholds do not match.
FAST_THRESHOLD = 1
DESCRIPTOR_BYTES = 32
_HEADER = struct.Struct("<BIIH")  # format version, width, height, features per orientation
_FORMAT = 1


@dataclass(frozen=True)
class Features:
    """Keypoints of one picture in one orientation, in the picture's own pixel frame."""

    xy: np.ndarray  # (N, 2) float32: x, y in pixels of the upright full-size picture
    descriptors: np.ndarray  # (N, 32) uint8 ORB descriptors
    width: int
    height: int
    words: np.ndarray | None = None  # (N,) uint16 visual words (methods/vocabulary.py)

    def __len__(self) -> int:
        return len(self.xy)


@dataclass(frozen=True)
class LocalSignature:
    """A picture's features as it is and mirrored (left-right), both in the unmirrored frame's
    size; the mirrored set's coordinates are those of the mirrored picture."""

    plain: Features
    mirrored: Features
    thumbnail: np.ndarray | None = None  # (3, T, T) uint8 CIELAB of the whole picture
    tiles: Tiles | None = None  # its layout tiles (methods/tiles.py), when it has any


def grey_for_features(rgb: np.ndarray, side: int) -> np.ndarray:
    """Grey pixels with the long side area-averaged to at most `side`."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    scale = side / max(gray.shape)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def detect(gray: np.ndarray, width: int, height: int, max_features: int = MAX_FEATURES,
           grid: int = GRID) -> Features:
    """ORB features of a grey image, at most `max_features`, spread over a grid of cells and
    over pyramid levels (strongest first within each), with coordinates scaled to
    width x height (the full picture the grey image was made from)."""
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)  # workers are processes already
    orb = cv2.ORB_create(nfeatures=max_features * 4, scaleFactor=1.3, nlevels=6,
                         edgeThreshold=15, patchSize=31, fastThreshold=FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return empty_features(width, height)
    xy = np.asarray([k.pt for k in keypoints], dtype=np.float32)
    response = np.asarray([k.response for k in keypoints], dtype=np.float32)
    octave = np.asarray([k.octave for k in keypoints], dtype=np.int64)
    keep = spread(xy, response, octave, gray.shape[1], gray.shape[0], max_features, grid)
    scale = np.asarray([width / gray.shape[1], height / gray.shape[0]], dtype=np.float32)
    return Features((xy[keep] + 0.5) * scale - 0.5, descriptors[keep], width, height,
                    np.zeros(len(keep), np.uint16))


def spread(xy: np.ndarray, response: np.ndarray, level: np.ndarray, width: int, height: int,
           budget: int, grid: int = GRID) -> np.ndarray:
    """Indices of at most `budget` keypoints taken round-robin over (grid cell, level) bins,
    strongest first in each bin: a small copy in one corner keeps its share."""
    if len(xy) <= budget:
        return np.arange(len(xy))
    col = np.minimum((xy[:, 0] * grid / max(width, 1)).astype(np.int64), grid - 1)
    row = np.minimum((xy[:, 1] * grid / max(height, 1)).astype(np.int64), grid - 1)
    bins = (row * grid + col) * 64 + np.minimum(level, 63)
    order = np.lexsort((-response, bins))
    sorted_bins = bins[order]
    starts = np.flatnonzero(np.r_[True, sorted_bins[1:] != sorted_bins[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    # Rank within its bin first (round-robin), then the stronger keypoint.
    chosen = order[np.lexsort((-response[order], rank))][:budget]
    return np.sort(chosen)


def empty_features(width: int, height: int) -> Features:
    return Features(np.empty((0, 2), np.float32), np.empty((0, DESCRIPTOR_BYTES), np.uint8),
                    width, height, np.empty(0, np.uint16))


def compute(rgb: np.ndarray, width: int, height: int, side: int = SIDE,
            max_features: int = MAX_FEATURES, mirror: bool = True,
            words: bool = True, grid: int = GRID) -> LocalSignature:
    """Features of a picture (upright RGB pixels of a width x height picture, possibly
    reduced) and of its mirror image (empty without `mirror`), with their visual words."""
    gray = grey_for_features(rgb, side)
    plain = detect(gray, width, height, max_features, grid)
    mirrored = detect(np.ascontiguousarray(gray[:, ::-1]), width, height, max_features, grid) \
        if mirror else empty_features(width, height)
    if not words:
        return LocalSignature(plain, mirrored, thumbnail(rgb))
    words_of = vocabulary.load()
    return LocalSignature(*(with_words(f, words_of.assign(f.descriptors))
                            for f in (plain, mirrored)), thumbnail(rgb))


def with_words(f: Features, words: np.ndarray) -> Features:
    return Features(f.xy, f.descriptors, f.width, f.height, words)


def pack(signature: LocalSignature) -> bytes:
    """Per orientation: a header, x and y as 16-bit fractions of the size, the descriptors,
    the words (38 bytes a feature); then the colour thumbnail (192 bytes)."""
    parts = []
    for f in (signature.plain, signature.mirrored):
        fraction = f.xy / np.asarray([max(f.width - 1, 1), max(f.height - 1, 1)], np.float32)
        fixed = np.clip(np.rint(fraction * 65535.0), 0, 65535).astype("<u2")
        words = f.words if f.words is not None else np.zeros(len(f), np.uint16)
        parts.append(_HEADER.pack(_FORMAT, f.width, f.height, len(f)))
        parts.append(fixed.tobytes())
        parts.append(np.ascontiguousarray(f.descriptors, dtype=np.uint8).tobytes())
        parts.append(np.asarray(words, dtype="<u2").tobytes())
    if signature.thumbnail is not None:
        parts.append(np.ascontiguousarray(signature.thumbnail, dtype=np.uint8).tobytes())
        if signature.tiles is not None:
            parts.append(tiles.pack(signature.tiles, signature.plain.width,
                                    signature.plain.height))
    return b"".join(parts)


def unpack(value: bytes) -> LocalSignature:
    found, at = [], 0
    for _ in range(2):
        version, width, height, n = _HEADER.unpack_from(value, at)
        if version != _FORMAT:
            raise ValueError(f"unknown local feature format {version}")
        at += _HEADER.size
        fixed = np.frombuffer(value, dtype="<u2", count=2 * n, offset=at).reshape(n, 2)
        at += 4 * n
        descriptors = np.frombuffer(value, dtype=np.uint8, count=DESCRIPTOR_BYTES * n,
                                    offset=at).reshape(n, DESCRIPTOR_BYTES)
        at += DESCRIPTOR_BYTES * n
        words = np.frombuffer(value, dtype="<u2", count=n, offset=at).astype(np.uint16)
        at += 2 * n
        size = np.asarray([max(width - 1, 1), max(height - 1, 1)], np.float32)
        found.append(Features(fixed.astype(np.float32) / 65535.0 * size, descriptors,
                              width, height, words))
    thumb, found_tiles = None, None
    thumb_bytes = 3 * THUMBNAIL * THUMBNAIL
    if len(value) - at >= thumb_bytes:
        thumb = np.frombuffer(value, np.uint8, thumb_bytes, at).reshape(3, THUMBNAIL, THUMBNAIL)
        at += thumb_bytes
    if len(value) > at:
        found_tiles = tiles.unpack(value, at, found[0].width, found[0].height)
    return LocalSignature(*found, thumb, found_tiles)


def _params() -> str:
    return (f"orb,fast={FAST_THRESHOLD},side={SIDE}/{BIG_SIDE},n={MAX_FEATURES}/{BIG_FEATURES},"
            f"grid={GRID}/{BIG_GRID},thumb={THUMBNAIL},tiles={tiles.params()}")


SPEC = MethodSpec(name="local", version=3, kind="local", bits=0, variants=1,
                  default_radius=0, min_quality=0.0, params=_params(),
                  description="ORB keypoints and descriptors (and of the mirror image), "
                  "and the picture's layout tiles with their hashes, for crops and copies "
                  "inside larger pictures", draft_size=BIG_SIDE)  # looks at up to 1024 px


@register_method(SPEC)
class LocalMethod:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        out = []
        for picture in pictures:
            d = picture.decoded
            if max(picture.rgb.shape[:2]) > SIDE:
                signature = compute(picture.rgb, d.width, d.height, BIG_SIDE, BIG_FEATURES,
                                    grid=BIG_GRID)
            else:
                signature = compute(picture.rgb, d.width, d.height)
            signature = replace(signature, tiles=tiles.compute(d, regions.propose(picture.rgb)))
            out.append(Signature(SPEC.name, SPEC.version, SPEC.params, pack(signature),
                                 float(len(signature.plain))))
        return out
