"""One contract, checked for every registered signature method."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from _imagedata import codes, decoded_sample, decoded_synthetic, with_image
from lookalike.decode import decode
from lookalike.methods import Picture, create_method, get_spec, list_methods
from lookalike.types import Decoded, FileRef, Scanned

METHODS = [spec.name for spec in list_methods()]
# Methods whose signature is fixed-size codes (variants x nbytes); "local" holds a variable
# list of features and has its own contract below.
CODED = [spec.name for spec in list_methods() if spec.kind in ("exact", "hamming")]


def _flat(size=(200, 150), colour=(120, 120, 120)) -> Decoded:
    image = Image.new("RGB", size, colour)
    return Decoded(image=image, width=size[0], height=size[1], format="PNG", mode="RGB")


@pytest.fixture(scope="module")
def batch():
    """Pictures of several shapes and modes, as decode() returns them."""
    pictures = [decoded_synthetic(0), decoded_sample("camera.png"), decoded_sample("coffee.png"),
                decoded_sample("page.png"), decoded_synthetic(1)]
    small = decoded_synthetic(2)
    pictures.append(with_image(small, small.image.resize((7, 5))))  # tiny
    pictures.append(with_image(small, small.image.resize((900, 13))))  # very wide
    return pictures


def test_registry_is_populated_and_sorted():
    assert len(METHODS) >= 10
    assert METHODS == sorted(METHODS)
    for name in ("phash", "dhash", "ahash", "whash", "pdq", "pixels"):
        assert name in METHODS
    assert [s.name for s in list_methods("*hash256")] == ["ahash256", "dhash256", "phash256",
                                                          "whash256"]


def test_unknown_method_is_a_typed_error():
    from lookalike.errors import LookalikeError, UnknownMethodError

    with pytest.raises(UnknownMethodError, match="known methods") as info:
        create_method("no-such-method")
    assert isinstance(info.value, LookalikeError)


@pytest.mark.parametrize("name", CODED)
def test_spec_is_coherent(name):
    spec = get_spec(name)
    assert spec.name == name
    assert spec.kind in ("exact", "hamming")
    assert spec.bits % 8 == 0 and spec.nbytes * 8 == spec.bits
    assert spec.variants in (1, 8)
    assert spec.key == (spec.name, spec.version, spec.params)
    if spec.kind == "hamming":
        assert spec.variants == 8
        # Two random codes are bits/2 apart: a radius near that would match anything.
        assert 0 < spec.default_radius < spec.bits / 4
    else:
        assert spec.default_radius == 0


@pytest.mark.parametrize("name", CODED)
def test_signature_shape_fields_and_quality(name, batch):
    spec = get_spec(name)
    signatures = create_method(name).compute([Picture(d) for d in batch])
    assert len(signatures) == len(batch)
    for signature in signatures:
        assert (signature.method, signature.version, signature.params) == spec.key
        assert isinstance(signature.value, bytes)
        assert len(signature.value) == spec.variants * spec.nbytes
        assert isinstance(signature.quality, float)
        assert math.isfinite(signature.quality) and signature.quality >= 0.0


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_across_runs(name, batch):
    first = create_method(name).compute([Picture(d) for d in batch])
    second = create_method(name).compute([Picture(d) for d in batch])
    assert first == second


@pytest.mark.parametrize("name", METHODS)
def test_batch_equals_one_by_one(name, batch):
    method = create_method(name)
    together = method.compute([Picture(d) for d in batch])
    alone = [method.compute([Picture(d)])[0] for d in batch]
    assert together == alone


def test_empty_batch_gives_no_signatures():
    """A batch may be empty (a shard whose pictures all failed to decode)."""
    failing = {}
    for name in METHODS:
        try:
            result = create_method(name).compute([])
        except Exception as exc:  # noqa: BLE001
            failing[name] = f"{type(exc).__name__}: {exc}"
        else:
            if result != []:
                failing[name] = repr(result)
    assert not failing


@pytest.mark.parametrize("name", CODED)
def test_different_pictures_get_different_codes(name, batch):
    spec = get_spec(name)
    signatures = create_method(name).compute([Picture(d) for d in batch])
    identities = {codes(s, spec)[0].tobytes() for s in signatures}
    assert len(identities) == len(batch)


@pytest.mark.parametrize("name", METHODS)
def test_same_pixels_in_other_containers_give_distance_zero(name):
    """Self-distance 0 as a scan sees it: the same pixels saved as PNG, BMP, TIFF and
    lossless WebP are different files with one signature."""
    image = decoded_synthetic(3).image
    signatures = []
    for fmt, options in (("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        signatures.append(create_method(name).compute([Picture(decode(buffer.getvalue()))])[0])
    assert all(s.value == signatures[0].value for s in signatures)


@pytest.mark.parametrize("name", [s.name for s in list_methods() if s.kind == "hamming"])
def test_variants_are_computed(name):
    """Eight variants stored, not eight copies of the identity code."""
    spec = get_spec(name)
    signature = create_method(name).compute([Picture(decoded_sample("camera.png"))])[0]
    variants = codes(signature, spec)
    assert len({v.tobytes() for v in variants}) == 8


@pytest.mark.parametrize("name", [s.name for s in list_methods() if s.min_quality > 0])
def test_quality_filters_blank_pictures_and_keeps_photos(name):
    spec = get_spec(name)
    blank, photo = create_method(name).compute([Picture(_flat()),
                                                Picture(decoded_sample("astronaut.png"))])
    assert blank.quality < spec.min_quality
    assert photo.quality >= spec.min_quality


@pytest.mark.parametrize("name", CODED)
def test_signatures_round_trip_through_the_index(name, tmp_path, batch):
    """Serialise round trip: written to a real SQLite index, read back by load_codes."""
    from lookalike.index.store import open_index

    spec = get_spec(name)
    signatures = create_method(name).compute([Picture(d) for d in batch])
    with open_index(tmp_path / "index.db", create=True) as index:
        run = index.begin_run([str(tmp_path)], [name])
        with index.transaction() as conn:
            for number, (decoded, signature) in enumerate(zip(batch, signatures)):
                item = Scanned(ref=FileRef(f"{tmp_path}/{number}.png", 100 + number, 1),
                               content=number.to_bytes(16, "big"), kind="image",
                               width=decoded.width, height=decoded.height,
                               format=decoded.format, mode=decoded.mode,
                               signatures=(signature,))
                index.write_scanned(conn, run, [item])
        loaded = index.load_codes(spec)
    assert loaded.codes.shape == (len(batch), spec.variants, spec.nbytes)
    assert loaded.codes.dtype == np.uint8
    by_content = dict(zip(loaded.content_ids.tolist(), range(len(batch))))
    assert len(by_content) == len(batch)
    # content ids follow insertion order here: row i is picture i
    for row, signature in enumerate(signatures):
        assert loaded.codes[row].tobytes() == signature.value
        assert loaded.quality[row] == pytest.approx(signature.quality, rel=1e-6)


def test_local_signatures_unpack_differ_and_round_trip_through_the_index(tmp_path, batch):
    """The variable-size `local` signature: features within budget, distinct per picture,
    written to a real index and read back byte for byte."""
    from lookalike.index.store import open_index
    from lookalike.methods import local

    spec = get_spec("local")
    assert spec.kind == "local" and spec.key == (spec.name, spec.version, spec.params)
    signatures = create_method("local").compute([Picture(d) for d in batch])
    assert len({s.value for s in signatures}) == len(batch)
    for decoded, signature in zip(batch, signatures):
        features = local.unpack(signature.value)
        big = max(decoded.image.size) > local.SIDE
        assert len(features.plain) <= (local.BIG_FEATURES if big else local.MAX_FEATURES)
        assert signature.quality == float(len(features.plain))
        assert (features.plain.width, features.plain.height) == (decoded.width, decoded.height)
    with open_index(tmp_path / "index.db", create=True) as index:
        run = index.begin_run([str(tmp_path)], ["local"])
        with index.transaction() as conn:
            for number, (decoded, signature) in enumerate(zip(batch, signatures)):
                index.write_scanned(conn, run, [Scanned(
                    ref=FileRef(f"{tmp_path}/{number}.png", 100 + number, 1),
                    content=number.to_bytes(16, "big"), kind="image", width=decoded.width,
                    height=decoded.height, format=decoded.format, mode=decoded.mode,
                    signatures=(signature,))])
        stored = [value for block in index.iter_values(spec) for _, value in block]
    assert stored == [s.value for s in signatures]
