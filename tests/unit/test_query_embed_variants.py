"""Queries by embedding look at the query's 8 flips and turns: the shipped model is not
invariant to them, so a mirrored or turned copy is found at a re-encoding's similarity and
the match says which turn."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageOps

from _imagedata import sample_png
from lookalike import open_index
from lookalike.scan import scan
from lookalike.search.query import query, turn
from lookalike.methods import dihedral

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")


def rgb(name: str) -> Image.Image:
    return Image.open(io.BytesIO(sample_png(name))).convert("RGB")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        rgb(name).save(folder / f"{name.split('.')[0]}.jpg", quality=92)
    path = folder / "index.db"
    scan([folder], index_path=path, methods=["embed"], workers=1)
    return path


def test_turn_follows_the_dihedral_order():
    import numpy as np

    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    picture = np.stack([grid, grid + 100, grid + 200], axis=-1)
    for k in range(8):
        assert (turn(picture, k)[..., 0] == dihedral.variant(grid, k)).all()
        assert (turn(picture, k)[..., 2] == dihedral.variant(grid, k) + 200).all()


@pytest.mark.parametrize("name, edit, transform", [
    ("chelsea.png", ImageOps.mirror, "mirror"),
    ("coffee.png", lambda im: im.rotate(90, expand=True), "rot90"),
    ("astronaut.png", ImageOps.flip, "mirror+rot180"),
])
def test_a_turned_copy_is_found_with_its_turn(indexed, tmp_path, name, edit, transform):
    copy = tmp_path / "copy.jpg"
    edit(rgb(name)).save(copy, quality=90)
    with open_index(indexed) as index:
        turned = query(index, [str(copy)], method="embed", nearest=1)[0].matches[0]
        plain_score = {m.b: m.score for m in query(index, [str(copy)], method="embed",
                                                    nearest=5, variants=False)[0].matches}
    source = name.split(".")[0] + ".jpg"
    assert turned.b.endswith(source) and turned.transform == transform
    assert turned.score >= 0.97  # a re-encoding's similarity
    assert plain_score.get(turned.b, -1.0) < turned.score - 0.05


def test_an_upright_copy_stays_identity(indexed, tmp_path):
    copy = tmp_path / "copy.jpg"
    rgb("rocket.jpg").resize((300, 200)).save(copy, quality=85)
    with open_index(indexed) as index:
        match = query(index, [str(copy)], method="embed", nearest=1)[0].matches[0]
    assert match.b.endswith("rocket.jpg") and match.transform == "identity"
