"""Layout regions (search/regions.py): the tiles of collages and pages, on scikit-image photos."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from _imagedata import skimage_dir
from lookalike.search.regions import propose

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")


def photo(name: str) -> Image.Image:
    with Image.open(os.path.join(skimage_dir(), name)) as image:
        return image.convert("RGB")


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def best_iou(boxes, truth) -> float:
    return max((iou(b, truth) for b in boxes), default=0.0)


def test_each_tile_of_a_collage_is_a_region():
    page = Image.new("RGB", (820, 820), (255, 255, 255))
    truth = []
    for k, name in enumerate(PHOTOS):
        tile = ImageOps.contain(photo(name), (390, 390))
        x, y = 10 + (k % 2) * 405, 10 + (k // 2) * 405
        page.paste(tile, (x, y))
        truth.append((x, y, x + tile.width, y + tile.height))
    boxes = propose(np.asarray(page))
    assert [round(best_iou(boxes, t), 2) >= 0.97 for t in truth] == [True] * 4, boxes


def test_a_picture_on_a_graded_page_under_a_caption_is_a_region():
    width, height = 1200, 900
    top, low = np.array([230, 200, 160], np.float32), np.array([90, 60, 40], np.float32)
    y = np.linspace(0, 1, height)[:, None, None]
    page = Image.fromarray((top * (1 - y) + low * y).astype(np.uint8).repeat(width, 1))
    ImageDraw.Draw(page).text((30, 30), "New arrivals - spring lookbook", fill=(20, 20, 20),
                              font=ImageFont.load_default(size=26))
    tile = photo("chelsea.png").resize((300, 200))
    page.paste(tile, (700, 500))
    boxes = propose(np.asarray(page))
    assert best_iou(boxes, (700, 500, 1000, 700)) >= 0.97, boxes


def test_a_single_photograph_is_not_cut_into_a_grid():
    """A photo with no gutters gives no region, or a few of its own parts: never the whole."""
    for name in ("astronaut.png", "brick.png", "hubble_deep_field.jpg"):
        image = photo(name)
        boxes = propose(np.asarray(image))
        whole = (0, 0, image.width, image.height)
        assert all(iou(b, whole) < 0.95 for b in boxes), (name, boxes)
    assert propose(np.asarray(photo("astronaut.png"))) == []


def test_a_blank_page_has_no_region():
    assert propose(np.full((600, 800, 3), 250, np.uint8)) == []
