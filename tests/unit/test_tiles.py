"""Layout tiles stored in the `local` signature (methods/tiles.py): computed from a collage,
packed and read back, and hashed exactly as whole pictures are."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from _imagedata import skimage_dir
from lookalike.methods import local, tiles
from lookalike.methods.registry import Picture, create_method
from lookalike.search import regions
from lookalike.types import Decoded


def photo(name: str) -> Image.Image:
    with Image.open(os.path.join(skimage_dir(), name)) as image:
        return image.convert("RGB")


def collage() -> Image.Image:
    page = Image.new("RGB", (820, 820), (255, 255, 255))
    for k, name in enumerate(("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")):
        page.paste(ImageOps.contain(photo(name), (390, 390)), (10 + (k % 2) * 405,
                                                                10 + (k // 2) * 405))
    return page


def decoded(image: Image.Image) -> Decoded:
    return Decoded(image, image.width, image.height, "PNG", "RGB")


def test_a_collage_signature_holds_its_tiles_and_reads_back():
    page = collage()
    [signature] = local.LocalMethod().compute([Picture(decoded(page))])
    read = local.unpack(signature.value)
    assert read.tiles is not None and len(read.tiles) >= 4
    boxes = regions.propose(np.asarray(page))
    assert np.allclose(read.tiles.boxes, np.asarray(boxes, np.float32), atol=0.02)
    fresh = tiles.compute(decoded(page), boxes)
    for name in tiles.METHODS:
        assert np.array_equal(read.tiles.codes[name], fresh.codes[name])
        assert np.allclose(read.tiles.quality[name], fresh.quality[name], rtol=1e-2)
    assert np.array_equal(read.tiles.thumbnails, fresh.thumbnails)


def test_tile_codes_are_the_hashes_of_the_cropped_tile():
    page = collage()
    boxes = regions.propose(np.asarray(page))
    found = tiles.compute(decoded(page), boxes)
    for name in tiles.METHODS:
        for k, box in enumerate(boxes):
            crop = page.crop(box)
            [whole] = create_method(name).compute([Picture(decoded(crop))])
            assert found.signatures()[k][name].value == whole.value


def test_tiles_of_a_reduced_picture_are_in_full_size_pixels():
    page = collage()
    half = page.resize((410, 410), Image.Resampling.BOX)
    reduced = Decoded(half, page.width, page.height, "JPEG", "RGB")
    boxes = regions.propose(np.asarray(half))
    found = tiles.compute(reduced, boxes)
    assert np.allclose(found.boxes, np.asarray(boxes, np.float32) * 2.0)


def test_a_photograph_without_gutters_packs_no_tiles():
    image = photo("astronaut.png")
    [signature] = local.LocalMethod().compute([Picture(decoded(image))])
    read = local.unpack(signature.value)
    assert read.tiles is not None and len(read.tiles) == 0
    assert read.thumbnail is not None


def test_colour_thumbnails_are_pillows_lab():
    """local.lab_of builds Pillow's RGB -> LAB transform once: the numbers must be those of
    Image.convert("LAB") (indexes scanned before hold thumbnails made that way)."""
    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3), (7, 13, 3), (64, 48, 3)):
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        lab = np.moveaxis(np.asarray(Image.fromarray(rgb).convert("LAB")), -1, 0).copy()
        lab[1:] = (lab[1:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        assert np.array_equal(local.lab_of(rgb), lab)
    photo_rgb = np.asarray(photo("coffee.png"))
    assert local.thumbnail(photo_rgb).shape == (3, local.THUMBNAIL, local.THUMBNAIL)
