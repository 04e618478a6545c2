"""The shipped embedding model, lookalike-copy-v1, on real photographs it never saw.

scikit-image's sample photographs and textures, each edited as copy detection must survive
(a crop keeping half the area, a 10-degree rotation cut upright, a caption, a wide border).
Each edited copy is looked up among the originals: the model must find its original as the
most similar far more often than PDQ (with flips and turns) does on the same copies.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from _imagedata import skimage_dir
from lookalike.evaluation.transforms import caption, crop, pad, rotate_cropped

PICTURES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
            "hubble_deep_field.jpg", "retina.jpg", "color.png", "brick.png", "gravel.png",
            "grass.png", "camera.png", "coins.png", "page.png", "moon.png", "ihc.png")
EDITS = {
    "crop50": lambda im, rng: crop(im, 1 - 0.5 ** 0.5, rng.random(), rng.random()),
    "rot10": lambda im, rng: rotate_cropped(im, 10.0),
    "text": lambda im, rng: caption(im, "SALE -30%", rng.random(), rng.random()),
    "border20": lambda im, rng: pad(im, 0.2),
}


@pytest.fixture(scope="module")
def originals():
    import os

    return [Image.open(os.path.join(skimage_dir(), name)).convert("RGB") for name in PICTURES]


@pytest.fixture(scope="module")
def embedder():
    from lookalike.models.onnx import Embedder
    from lookalike.models.registry import resolve_model

    spec, path = resolve_model("lookalike-copy-v1")
    return Embedder(spec, path, threads=1)


def _embed(embedder, images):
    return embedder.embed([np.asarray(im) for im in images])


def _pdq(images):
    from lookalike.methods.pdq import SPEC
    from lookalike.methods.registry import Picture, create_method
    from lookalike.types import Decoded

    method = create_method(SPEC.name)
    pictures = [Picture(Decoded(im, im.width, im.height, "PNG", "RGB")) for im in images]
    codes = [np.frombuffer(s.value, np.uint8).reshape(SPEC.variants, -1)
             for s in method.compute(pictures)]
    return np.stack(codes)


def _hamming(a, b):
    return np.unpackbits(a ^ b, axis=-1).sum(axis=-1)


def test_the_shipped_model_is_found_and_loads(embedder):
    assert embedder.spec.name == "lookalike-copy-v1"
    assert embedder.spec.licence and embedder.spec.dim == 256


def test_unedited_and_resized_copies_are_nearly_identical(embedder, originals):
    found = _embed(embedder, originals)
    half = _embed(embedder, [im.resize((im.width // 2, im.height // 2)) for im in originals])
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
    assert (np.sum(found * half, axis=1) > 0.95).all()


@pytest.mark.parametrize("edit", ["crop50", "rot10", "border20"])
def test_the_model_finds_originals_that_pdq_misses(embedder, originals, edit):
    rng = random.Random(edit)
    copies = [EDITS[edit](im, rng) for im in originals]
    truth = np.arange(len(originals))
    by_model = np.argmax(_embed(embedder, copies) @ _embed(embedder, originals).T, axis=1)
    refs, queries = _pdq(originals), _pdq(copies)
    # PDQ with flips and turns: the best of the query's 8 variants against each original
    distance = np.stack([_hamming(queries[:, None, v], refs[None, :, 0]) for v in range(8)])
    by_pdq = np.argmin(distance.min(axis=0), axis=1)
    model_right, pdq_right = int((by_model == truth).sum()), int((by_pdq == truth).sum())
    assert model_right >= 0.75 * len(originals), (edit, model_right, pdq_right)
    assert model_right > pdq_right, (edit, model_right, pdq_right)


def test_a_caption_does_not_hide_the_original(embedder, originals):
    rng = random.Random(1)
    copies = [EDITS["text"](im, rng) for im in originals]
    found = np.argmax(_embed(embedder, copies) @ _embed(embedder, originals).T, axis=1)
    assert (found == np.arange(len(originals))).mean() >= 0.85
