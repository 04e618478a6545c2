"""JPEG draft decoding must not move a fine texture's hashes away from its lossless original.

A PNG is decoded in full, a JPEG at a reduced DCT scale (decode.DRAFT_SIZE); on a fine, periodic
texture the two decodes leave different residues in the hashes' small grids. The JPEG re-encodes
below sat 10-12 pHash bits from their PNG before decode.TEXTURE_DRAFT, 4-6 with it (checked
against the old decode.py: every texture test here failed). bench/eval_draft.py measures more.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

from lookalike.decode import DRAFT_SIZE, decode
from lookalike.search.dupes import AUTO_CONFIRM_RADIUS, AUTO_PRIMARY_RADIUS
from lookalike.types import FileRef
from lookalike.worker import compute_signatures, process_chunk

from _imagedata import sample_png


@lru_cache(maxsize=4)
def _bricks(side: int, period: int, seed: int) -> Image.Image:
    """Small bricks (`period` px courses) under faint, uneven light, with a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    offset = (y // period % 2) * period
    mortar = (y % period < period / 5) | ((x + offset) % (2 * period) < period / 5)
    light = rng.normal(0, 1, (6, 6)).astype(np.float32)
    light = np.asarray(Image.fromarray(light, "F").resize((side, side), Image.Resampling.BICUBIC))
    grey = np.where(mortar, 60.0, 190.0) + 15 * light / np.abs(light).max()
    grey += rng.normal(0, 6, grey.shape)
    rgb = np.clip(grey[..., None] * [1.0, 0.8, 0.6], 0, 255).astype(np.uint8)
    return Image.fromarray(rgb)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _distances(a: bytes, b: bytes) -> tuple[int, int]:
    """(pHash, dHash) bit distances of the identity codes, as a query computes them."""
    codes = [{s.method: s.value[:8] for s in compute_signatures(decode(data), ["phash", "dhash"])}
             for data in (a, b)]
    return _bits(codes[0]["phash"], codes[1]["phash"]), _bits(codes[0]["dhash"], codes[1]["dhash"])


def _bits(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


@pytest.mark.parametrize("side,period", [(1000, 8), (1200, 12), (1500, 12)])
@pytest.mark.parametrize("quality", [90, 75])
def test_jpeg_reencode_of_a_fine_texture_is_found(side, period, quality):
    texture = _bricks(side, period, seed=1)
    png, jpeg = _save(texture, "PNG"), _save(texture, "JPEG", quality=quality)
    phash, dhash = _distances(png, jpeg)
    assert phash <= AUTO_PRIMARY_RADIUS and dhash <= AUTO_CONFIRM_RADIUS, (phash, dhash)


def test_scan_signs_a_fine_texture_as_its_png(tmp_path):
    """The scan's own path (worker.process_chunk) decodes the JPEG as a query does."""
    texture = _bricks(1200, 12, seed=1)
    paths = [tmp_path / "t.png", tmp_path / "t.jpg"]
    paths[0].write_bytes(_save(texture, "PNG"))
    paths[1].write_bytes(_save(texture, "JPEG", quality=90))
    refs = [FileRef(str(p), os.path.getsize(p), 0) for p in paths]
    png, jpeg = process_chunk(refs, ["phash"])
    assert _bits(png.signatures[0].value[:8], jpeg.signatures[0].value[:8]) \
        <= AUTO_PRIMARY_RADIUS


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "brick.png", "grass.png",
                                  "gravel.png", "retina.jpg", "hubble_deep_field.jpg"])
def test_photographs_and_natural_textures_keep_the_fast_draft(name):
    """Only fine textures pay for a second decode: photographs, and textures whose contrast
    spreads over all scales as a photograph's does, stay at the draft size."""
    image = decode(sample_png(name), draft_size=0).image
    decoded = decode(_save(image, "JPEG", quality=90))
    assert min(image.size) >= 2 * DRAFT_SIZE  # big enough to be drafted
    assert decoded.image.size[0] < image.size[0]


def test_small_jpegs_decode_in_full_as_before():
    texture = _bricks(300, 4, seed=1)
    decoded = decode(_save(texture, "JPEG", quality=90))
    assert decoded.image.size == (300, 300)
