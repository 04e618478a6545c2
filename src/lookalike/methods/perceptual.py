"""pHash, dHash, aHash and wHash in NumPy, batched, with all 8 dihedral variants.

Each follows imagehash's definition (grey, Lanczos resize, the same bit layout): on pictures
small enough to skip the box pre-filter (registry.WORK_SIZE) the two agree bit for bit, on
larger ones by a fraction of a bit on average; tests check both. The variants come from
transforming the small resized grid, which commutes with the resize for flips and
quarter turns.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ..types import Signature
from . import dihedral
from .registry import MethodSpec, Picture, register_method, resized_grids


@lru_cache(maxsize=8)
def _dct_rows(n: int, keep: int) -> np.ndarray:
    """First `keep` rows of the (unnormalised, as scipy.fftpack) DCT-II matrix of size n."""
    k = np.arange(keep)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def _pack(bits: np.ndarray) -> np.ndarray:
    """(B, 8, h, w) booleans -> (B, 8 * h * w / 8) bytes, variants back to back."""
    batch = bits.shape[0]
    return np.packbits(bits.reshape(batch, 8, -1), axis=2).reshape(batch, -1)


def _contrast(grids: np.ndarray) -> np.ndarray:
    """Standard deviation of the grey levels of each small grid: near 0 for blank pictures."""
    return grids.reshape(grids.shape[0], -1).std(axis=1)


def _signatures(spec: MethodSpec, packed: np.ndarray, quality: np.ndarray) -> list[Signature]:
    return [Signature(spec.name, spec.version, spec.params, row.tobytes(), float(q))
            for row, q in zip(packed, quality)]


def _dct_variants(low: np.ndarray) -> np.ndarray:
    """(B, h, h) low DCT block -> (B, 8, h, h) blocks of the 8 dihedral variants of the grid.

    Mirroring a grid left-right flips the sign of odd horizontal frequencies, and
    np.rot90 is a mirror then a transpose, so no variant needs its own DCT.
    """
    signs = np.where(np.arange(low.shape[-1]) % 2, -1.0, 1.0)  # (-1)^v over columns
    out = []
    for k in range(8):
        block = low * signs if k >= 4 else low
        for _ in range(k % 4):
            block = np.swapaxes(block * signs, -1, -2)
        out.append(block)
    return np.stack(out, axis=1)


class PHash:
    def __init__(self, spec: MethodSpec, hash_size: int) -> None:
        self.spec, self.hash_size = spec, hash_size

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        size = self.hash_size * 4
        grids = resized_grids(pictures, size, size).astype(np.float64)
        rows = _dct_rows(size, self.hash_size)
        low = rows @ grids @ rows.T  # (B, h, h): the low-frequency corner of the 2-D DCT
        blocks = _dct_variants(low)
        flat = blocks.reshape(*blocks.shape[:2], -1)
        bits = flat > np.median(flat, axis=2, keepdims=True)
        return _signatures(self.spec, _pack(bits), _contrast(grids))


class DHash:
    def __init__(self, spec: MethodSpec, hash_size: int) -> None:
        self.spec, self.hash_size = spec, hash_size

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        n = self.hash_size
        wide = resized_grids(pictures, n + 1, n).astype(np.int16)
        tall = resized_grids(pictures, n, n + 1).astype(np.int16)
        grids = []
        for k in range(8):
            # A transposing variant of the picture, resized to (n+1) x n, is that variant
            # of the picture resized to n x (n+1).
            grids.append(dihedral.variant(tall if dihedral.TRANSPOSES[k] else wide, k))
        grid = np.stack(grids, axis=1)  # (B, 8, n, n+1)
        bits = grid[..., 1:] > grid[..., :-1]
        return _signatures(self.spec, _pack(bits), _contrast(wide))


class AHash:
    def __init__(self, spec: MethodSpec, hash_size: int) -> None:
        self.spec, self.hash_size = spec, hash_size

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        n = self.hash_size
        grids = resized_grids(pictures, n, n).astype(np.float64)
        bits = grids > grids.mean(axis=(1, 2), keepdims=True)
        return _signatures(self.spec, _pack(dihedral.all_variants(bits)), _contrast(grids))


class WHash:
    """imagehash.whash(image_scale=S, mode='haar'): S x S grey, mean removed, Haar LL."""

    def __init__(self, spec: MethodSpec, hash_size: int, image_scale: int) -> None:
        self.spec, self.hash_size, self.image_scale = spec, hash_size, image_scale

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        n, s = self.hash_size, self.image_scale
        grids = resized_grids(pictures, s, s).astype(np.float64) / 255.0
        block = s // n
        # The Haar LL band at level log2(block) is the block sum / block: the block mean up to
        # a constant factor, which does not change which values lie above the median.
        means = grids.reshape(-1, n, block, n, block).mean(axis=(2, 4))
        flat = means.reshape(means.shape[0], -1)
        bits = (flat > np.median(flat, axis=1, keepdims=True)).reshape(-1, n, n)
        return _signatures(self.spec, _pack(dihedral.all_variants(bits)),
                           _contrast(grids * 255.0))


def _spec(name: str, bits: int, radius: int, params: str, description: str) -> MethodSpec:
    return MethodSpec(name=name, version=1, kind="hamming", bits=bits, variants=8,
                      default_radius=radius, min_quality=2.0, params=params,
                      description=description)


# Default radii: the best precision/recall trade-off measured by bench/eval_methods.py
# (docs/methods.md, "Choosing a method").
def _family(name, cls, description, radius64, radius256, **extra):
    spec64 = _spec(name, 64, radius64, "hash_size=8", description)
    description256 = description.replace("32x32", "64x64").replace("9x8", "17x16") \
        .replace("8x8", "16x16")
    spec256 = _spec(f"{name}256", 256, radius256, "hash_size=16", description256)
    register_method(spec64)(lambda: cls(spec64, 8, **extra.get("e64", {})))
    register_method(spec256)(lambda: cls(spec256, 16, **extra.get("e256", {})))


_family("phash", PHash, "DCT of a 32x32 grey image, low 8x8 frequencies against their median",
        6, 20)
_family("dhash", DHash, "signs of horizontal gradients of a 9x8 grey image", 4, 12)
_family("ahash", AHash, "8x8 grey image against its mean", 6, 24)
_family("whash", WHash, "Haar wavelet LL band of a 64x64 grey image against its median", 2, 8,
        e64={"image_scale": 64}, e256={"image_scale": 64})
