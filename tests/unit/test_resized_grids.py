"""registry.resized_grids: the Lanczos grids of a batch of pictures of many sizes, one matrix
product per source shape, are each picture's grid as computed alone, in the batch's order;
and a grid follows Pillow's Lanczos closely."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.methods.registry import Picture, resized_grids
from lookalike.types import Decoded


def _pictures() -> list[Picture]:
    from skimage import data

    photo = data.astronaut()
    sizes = [(512, 512), (300, 200), (64, 64), (40, 90), (257, 129), (300, 200), (512, 512)]
    pictures = []
    for width, height in sizes:
        image = Image.fromarray(photo).resize((width, height), Image.Resampling.BOX)
        pictures.append(Picture(Decoded(image=image, width=width, height=height,
                                        format="PNG", mode="RGB")))
    return pictures


@pytest.mark.parametrize("size", [(32, 32), (9, 8), (8, 9), (8, 8), (17, 16), (64, 64)])
def test_batch_grids_are_each_pictures_own(size) -> None:
    pictures = _pictures()
    together = resized_grids(pictures, *size)
    alone = np.stack([resized_grids([p], *size)[0] for p in _pictures()])
    assert together.shape == (len(pictures), size[1], size[0]) and together.dtype == np.uint8
    assert np.array_equal(together, alone)
    # the same picture at the same size, wherever it is in the batch
    assert np.array_equal(together[1], together[5]) and np.array_equal(together[0], together[6])
    assert not np.array_equal(together[0], together[1])


def test_grid_is_close_to_pillows_lanczos() -> None:
    picture = _pictures()[1]  # 300 x 200: its 32 x 32 grid starts from the 64 x 64 image
    grey = Image.fromarray(picture.small)
    pillow = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.int16)
    gap = np.abs(resized_grids([picture], 32, 32)[0].astype(np.int16) - pillow)
    # Pillow rounds to 8 bits between its two passes and clips the overshoot there
    assert gap.mean() < 0.5 and gap.max() <= 8
