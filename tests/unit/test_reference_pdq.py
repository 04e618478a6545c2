"""Our PDQ signatures against the pdqhash package itself."""

from __future__ import annotations

import numpy as np
import pytest

from _imagedata import SMALL_SAMPLES, codes, decoded_sample
from lookalike.methods import Picture, create_method, dihedral, get_spec

pdqhash = pytest.importorskip("pdqhash")


def _pdqhash(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """pdqhash.compute of a grey uint8 array, fed as RGB (luma of grey is that grey)."""
    rgb = np.ascontiguousarray(np.repeat(np.asarray(gray, dtype=np.uint8)[:, :, None], 3, axis=2))
    bits, quality = pdqhash.compute(rgb)
    return np.asarray(bits, dtype=np.uint8), float(quality)


@pytest.fixture(scope="module")
def samples():
    return {name: decoded_sample(name) for name in SMALL_SAMPLES}


def test_pdq_is_pdqhash_of_its_64px_thumbnail_in_all_8_variants(samples):
    """Bit order, packing, quality, and the variant order (_ORDER): variant k of our code is
    pdqhash of variant k (dihedral.variant) of the 64x64 thumbnail, exactly."""
    spec = get_spec("pdq")
    method = create_method("pdq")
    for name, decoded in samples.items():
        picture = Picture(decoded)
        signature = method.compute([picture])[0]
        ours = np.unpackbits(codes(signature, spec), axis=1)
        thumbnail = picture.gray_resized(64, 64)
        for k in range(8):
            theirs, quality = _pdqhash(np.ascontiguousarray(dihedral.variant(thumbnail, k)))
            assert int((ours[k] != theirs).sum()) == 0, (name, dihedral.NAMES[k])
            if k == 0:
                assert signature.quality == pytest.approx(quality), name


@pytest.mark.parametrize("name", ["camera.png", "astronaut.png", "chelsea.png", "coins.png",
                                  "page.png", "microaneurysms.png"])
def test_pdq_ref_is_pdqhash_of_the_picture_itself(name, samples):
    """pdq.py: `pdq-ref` is "PDQ on the picture itself, bit-compatible with other PDQ hash
    lists (on pictures up to 1024 px)". So its identity code must be pdqhash's code of the
    full-resolution grey picture."""
    spec = get_spec("pdq-ref")
    decoded = samples[name]
    signature = create_method("pdq-ref").compute([Picture(decoded)])[0]
    ours = np.unpackbits(codes(signature, spec)[0])
    theirs, quality = _pdqhash(np.asarray(decoded.image.convert("L")))
    distance = int((ours != theirs).sum())
    assert distance == 0, (
        f"pdq-ref of {name} {decoded.image.size} is {distance} bits from pdqhash of the "
        "picture itself")
    assert signature.quality == pytest.approx(quality)
