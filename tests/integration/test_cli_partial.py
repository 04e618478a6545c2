"""Partial copies through the CLI: `scan --method local`, `dupes --partial`, `find-in` and
`dupes --verify`, on scikit-image photographs and generated look-alikes."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

import skimage  # noqa: E402  (its sample pictures)

DATA = os.path.join(os.path.dirname(skimage.__file__), "data")
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg")


def photo(name: str) -> Image.Image:
    with Image.open(os.path.join(DATA, name)) as image:
        return image.convert("RGB")


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def textured_lookalike(seed: int) -> Image.Image:
    """One blurred composition under a different fine texture per seed: pHash and dHash call
    two of them the same picture (distance 2 and 0-1), local features do not."""
    from scipy.ndimage import gaussian_filter

    base = photo("coffee.png").convert("L").resize((400, 300)).filter(ImageFilter.GaussianBlur(6))
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.normal(0, 1, (300, 400)), 1.0)
    grey = np.clip(np.asarray(base, np.float32) + 30 * texture / texture.std(), 0, 255)
    return Image.fromarray(grey.astype(np.uint8)).convert("RGB")


@pytest.fixture(scope="module")
def library(tmp_path_factory, cli):
    """Originals, crops of some of them, a collage and a page holding others."""
    root = tmp_path_factory.mktemp("partial") / "library"
    root.mkdir()
    truth = {}
    for name in PHOTOS:
        (root / f"{name.split('.')[0]}.jpg").write_bytes(jpeg(photo(name)))
    crop = photo("astronaut.png").crop((100, 50, 400, 350))
    (root / "astronaut_crop.jpg").write_bytes(jpeg(crop))
    truth["astronaut_crop.jpg"] = ("astronaut.jpg", (100, 50, 400, 350))
    crop = ImageOps.mirror(photo("coffee.png").crop((200, 100, 600, 400)))
    (root / "coffee_crop_mirrored.jpg").write_bytes(jpeg(crop))
    truth["coffee_crop_mirrored.jpg"] = ("coffee.jpg", (200, 100, 600, 400))
    page = Image.new("RGB", (1400, 1000), (250, 250, 250))
    tile = photo("chelsea.png").resize((420, 300))
    page.paste(tile, (800, 500))
    (root / "page.jpg").write_bytes(jpeg(page))
    truth["chelsea.jpg"] = ("page.jpg", (800, 500, 1220, 800))
    small = photo("rocket.jpg").resize((213, 142), Image.Resampling.LANCZOS)
    (root / "rocket_small.jpg").write_bytes(jpeg(ImageOps.mirror(small)))
    for seed in (1, 2):
        (root / f"texture_{seed}.jpg").write_bytes(jpeg(textured_lookalike(seed)))
    result = cli("scan", root, "--method", "phash,dhash,local")
    assert result.code == 0, str(result)
    return root, truth


def test_dupes_partial_reports_containment(cli, library):
    root, truth = library
    result = cli("dupes", "--index", root / ".lookalike" / "index.db", "--partial",
                 "--format", "json")
    assert result.code == 0, str(result)
    found = {(os.path.basename(p["inner"]), os.path.basename(p["outer"])): p
             for p in result.json()["partial"]}
    for inner, (outer, box) in truth.items():
        pair = found.get((inner, outer))
        assert pair is not None, (inner, outer, sorted(found))
        assert pair["relation"] == "inside"
        assert iou(pair["box"], box) >= 0.8, pair
    assert found[("coffee_crop_mirrored.jpg", "coffee.jpg")]["mirror"] is True
    unrelated = {("texture_1.jpg", "texture_2.jpg"), ("texture_2.jpg", "texture_1.jpg"),
                 ("coffee.jpg", "chelsea.jpg"), ("chelsea.jpg", "coffee.jpg")}
    assert not unrelated & set(found)


def test_find_in_locates_indexed_pictures(cli, library, tmp_path):
    root, _ = library
    collage = Image.new("RGB", (900, 900), (255, 255, 255))
    boxes = {}
    for k, name in enumerate(("rocket.jpg", "astronaut.png", "hubble_deep_field.jpg")):
        tile = ImageOps.contain(photo(name), (420, 420))
        x, y = (k % 2) * 450 + 10, (k // 2) * 450 + 10
        collage.paste(tile, (x, y))
        boxes[f"{name.split('.')[0]}.jpg"] = (x, y, x + tile.width, y + tile.height)
    query = tmp_path / "collage.jpg"
    query.write_bytes(jpeg(collage))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    result = cli("find-in", query, broken, "--index", root / ".lookalike" / "index.db",
                 "--format", "json")
    assert result.code == 3, str(result)  # one query could not be read
    good, bad = result.json()["queries"]
    assert bad["error"] and not bad["matches"]
    found = {os.path.basename(m["path"]): m for m in good["matches"]}
    for name, box in boxes.items():
        assert name in found, sorted(found)
        assert iou(found[name]["box"], box) >= 0.8, found[name]
    assert "coffee.jpg" not in found and "texture_1.jpg" not in found


def test_verify_removes_look_alike_hash_pairs(cli, library):
    root, _ = library
    index = root / ".lookalike" / "index.db"
    plain = cli("dupes", "--index", index, "--pairs", "--format", "json")
    names = lambda r: {tuple(sorted((os.path.basename(p["a"]), os.path.basename(p["b"]))))  # noqa: E731
                       for p in r.json()["pairs"]}
    assert ("texture_1.jpg", "texture_2.jpg") in names(plain), str(plain)
    checked = cli("dupes", "--index", index, "--pairs", "--format", "json", "--verify")
    assert checked.code == 0, str(checked)
    # The look-alikes (built on a blurred coffee.jpg) go; the true copy stays.
    assert ("rocket.jpg", "rocket_small.jpg") in names(plain)
    assert names(checked) == {p for p in names(plain) if not p[1].startswith("texture")}


def test_partial_without_local_signatures_says_what_to_do(cli, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg(photo("coffee.png")))
    assert cli("scan", root).code == 0
    result = cli("dupes", "--index", root / ".lookalike" / "index.db", "--partial")
    assert result.code == 2
    assert "--method local" in " ".join(result.stderr.split())  # Rich wraps lines


def test_calibrate_local_stores_an_inlier_count_used_by_find_in(cli, tmp_path):
    """On a library of distinct photographs (no copies of each other, so every hit on another
    picture is truly wrong), calibrate chooses an inlier count; find-in then requires it."""
    root = tmp_path / "distinct"
    root.mkdir()
    for name in (*PHOTOS, "camera.png", "coins.png"):
        (root / f"{name.split('.')[0]}.jpg").write_bytes(jpeg(photo(name)))
    assert cli("scan", root, "--method", "local").code == 0
    index = root / ".lookalike" / "index.db"
    result = cli("calibrate", "--index", index, "--method", "local", "--sample", "8",
                 "--edits", "crop20,rot5,mirror,jpeg70", "--target-precision", "0.95",
                 "--format", "json")
    assert result.code in (0, 3), str(result)
    (method,) = result.json()["methods"]
    assert method["method"] == "local" and method["higher_is_better"] is True
    assert method["passed"] and method["stored"], method
    assert method["recall"] > 0.5
    chosen = method["threshold"]
    show = cli("calibrate", "--index", index, "--show", "--format", "json")
    assert "local" in show.stdout
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg(photo("chelsea.png")))
    found = cli("find-in", query, "--index", index, "--format", "json").json()
    inliers = [m["inliers"] for m in found["queries"][0]["matches"]]
    assert inliers and min(inliers) >= chosen


def test_local_signatures_of_an_older_version_ask_for_a_rescan(cli, tmp_path):
    import sqlite3

    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg(photo("coffee.png")))
    assert cli("scan", root, "--method", "local").code == 0
    index = root / ".lookalike" / "index.db"
    with sqlite3.connect(index) as conn:  # as an older lookalike would have stored them
        conn.execute("UPDATE signatures SET params='orb,side=512' WHERE method='local'")
    for args in (("dupes", "--partial"), ("dupes", "--verify")):
        result = cli(*args, "--index", index)
        assert result.code == 2, str(result)
        message = " ".join(result.stderr.split())
        assert "older version" in message and "--method local" in message
    assert cli("scan", root, "--method", "local").code == 0  # the rescan computes them again
    assert cli("dupes", "--index", index, "--partial").code == 0
