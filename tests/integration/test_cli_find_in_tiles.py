"""`find-in` through the layout tiles of a collage (search/find_in.py, search/regions.py): on an
index of hashes only (no `local` signatures), on scikit-image photographs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from .test_cli_partial import iou, jpeg, photo


def hue_shifted(image: Image.Image) -> Image.Image:
    """Other colours, the same light: pHash and dHash still call it the same picture."""
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] += 100  # wraps around the hue circle
    return Image.fromarray(hsv, "HSV").convert("RGB")


@pytest.fixture(scope="module")
def hashed(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("tiles") / "library"
    root.mkdir()
    for name in ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg"):
        (root / f"{name.split('.')[0]}.jpg").write_bytes(jpeg(photo(name)))
    assert cli("scan", root).code == 0  # phash, dhash: no local features
    return root, root / ".lookalike" / "index.db"


def test_find_in_finds_collage_tiles_by_their_hashes(cli, hashed, tmp_path):
    root, index = hashed
    collage = Image.new("RGB", (900, 900), (255, 255, 255))
    boxes = {}
    tiles = [("chelsea.jpg", photo("chelsea.png")), ("astronaut.jpg", photo("astronaut.png")),
             ("coffee.jpg", hue_shifted(photo("coffee.png"))),
             ("blank", Image.new("RGB", (300, 200), (235, 235, 240)))]
    for k, (name, picture) in enumerate(tiles):
        tile = ImageOps.contain(picture, (420, 420))
        x, y = (k % 2) * 450 + 10, (k // 2) * 450 + 10
        collage.paste(tile, (x, y))
        boxes[name] = (x, y, x + tile.width, y + tile.height)
    query = tmp_path / "collage.jpg"
    query.write_bytes(jpeg(collage))

    result = cli("find-in", query, "--index", index, "--format", "json")
    assert result.code == 0, str(result)
    found = {os.path.basename(m["path"]): m for m in result.json()["queries"][0]["matches"]}
    assert sorted(found) == ["astronaut.jpg", "chelsea.jpg"], found
    for name in ("astronaut.jpg", "chelsea.jpg"):
        assert found[name]["method"] in ("phash", "dhash")
        assert found[name]["distance"] is not None
        assert iou(found[name]["box"], boxes[name]) >= 0.9, found[name]
        assert found[name]["scale"] == pytest.approx(420 / photo(name.replace(".jpg", ".png")
                                                                 ).width, rel=0.05)
    table = cli("find-in", query, "--index", index)
    assert "layout tile" in table.stdout


def test_a_recoloured_tile_is_not_the_indexed_picture(cli, hashed, tmp_path):
    """The recoloured coffee's hashes match coffee.jpg (query --nearest says so); neither
    query (the fast mode's colour check) nor its tile in a collage reports it, because its
    colours are not coffee.jpg's."""
    root, index = hashed
    alone = tmp_path / "coffee_hue.jpg"
    alone.write_bytes(jpeg(hue_shifted(photo("coffee.png"))))
    nearest = cli("query", alone, "--index", index, "--nearest", "1", "--format", "json")
    matches = nearest.json()["queries"][0]["matches"]
    assert "coffee.jpg" in {os.path.basename(m["path"]) for m in matches}, str(nearest)
    assert matches[0]["method"] == "phash" and matches[0]["distance"] <= 8
    checked = cli("query", alone, "--index", index, "--format", "json")
    assert checked.json()["queries"][0]["matches"] == [], str(checked)
    page = Image.new("RGB", (1000, 800), (255, 255, 255))
    page.paste(ImageOps.contain(hue_shifted(photo("coffee.png")), (500, 500)), (40, 40))
    query = tmp_path / "page.jpg"
    query.write_bytes(jpeg(page))
    result = cli("find-in", query, "--index", index, "--format", "json")
    assert result.code == 0, str(result)
    assert result.json()["queries"][0]["matches"] == []


def test_find_in_needs_local_features_or_hashes(cli, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg(photo("coffee.png")))
    assert cli("scan", root, "--method", "pixels").code == 0
    page = tmp_path / "page.jpg"
    page.write_bytes(jpeg(photo("chelsea.png")))
    result = cli("find-in", page, "--index", root / ".lookalike" / "index.db")
    assert result.code == 2
    assert "--method local" in " ".join(result.stderr.split())


def test_dupes_partial_finds_a_soft_picture_in_a_collage_tile(cli, tmp_path):
    """A blurred picture upscaled into a collage: too soft for local features to verify,
    found through the collage's tile; the collage's other tiles are not in the index."""
    root = tmp_path / "lib"
    root.mkdir()
    soft = photo("coffee.png").resize((256, 171)).filter(ImageFilter.GaussianBlur(6))
    (root / "soft.jpg").write_bytes(jpeg(soft))
    (root / "chelsea.jpg").write_bytes(jpeg(photo("chelsea.png")))
    collage = Image.new("RGB", (800, 800), (255, 255, 255))
    for k, picture in enumerate((soft, photo("rocket.jpg"), photo("astronaut.png"),
                                 photo("motorcycle_left.png"))):
        collage.paste(ImageOps.contain(picture, (390, 390)), ((k % 2) * 400 + 5,
                                                              (k // 2) * 400 + 5))
    (root / "collage.jpg").write_bytes(jpeg(collage))
    assert cli("scan", root, "--method", "phash,dhash,local").code == 0
    result = cli("dupes", "--index", root / ".lookalike" / "index.db", "--partial",
                 "--format", "json")
    assert result.code == 0, str(result)
    pairs = {(os.path.basename(p["inner"]), os.path.basename(p["outer"])): p
             for p in result.json()["partial"]}
    assert set(pairs) == {("soft.jpg", "collage.jpg")}, pairs
    pair = pairs[("soft.jpg", "collage.jpg")]
    assert pair["method"] == "phash" and pair["relation"] == "inside"
    assert iou(pair["box"], (5, 5, 395, 265)) >= 0.9, pair  # pasted at the top left
