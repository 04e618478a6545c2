"""The fast mode's colour check: grey hashes pair a picture with its recoloured variant (the
same product in another colour); the `colour` thumbnail keeps them apart, and keeps grey,
re-encoded and brightened copies together."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def _photo(name: str) -> Image.Image:
    import skimage

    return Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name)).convert("RGB")


def _hue_rotated(image: Image.Image, degrees: int) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(int) + degrees * 256 // 360) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def test_fast_mode_keeps_copies_and_drops_recoloured_variants(cli, tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    for name in ("coffee.png", "astronaut.png", "chelsea.png"):
        stem = name.split(".")[0]
        photo = _photo(name)
        photo.save(folder / f"{stem}.png")
        photo.save(folder / f"{stem}_q80.jpg", quality=80)
        photo.convert("L").convert("RGB").save(folder / f"{stem}_grey.png")
        ImageEnhance.Brightness(photo).enhance(1.15).save(folder / f"{stem}_bright.jpg")
        _hue_rotated(photo, 150).save(folder / f"{stem}_variant.png")
    index = tmp_path / "index.db"
    assert cli("scan", folder, "--index", index).code == 0
    found = cli("dupes", "--index", index, "--pairs", "--format", "json")
    assert found.code == 0, str(found)
    pairs = {frozenset(Path(p[k]).name for k in ("a", "b")) for p in found.json()["pairs"]}
    for stem in ("coffee", "astronaut", "chelsea"):
        for copy in ("q80.jpg", "grey.png", "bright.jpg"):
            assert frozenset((f"{stem}.png", f"{stem}_{copy}")) in pairs, (stem, copy)
        # a grey copy may pair with either colour (it is a copy of both); coloured ones not
        coloured = {f"{stem}.png", f"{stem}_q80.jpg", f"{stem}_bright.jpg"}
        variant = [p for p in pairs if f"{stem}_variant.png" in p and p & coloured]
        assert variant == [], variant

    # the same index without the colour signatures pairs the variants: the check is the
    # reason, not the hashes
    import sqlite3

    with sqlite3.connect(index) as db:
        db.execute("DELETE FROM signatures WHERE method='colour'")
    loose = cli("dupes", "--index", index, "--pairs", "--format", "json")
    assert any("coffee_variant.png" in {Path(p["a"]).name, Path(p["b"]).name}
               for p in loose.json()["pairs"])


def test_fast_query_drops_a_recoloured_variant_and_finds_a_turned_copy(cli, tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    photo = _photo("coffee.png")
    photo.save(folder / "coffee.png")
    _photo("astronaut.png").save(folder / "astronaut.png")
    index = tmp_path / "index.db"
    assert cli("scan", folder, "--index", index).code == 0
    asks = tmp_path / "asks"
    asks.mkdir()
    _hue_rotated(photo, 150).save(asks / "variant.png")
    photo.transpose(Image.Transpose.ROTATE_90).save(asks / "turned.jpg", quality=85)
    asked = cli("query", asks / "variant.png", asks / "turned.jpg", "--index", index,
                "--format", "json")
    assert asked.code == 0, str(asked)
    found = {Path(q["path"]).name: q["matches"] for q in asked.json()["queries"]}
    assert found["variant.png"] == []
    assert [Path(m["path"]).name for m in found["turned.jpg"]] == ["coffee.png"]
    assert found["turned.jpg"][0]["transform"] == "rot90"
