"""decode's memory bounds: the raster budget checked from the header, big pictures reduced a
band at a time, and the same pixels as before for every picture that is not reduced."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from lookalike import decode as decode_module
from lookalike.decode import (MAX_DECODE_BYTES, MIN_DECODE_BYTES, REDUCE_SIDE, _reduction,
                              _to_rgb, _to_rgb_bounded, decode)
from lookalike.errors import DecodeError
from lookalike.worker import compute_signatures

from _imagedata import sample_png


def _save(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_header(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost none of them."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _ramp(width: int, height: int) -> np.ndarray:
    """A smooth 16-bit picture with stripes and ripples (at most 65,300): compresses well, is
    not flat, and a big one is made in a fraction of a second (one 2-D sum)."""
    x, y = np.arange(width, dtype=np.uint32), np.arange(height, dtype=np.uint32)
    across = x * 40000 // width + (x // 3 % 2) * 500 + x * 7 % 61 * 40
    down = y * 20000 // height + y * 13 % 61 * 40
    return across.astype(np.uint16)[None, :] + down.astype(np.uint16)[:, None]


# --- the budget, from the header --------------------------------------------------------

def test_raster_over_the_budget_is_refused_before_decoding():
    # 12000 x 12000 RGBA: 144 M pixels (under MAX_PIXELS), a 549 MiB raster.
    data = _png_header(12_000, 12_000, 8, 6)
    with pytest.raises(DecodeError, match=r"^too large to decode: 12000x12000 pixels in mode "
                                          r"RGBA need 549 MiB, over the limit of 256 MiB$"):
        decode(data, max_decode_bytes=256 << 20)
    # The same header under the default budget gets as far as the (missing) pixels.
    with pytest.raises(DecodeError, match="holds less than its header declares"):
        decode(data)


def test_budget_counts_the_bytes_of_the_mode():
    """16-bit grey takes 2 bytes a pixel, 8-bit grey 1: the same size fits or not."""
    budget = 200 << 20
    with pytest.raises(DecodeError, match="too large to decode"):
        decode(_png_header(11_000, 11_000, 16, 0), max_decode_bytes=budget)  # 231 MiB
    with pytest.raises(DecodeError, match="holds less than"):  # 115 MiB: it tries
        decode(_png_header(11_000, 11_000, 8, 0), max_decode_bytes=budget)


def test_the_budget_has_a_floor_and_a_default_that_refuses_nothing_under_max_pixels():
    with pytest.raises(ValueError, match="max_decode_bytes must be at least"):
        decode(_save(Image.new("RGB", (8, 8))), max_decode_bytes=MIN_DECODE_BYTES - 1)
    assert decode(_save(Image.new("RGB", (8, 8))),
                  max_decode_bytes=MIN_DECODE_BYTES).image.size == (8, 8)
    assert decode_module.MAX_PIXELS * 4 <= MAX_DECODE_BYTES


# --- reduction of big pictures ----------------------------------------------------------

def test_reduction_factor():
    assert _reduction((4095, 20_000), 256) == 1  # short side under 2 x REDUCE_SIDE: as before
    assert _reduction((2 * REDUCE_SIDE, 2 * REDUCE_SIDE), 256) == 2
    assert _reduction((13_000, 13_000), 256) == 6  # 2167 px, still at least REDUCE_SIDE
    assert _reduction((13_000, 13_000), 1024) == 6
    assert _reduction((13_000, 13_000), 3000) == 4  # a larger draft_size is kept too
    assert _reduction((13_000, 13_000), 0) == 1  # draft_size 0: in full


def _pictures() -> dict[str, Image.Image]:
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (203, 301, 3), dtype=np.uint8), "RGB")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (203, 301), dtype=np.uint8), "L"))
    palette = rgb.convert("P")
    palette.info["transparency"] = 5
    float_grey = Image.fromarray(rng.random((203, 301)).astype(np.float32), "F")
    return {
        "I;16": Image.fromarray(_ramp(301, 203)),
        "I": Image.fromarray(_ramp(301, 203).astype(np.int32), "I"),
        "F": float_grey,
        "P+transparency": palette,
        "RGBA": rgba,
        "LA": rgba.convert("LA"),
        "1": rgb.convert("1"),
        "CMYK": rgb.convert("CMYK"),
        "L": rgb.convert("L"),
        "RGB": rgb,
    }


@pytest.mark.parametrize("name", list(_pictures()))
@pytest.mark.parametrize("factor", [1, 2, 3, 5])
def test_banded_conversion_is_the_same_as_in_one_go(monkeypatch, name, factor):
    """Bands of a few rows (BAND_PIXELS made tiny) give exactly the pixels of converting the
    whole picture and then reducing it, in every mode, with rows and columns left over."""
    monkeypatch.setattr(decode_module, "BAND_PIXELS", 301 * 7)
    image = _pictures()[name]
    whole = _to_rgb(image)
    expected = whole.reduce(factor) if factor > 1 else whole
    got = _to_rgb_bounded(image, factor)
    assert got.mode == "RGB" and got.size == expected.size
    assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_16_bit_to_8_bit_is_the_float_rounding_for_every_value():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    got = np.asarray(_to_rgb(Image.fromarray(values)))[..., 0]
    expected = np.clip(values.astype(np.float32) / 257.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("name", ["astronaut.png"])
def test_a_big_png_is_reduced_reports_its_full_size_and_hashes_as_in_full(name):
    """A photograph blown up to just over 2 x REDUCE_SIDE: decoded at half size, with the
    identity pHash and dHash of a full decode give or take rounding. (On 14 pictures blown up
    to 4400 px, reduced vs full moved pHash 0-2 bits but one, 16, where a JPEG re-encode at
    quality 90 moved it 14: a picture whose pHash is fragile anyway.)"""
    side = 2 * REDUCE_SIDE + 7
    picture = Image.open(io.BytesIO(sample_png(name))).convert("RGB")
    data = _save(picture.resize((side + 40, side), Image.Resampling.BICUBIC), compress_level=1)
    decoded = decode(data)
    assert (decoded.width, decoded.height) == (side + 40, side)
    assert decoded.image.size == (-(-(side + 40) // 2), -(-side // 2))
    full = decode(data, draft_size=0)
    assert full.image.size == (side + 40, side)
    names = ["phash", "dhash"]
    reduced_codes = {s.method: s.value[:8] for s in compute_signatures(decoded, names)}
    full_codes = {s.method: s.value[:8] for s in compute_signatures(full, names)}
    for method in names:
        bits = np.unpackbits(np.frombuffer(reduced_codes[method], np.uint8)
                             ^ np.frombuffer(full_codes[method], np.uint8)).sum()
        assert bits <= 2, (method, bits)


def test_pictures_under_twice_reduce_side_are_not_reduced():
    picture = Image.fromarray(_ramp(2 * REDUCE_SIDE - 1, 300))
    decoded = decode(_save(picture, compress_level=1))
    assert decoded.image.size == (2 * REDUCE_SIDE - 1, 300)


_PEAK = r"""
import sys
from lookalike.decode import decode

def high_water_mark():
    with open("/proc/self/status") as status:  # this process's own peak, in kB
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) * 1024

import io
from PIL import Image

small = io.BytesIO()
Image.new("I;16", (64, 64)).save(small, "PNG")
decode(small.getvalue())  # the imports and first-use set-up, outside the measurement
data = open(sys.argv[1], "rb").read()
before = high_water_mark()
decoded = decode(data)
print(high_water_mark() - before, decoded.image.size[0], decoded.image.size[1])
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_a_big_16_bit_png_decodes_in_little_more_than_its_raster(tmp_path):
    """6000 x 6000 16-bit grey: a 69 MiB raster. Its conversion to 8-bit used to hold five
    full-size copies (float32 among them): 600+ MB over the process's peak before decoding."""
    path = tmp_path / "grey16.png"
    path.write_bytes(_save(Image.fromarray(_ramp(6000, 6000)), compress_level=1))
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True,
                         text=True, check=True, timeout=120)
    growth, width, height = map(int, out.stdout.split())
    raster = 6000 * 6000 * 2
    assert (width, height) == (3000, 3000)
    assert growth < 2 * raster, f"peak grew by {growth / 2**20:.0f} MiB"
