"""decode.decode on hostile bytes: random data after every magic number it sniffs, every
truncation of small real files, bit flips and overwritten header bytes.

Whatever the bytes, decode returns an RGB picture of sane shape or raises DecodeError with a
reason a person can read; never another exception, never Python's own exception text, never
a hang (each test has a timeout). The regression cases at the end are inputs these tests found
(each failed before decode.py mapped every fault to a reason in one place).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

from lookalike.decode import MAX_PIXELS, decode, sniff
from lookalike.errors import DecodeError

# Pillow warns about some of the damage it meets (corrupt EXIF, tags past the end): expected.
pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::UserWarning:PIL")]

# Every reason decode gives starts with one of these (decode.py's module docstring).
REASON_STARTS = ("truncated file: ", "the ", "unsupported ", "not an image: ", "empty file",
                 "empty image", "too many pixels: ", "too large to decode: ",
                 "not enough memory ")
EXCEPTION_NAME = re.compile(r"[A-Za-z_.]*(Error|Exception|Warning|error)")


def _crc_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_IHDR_16 = b"\x89PNG\r\n\x1a\n" + _crc_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0,
                                                                     0, 0))
MAGICS = {
    "PNG": b"\x89PNG\r\n\x1a\n",
    "PNG-IHDR": _IHDR_16,  # a valid header: the fuzz reaches the chunks after it
    "JPEG": b"\xff\xd8\xff",
    "JPEG-APP0": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "GIF87": b"GIF87a",
    "GIF89": b"GIF89a",
    "BMP": b"BM",
    "TIFF-II": b"II*\x00",
    "TIFF-MM": b"MM\x00*",
    "WEBP": b"RIFF\x00\x01\x00\x00WEBP",
    "WEBP-VP8L": b"RIFF\x00\x01\x00\x00WEBPVP8L",
    "HEIC": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "AVIF": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    "MIF1": b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic",
    "ICO": b"\x00\x00\x01\x00",
    "PSD": b"8BPS\x00\x01",
    "PPM": b"P6\n",
    "PGM": b"P5 ",
    "PBM": b"P4\t",
    "QOI": b"qoif",
}


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image.save(buffer, fmt, **options)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def real_files() -> dict[str, bytes]:
    """Small real files of a 16 x 16 picture (smooth colours plus noise), as Pillow (and
    pillow-heif) write them."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:16, 0:16]
    rgb = np.dstack([x * 15, y * 15, (x + y) * 7]) + rng.integers(0, 30, (16, 16, 3))
    picture = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    grey16 = Image.fromarray(np.asarray(picture.convert("L"), np.uint16) * 257)
    files = {
        "PNG": _save(picture, "PNG"),
        "PNG-P-alpha": _save(picture.convert("P"), "PNG", transparency=3),
        "PNG-16bit": _save(grey16, "PNG"),
        "PNG-LA": _save(picture.convert("LA"), "PNG"),
        "JPEG": _save(picture, "JPEG", quality=90),
        "JPEG-progressive": _save(picture, "JPEG", quality=90, progressive=True),
        "GIF": _save(picture, "GIF"),
        "WEBP": _save(picture, "WEBP", quality=90),
        "WEBP-lossless": _save(picture, "WEBP", lossless=True),
        "TIFF": _save(picture, "TIFF"),
        "TIFF-deflate": _save(picture, "TIFF", compression="tiff_deflate"),
        "BMP": _save(picture, "BMP"),
        "ICO": _save(picture, "ICO", sizes=[(16, 16)]),
        "PPM": _save(picture, "PPM"),
        "QOI": _save(picture, "QOI"),
    }
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        files["HEIF"] = _save(picture, "HEIF", quality=90)
    except ImportError:
        pass
    if features.check("avif"):
        files["AVIF"] = _save(picture, "AVIF", quality=90)
    return files


def assert_readable(reason: str) -> None:
    """A reason for a person: words, not Python's exception text nor a class name."""
    assert reason and reason == reason.strip(), repr(reason)
    for raw in ("codec can't", "Traceback", "object at 0x", "b'", "\\x", "ordinal not in",
                "unpack requires", "index out of range", "invalid literal for"):
        assert raw not in reason, reason
    assert not EXCEPTION_NAME.fullmatch(reason), reason
    assert " " in reason, reason
    assert reason.startswith(REASON_STARTS), reason


def check(data: bytes) -> None:
    """decode(data) gives a sane RGB picture or a DecodeError with a readable reason."""
    try:
        decoded = decode(data)
    except DecodeError as exc:
        assert_readable(str(exc))
        return
    image = decoded.image
    assert image.mode == "RGB"
    width, height = image.size
    assert 1 <= width <= decoded.width and 1 <= height <= decoded.height
    assert decoded.width * decoded.height <= MAX_PIXELS or width * height <= MAX_PIXELS
    assert np.asarray(image).shape == (height, width, 3)
    assert decoded.frames >= 1


def test_the_real_files_decode():
    """The fuzzing below starts from these: they must themselves be good."""
    for name, data in real_files().items():
        decoded = decode(data)
        assert decoded.image.size == (16, 16), name
        assert sniff(data[:32]) is not None, name


# --- random bytes after each magic number ---------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(magic=st.sampled_from(sorted(MAGICS)), tail=st.binary(max_size=600))
def test_random_bytes_after_a_magic_number(magic, tail):
    check(MAGICS[magic] + tail)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(real_files())), cut=st.floats(0, 1),
       tail=st.binary(max_size=300))
