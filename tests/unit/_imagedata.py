"""Real pictures for the unit tests, and small helpers to read signatures.

scikit-image ships a few dozen sample photographs inside its package (skimage/data); they are
read from those files, re-encoded as PNG and decoded by lookalike.decode, as a scan would.
"""

from __future__ import annotations

import contextlib
import io
import os
from functools import lru_cache

import numpy as np
from PIL import Image

from lookalike.decode import decode
from lookalike.methods.registry import MethodSpec
from lookalike.types import Decoded, Signature


def skimage_dir() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data")


# Photographs and drawings under 1024 px (colour, grey, RGBA, non-square, odd sizes).
SMALL_SAMPLES = (
    "astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg", "coins.png",
    "page.png", "horse.png", "brick.png", "grass.png", "gravel.png", "moon.png", "text.png",
    "phantom.png", "logo.png", "motorcycle_left.png", "color.png", "cell.png",
    "clock_motion.png", "ihc.png", "microaneurysms.png", "hubble_deep_field.jpg",
)
# Natural photographs and textures (no large flat areas, where gradient signs are ties).
PHOTOS = (
    "astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg", "coins.png",
    "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg", "color.png", "brick.png",
    "gravel.png",
)


@lru_cache(maxsize=None)
def sample_png(name: str) -> bytes:
    """A scikit-image sample file, re-encoded as PNG (its own mode kept: L, RGB or RGBA)."""
    with Image.open(os.path.join(skimage_dir(), name)) as image:
        image.load()
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
    return buffer.getvalue()


def decoded_sample(name: str) -> Decoded:
    return decode(sample_png(name))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@lru_cache(maxsize=None)
def synthetic_png(seed: int) -> bytes:
    from lookalike.sample import synthetic_picture

    return png_bytes(synthetic_picture(seed))


def decoded_synthetic(seed: int) -> Decoded:
    return decode(synthetic_png(seed))


def pil_variant(image: Image.Image, k: int) -> Image.Image:
    """Variant k of a picture as dihedral.py defines it: mirror first (k >= 4), then k % 4
    counter-clockwise quarter turns (PIL's ROTATE_90 turns counter-clockwise, as np.rot90)."""
    if k >= 4:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for _ in range(k % 4):
        image = image.transpose(Image.Transpose.ROTATE_90)
    return image


def with_image(decoded: Decoded, image: Image.Image) -> Decoded:
    return Decoded(image=image, width=image.width, height=image.height,
                   format=decoded.format, mode=decoded.mode, frames=decoded.frames)


def transformed(decoded: Decoded, k: int) -> Decoded:
    return with_image(decoded, pil_variant(decoded.image, k))


def codes(signature: Signature, spec: MethodSpec) -> np.ndarray:
    """(variants, nbytes) uint8 codes of one signature."""
    return np.frombuffer(signature.value, dtype=np.uint8).reshape(spec.variants, spec.nbytes)


def identity_bits(signature: Signature, spec: MethodSpec) -> np.ndarray:
    return np.unpackbits(codes(signature, spec)[0])


def bit_distance(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def reference_bits(boolean_hash: np.ndarray) -> np.ndarray:
    """imagehash's boolean `.hash`, flattened row-major, as 0/1 bits."""
    return np.asarray(boolean_hash, dtype=bool).reshape(-1).astype(np.uint8)


@contextlib.contextmanager
def full_resolution_grey():
    """Turn off the speed shortcuts of Picture (the box pre-filters of the grey working image
    and of each resize), so that methods see exactly what imagehash sees."""
    from lookalike.methods import registry

    saved = (registry.WORK_SIZE, registry.BOX_GAP)
    registry.WORK_SIZE = registry.BOX_GAP = 10 ** 9
    try:
        yield
    finally:
        registry.WORK_SIZE, registry.BOX_GAP = saved
