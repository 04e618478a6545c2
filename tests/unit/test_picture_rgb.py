"""Picture.rgb reads an RGB picture's pixels out of Pillow's own memory (through the Arrow C
data interface Pillow exports): the same array np.asarray gives, for real decoded pictures,
odd sizes and a picture too big for one memory block, whose memory outlives the image."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PIL import Image

from _imagedata import SMALL_SAMPLES, decoded_sample
from lookalike.methods.registry import Picture, _rgbx_view
from lookalike.types import Decoded


def _decoded(image: Image.Image) -> Decoded:
    return Decoded(image=image, width=image.width, height=image.height, format="PNG",
                   mode=image.mode)


@pytest.mark.parametrize("name", SMALL_SAMPLES[:6])
def test_rgb_of_decoded_samples_is_pillows_array(name):
    decoded = decoded_sample(name)
    rgb = Picture(decoded).rgb
    expected = np.asarray(decoded.image)
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert rgb.shape == expected.shape and np.array_equal(rgb, expected)
    assert _rgbx_view(decoded.image) is not None  # the view was read, not the fallback


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (257, 131)])
def test_rgb_of_odd_sizes(size):
    rng = np.random.default_rng(size[0])
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    rgb = Picture(_decoded(Image.fromarray(pixels, "RGB"))).rgb
    assert np.array_equal(rgb, pixels)


def test_view_outlives_the_image_and_is_read_only():
    image = Image.new("RGB", (300, 200), (10, 20, 30))
    view = _rgbx_view(image)
    del image
    gc.collect()
    assert view.shape == (200, 300, 4) and not view.flags.writeable
    assert np.all(view[..., :3] == (10, 20, 30))


def test_other_modes_and_pictures_in_several_blocks_fall_back():
    grey = Image.new("L", (40, 30), 99)
    assert _rgbx_view(grey) is None
    assert np.array_equal(Picture(_decoded(grey)).rgb, np.asarray(grey))
    # Over Pillow's block size (16 MB) an image's rows are in several blocks: no view.
    big = Image.linear_gradient("L").resize((2400, 2400)).convert("RGB")
    assert _rgbx_view(big) is None
    assert np.array_equal(Picture(_decoded(big)).rgb, np.asarray(big))