def test_a_real_header_then_random_bytes(name, cut, tail):
    data = real_files()[name]
    check(data[:int(len(data) * cut)] + tail)


# --- truncation at every length -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(real_files()))
def test_every_truncation(name):
    data = real_files()[name]
    for length in range(len(data)):
        check(data[:length])


def test_truncated_files_mostly_say_truncated():
    """Cutting a file is the commonest damage (an interrupted copy or download): past its
    header, most cuts of the pixel-heavy formats are named as such. A cut that leaves all the
    pixels (PNG's last CRC and IEND, QOI's end marker) may decode."""
    for name in ("PNG", "JPEG", "BMP", "WEBP-lossless", "TIFF", "PPM", "QOI"):
        data = real_files()[name]
        reasons = []
        for length in range(len(data) // 2, len(data) - 1):
            try:
                decode(data[:length])
            except DecodeError as exc:
                reasons.append(str(exc))
            else:
                assert length >= len(data) - 24, (name, length, len(data))
        share = sum(r.startswith("truncated file") for r in reasons) / len(reasons)
        assert share >= 0.9, (name, share, sorted(set(reasons)))


# --- bit flips and overwritten bytes --------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(real_files())),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      min_size=1, max_size=8))
def test_bit_flips(name, flips):
    data = bytearray(real_files()[name])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    check(bytes(data))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(real_files())),
       writes=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1,
                       max_size=4))
def test_overwritten_header_bytes(name, writes):
    """Headers hold the sizes, offsets and counts that decoders trust."""
    data = bytearray(real_files()[name])
    for where, value in writes:
        data[where % len(data)] = value
    check(bytes(data))


# --- regression cases: inputs the tests above found -----------------------------------------

def _png_with_chunk_type(kind: bytes) -> bytes:
    good = real_files()["PNG"]
    return good[:37] + kind + good[41:]  # the chunk after IHDR (IDAT here)


def test_png_chunk_type_that_is_not_ascii():
    """Was "'ascii' codec can't decode byte 0xc5 in position 0: ordinal not in range(128)"."""
    good = real_files()["PNG"]
    for data in (good[:12] + b"\xc5" + good[13:], _png_with_chunk_type(b"\xc5DAT")):
        with pytest.raises(DecodeError) as info:
            decode(data)
        assert_readable(str(info.value))
        assert "PNG data is damaged (bad chunk" in str(info.value)


def test_png_chunk_type_that_is_not_letters():
    """Was "broken PNG file (chunk b'\\xfa\\xae\\xa5\\xaf')"-like text with a bytes repr."""
    with pytest.raises(DecodeError) as info:
        decode(_png_with_chunk_type(b"1DAT"))
    assert_readable(str(info.value))


def test_unidentified_header_names_no_python_object():
    """Was "cannot identify image file <_io.BytesIO object at 0x7f...>"."""
    with pytest.raises(DecodeError) as info:
        decode(b"GIF89a" + b"\x00" * 3)
    assert_readable(str(info.value))
    assert "GIF header is damaged" in str(info.value)


def test_ppm_with_a_bad_number_in_its_header():
    """Was "invalid literal for int() with base 10: b'1v'" (Python's int() text)."""
    for data in (b"P6\n1v 16\n255\n" + b"\x00" * 768, b"P6\n16 16\n2u5\n" + b"\x00" * 768,
                 b"P6\n" + b"9" * 300):
        with pytest.raises(DecodeError) as info:
            decode(data)
        assert_readable(str(info.value))


def test_webp_cut_short_says_truncated():
    """Was "could not create decoder object" (libwebp's call failing on a cut file)."""
    data = real_files()["WEBP"]
    with pytest.raises(DecodeError, match="^truncated file: the WebP data"):
        decode(data[:len(data) // 2])


def test_damaged_length_in_a_complete_png_is_not_called_truncated():
    """A chunk length that points past the end of a file that has its IEND is damage."""
    good = bytearray(real_files()["PNG"])
    good[8] = 0xC5  # IHDR's length: 0xC500000D bytes
    with pytest.raises(DecodeError) as info:
        decode(bytes(good))
    assert_readable(str(info.value))
    assert not str(info.value).startswith("truncated"), str(info.value)


def test_unsupported_bmp_compression_is_named():
    """Pillow's own words, once: was "Unsupported BMP compression (16)" inside another."""
    data = bytearray(real_files()["BMP"])
    data[30:34] = struct.pack("<I", 16)  # biCompression
    with pytest.raises(DecodeError, match=r"^unsupported BMP compression \(16\)$"):
        decode(bytes(data))


def test_heif_whose_crop_box_disagrees_with_its_pixels():
    """A bit flip in HEIF's clean-aperture box (clap) made pillow-heif declare 16 x 16 and
    decode 64 x 16: decode reported the declared size with a picture larger than it, past
    the limits checked on the declared size (found by test_bit_flips). The limits are now
    checked again after decoding, and the size is the pixels'."""
    data = bytearray(real_files().get("HEIF", b""))
    where = data.find(b"clap")
    if where < 0:
        pytest.skip("no HEIF with a clap box from this pillow-heif")
    data[where + 20] ^= 0x01  # the crop's horizontal offset: -48 becomes -16,777,264
    check(bytes(data))
    try:
        decoded = decode(bytes(data))
    except DecodeError:  # a libheif that refuses such a crop box is as good
        return
    assert decoded.image.size == (decoded.width, decoded.height)
    with pytest.raises(DecodeError, match="too many pixels"):
        decode(bytes(data), max_pixels=16 * 16)  # the declared size passes, the pixels do not
