"""Our pHash/dHash/aHash/wHash against the imagehash package on real photographs.

Identity code = the first nbytes of Signature.value; imagehash's boolean `.hash`, flattened
row-major and packed with np.packbits, is the same layout.
"""

from __future__ import annotations

import numpy as np
import pytest

from _imagedata import (SMALL_SAMPLES, decoded_sample, full_resolution_grey, identity_bits,
                        reference_bits)
from lookalike.methods import Picture, create_method, get_spec

imagehash = pytest.importorskip("imagehash")

REFERENCES = {
    "phash": lambda image: imagehash.phash(image),
    "phash256": lambda image: imagehash.phash(image, hash_size=16),
    "dhash": lambda image: imagehash.dhash(image),
    "dhash256": lambda image: imagehash.dhash(image, hash_size=16),
    "ahash": lambda image: imagehash.average_hash(image),
    "ahash256": lambda image: imagehash.average_hash(image, hash_size=16),
    "whash": lambda image: imagehash.whash(image, image_scale=64),
    "whash256": lambda image: imagehash.whash(image, hash_size=16, image_scale=64),
}


def _ours(method: str, decoded_list) -> list[np.ndarray]:
    spec = get_spec(method)
    signatures = create_method(method).compute([Picture(d) for d in decoded_list])
    return [identity_bits(s, spec) for s in signatures]


def _theirs(method: str, decoded_list) -> list[np.ndarray]:
    # decode() composited alpha and made RGB: imagehash gets that same RGB picture.
    return [reference_bits(REFERENCES[method](d.image).hash) for d in decoded_list]


@pytest.fixture(scope="module")
def samples():
    return [decoded_sample(name) for name in SMALL_SAMPLES]


def test_samples_are_real_and_varied(samples):
    modes = {d.mode for d in samples}
    assert {"L", "RGB", "RGBA"} <= modes
    assert all(max(d.image.size) < 1024 for d in samples)
    assert len({d.image.size for d in samples}) > 10


@pytest.mark.parametrize("method", sorted(REFERENCES))
def test_matches_imagehash_on_the_full_resolution_grey(method, samples):
    """The algorithm itself: with Picture's speed shortcuts off, our codes are imagehash's but
    for bits at near-ties (we resample in float and round once, imagehash rounds between its
    two resampling passes): a mean under bits/100 and no picture over bits/16."""
    spec = get_spec(method)
    with full_resolution_grey():
        ours = _ours(method, samples)
    theirs = _theirs(method, samples)
    distances = {name: int((a != b).sum()) for name, a, b in zip(SMALL_SAMPLES, ours, theirs)}
    assert np.mean(list(distances.values())) <= spec.bits / 100, distances
    assert max(distances.values()) <= spec.bits / 16, distances
    if spec.bits == 64:  # most 64-bit codes have no near-tie at all
        assert sum(d == 0 for d in distances.values()) >= len(distances) // 2, distances


@pytest.mark.parametrize("method", sorted(REFERENCES))
def test_default_pipeline_agrees_with_imagehash(method, samples):
    """As scans compute them (grey working image and each resize area-averaged first): on
    average within bits/16 of imagehash's code (README, "Signatures"). pHash, the default
    method, stays within 2 bits per 64 on every sample."""
    spec = get_spec(method)
    ours = _ours(method, samples)
    theirs = _theirs(method, samples)
    distances = {name: int((a != b).sum()) for name, a, b in zip(SMALL_SAMPLES, ours, theirs)}
    assert np.mean(list(distances.values())) <= spec.bits / 16, distances
    if method.startswith("phash"):
        assert np.mean(list(distances.values())) <= spec.bits / 64, distances
