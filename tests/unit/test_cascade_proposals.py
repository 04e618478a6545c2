"""The default cascade's embedding proposals: neighbours below the least similarity are kept
only on strong local evidence, so two pictures drawn in one frame template (the frame's
corners match, the content does not) are not paired, while a crop of a photo is."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from _imagedata import sample_png
from lookalike import find_pairs, open_index
from lookalike.scan import scan
from lookalike.search import dupes

BORDER = 34  # of 400 px: the shared frame confirms at 8-25 inliers (under the proposal's 25)
SIDEBAR = 144  # of 480 px: confirms far above 25 inliers, all of them on the sidebar


def rgb(name: str) -> Image.Image:
    return Image.open(io.BytesIO(sample_png(name))).convert("RGB")


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proposals")
    frame = rgb("astronaut.png").resize((400, 400))
    for name in ("coffee.png", "chelsea.png"):
        framed = frame.copy()
        framed.paste(rgb(name).resize((400 - 2 * BORDER,) * 2), (BORDER, BORDER))
        framed.save(folder / f"framed_{name[:-4]}.jpg", quality=90)
    rocket = rgb("rocket.jpg")
    rocket.save(folder / "rocket.jpg", quality=90)
    w, h = rocket.size
    rocket.crop((w // 10, h // 8, w // 10 + int(w * 0.75), h // 8 + int(h * 0.75))).save(
        folder / "rocket_crop.jpg", quality=90)
    for name in ("motorcycle_left.png", "coins.png"):
        rgb(name).save(folder / name)
    strip = rgb("camera.png").resize((SIDEBAR, 360))
    gravel = rgb("gravel.png")  # two "dialogs": one sidebar, other parts of one texture
    for name, left in (("left", 0), ("right", gravel.width // 2)):
        page = Image.new("RGB", (480, 360))
        page.paste(strip, (0, 0))
        content = gravel.crop((left, 0, left + gravel.width // 2, gravel.height))
        page.paste(content.resize((480 - SIDEBAR, 360)), (SIDEBAR, 0))
        page.save(folder / f"dialog_{name}.jpg", quality=90)
    path = folder / "index.db"
    scan([folder], index_path=path, methods=["phash", "dhash", "embed", "local"], workers=1)
    return path


def names(pairs) -> set[frozenset[str]]:
    return {frozenset(p.split("/")[-1] for p in (m.a, m.b)) for m in pairs}


def test_frame_template_is_not_a_copy_but_a_crop_is(index_path):
    with open_index(index_path) as index:
        found = names(find_pairs(index, "auto", calibrated=False))
    assert frozenset(("rocket.jpg", "rocket_crop.jpg")) in found
    assert frozenset(("framed_coffee.jpg", "framed_chelsea.jpg")) not in found
    assert frozenset(("dialog_left.jpg", "dialog_right.jpg")) not in found


def test_the_frame_pair_is_proposed_and_verifies_weakly(index_path, monkeypatch):
    """The proposal rules are what leave the frame pair out: at a hash pair's 8 inliers, and
    without the coverage rule (its inliers lie on the frame), it would be kept."""
    monkeypatch.setattr(dupes, "EMBED_PROPOSE_INLIERS", 8)
    monkeypatch.setattr(dupes, "EMBED_PROPOSE_COVERAGE", 0.0)
    with open_index(index_path) as index:
        found = names(find_pairs(index, "auto", calibrated=False))
    assert frozenset(("framed_coffee.jpg", "framed_chelsea.jpg")) in found


def test_the_coverage_rule_is_what_leaves_the_sidebar_pair_out(index_path, monkeypatch):
    """Strong evidence on a shared part only: kept when coverage is not asked for."""
    monkeypatch.setattr(dupes, "EMBED_PROPOSE_COVERAGE", 0.0)
    with open_index(index_path) as index:
        found = names(find_pairs(index, "auto", calibrated=False))
    assert frozenset(("dialog_left.jpg", "dialog_right.jpg")) in found
    assert frozenset(("rocket.jpg", "rocket_crop.jpg")) in found
