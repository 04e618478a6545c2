"""CIELAB colour thumbnails: the colour evidence that local features, tiles and the colour
method keep beside their grey codes (a product in another colour is another product)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

THUMBNAIL = 8  # side of the colour thumbnail kept for pictures with too few features


def thumbnail(rgb: np.ndarray, side: int = THUMBNAIL) -> np.ndarray:
    """(3, side, side) uint8 CIELAB, area-averaged: L, then a and b offset by 128 (neutral)."""
    from PIL import Image

    small = Image.fromarray(np.ascontiguousarray(rgb)).resize((side, side), Image.Resampling.BOX)
    return lab_of(np.asarray(small))


@lru_cache(maxsize=1)
def _to_lab():
    """Pillow's own RGB -> LAB transform (what Image.convert("LAB") builds at every call,
    for 7 ms; built once here, the same numbers)."""
    from PIL import ImageCms

    return ImageCms.buildTransform(ImageCms.createProfile("sRGB"),
                                   ImageCms.createProfile("LAB"), "RGB", "LAB")


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 CIELAB of RGB pixels: L, then a and b offset by 128 (neutral)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8, copy=False))
    lab = np.moveaxis(np.asarray(_to_lab().apply(image.convert("RGB"))), -1, 0).copy()
    # Pillow stores a and b as signed bytes in an unsigned array (255 is -1).
    lab[1:] = (lab[1:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return lab
