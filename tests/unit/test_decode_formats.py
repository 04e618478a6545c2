"""decode.sniff and decode.decode on files that Pillow (and pillow_heif) write."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.decode import BACKGROUND, decode, sniff
from lookalike.errors import DecodeError, LookalikeError


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _two_colour(size=(40, 30)) -> Image.Image:
    """Red left half, blue right half: orientation mistakes show."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


# --- sniff and plain decoding of every recognised format ---------------------------------

FORMATS = [
    ("JPEG", "RGB", {"quality": 95}),
    ("PNG", "RGB", {}),
    ("GIF", "RGB", {}),
    ("WEBP", "RGB", {"lossless": True}),
    ("TIFF", "RGB", {}),
    ("BMP", "RGB", {}),
    ("ICO", "RGBA", {"sizes": [(40, 40)]}),
    ("PPM", "RGB", {}),
    ("PPM", "L", {}),   # written as P5 (PGM)
    ("PPM", "1", {}),   # written as P4 (PBM)
    ("QOI", "RGB", {}),
]


@pytest.mark.parametrize("fmt,mode,options", FORMATS, ids=[f"{f}-{m}" for f, m, _ in FORMATS])
def test_every_recognised_format_decodes(fmt, mode, options):
    source = _two_colour((40, 40)).convert(mode)
    data = _save(source, fmt, **options)
    assert sniff(data[:32]) == fmt
    decoded = decode(data)
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (decoded.width, decoded.height) == (40, 40)
    expected = np.asarray(source.convert("RGB"), dtype=np.int16)
    got = np.asarray(decoded.image, dtype=np.int16)
    tolerance = 12 if fmt == "JPEG" else 0
    # Away from the red/blue edge (JPEG rings there).
    assert np.abs(got[:, :14] - expected[:, :14]).max() <= tolerance
    assert np.abs(got[:, 26:] - expected[:, 26:]).max() <= tolerance


def test_avif_when_pillow_can_write_it():
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF encoder")
    data = _save(_two_colour(), "AVIF", quality=95)
    assert sniff(data[:32]) == "AVIF"
    decoded = decode(data)
    assert decoded.image.size == (40, 30)
    assert decoded.image.getpixel((5, 15))[0] > 200


def test_heic_written_by_pillow_heif():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    data = _save(_two_colour((64, 48)), "HEIF", quality=95)
    assert data[4:12] == b"ftypheic"
    assert sniff(data[:32]) == "HEIF"
    decoded = decode(data)
    assert decoded.format == "HEIF"
    assert decoded.image.size == (64, 48)
    red, blue = decoded.image.getpixel((8, 24)), decoded.image.getpixel((56, 24))
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60


@pytest.mark.parametrize("head", [b"", b"hello world, not an image", b"%PDF-1.7\n",
                                  b"PK\x03\x04", b"\x00\x00\x00\x18ftypmp42",
                                  b"BM", b"P7 \n", b"GIF88a"])
def test_sniff_refuses_other_content(head):
    assert sniff(head) is None


def test_sniff_recognises_the_others_by_magic():
    assert sniff(b"8BPS\x00\x01" + b"\x00" * 20) == "PSD"
    assert sniff(b"qoif" + b"\x00" * 10) == "QOI"
    assert sniff(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert sniff(b"\x00\x00\x00\x1cftypmif1") == "HEIF"
    assert sniff(b"MM\x00*\x00\x00\x00\x08") == "TIFF"


def test_not_an_image_is_a_decode_error():
    with pytest.raises(DecodeError, match="not an image") as info:
        decode(b"just some text, not pixels")
    assert isinstance(info.value, LookalikeError)


# --- orientation ------------------------------------------------------------------------

def _with_orientation(image: Image.Image, orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(image, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


def test_exif_orientation_6_gives_the_upright_size_and_content():
    data = _with_orientation(_two_colour((40, 30)), 6, "JPEG")
    decoded = decode(data)
    assert (decoded.width, decoded.height) == (30, 40)
    assert decoded.image.size == (30, 40)
    # Orientation 6: the stored picture is shown turned 90 degrees clockwise, so its left
    # (red) half ends at the top.
    top, bottom = decoded.image.getpixel((15, 5)), decoded.image.getpixel((15, 35))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation):
    rng = np.random.default_rng(orientation)
    image = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB")
    data = _with_orientation(image, orientation, "PNG")
    decoded = decode(data)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert decoded.image.size == expected.size == (decoded.width, decoded.height)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(expected))


# --- colour modes -----------------------------------------------------------------------

def test_rgba_composited_on_white():
    image = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (10, 20, 30, 255))
    image.putpixel((2, 0), (0, 0, 0, 128))
    image.putpixel((3, 0), (200, 0, 0, 0))  # colour under full transparency: invisible
    decoded = decode(_save(image, "PNG"))
    assert decoded.mode == "RGBA"
    pixels = [decoded.image.getpixel((x, 0)) for x in range(4)]
    assert pixels[0] == BACKGROUND == (255, 255, 255)
    assert pixels[1] == (10, 20, 30)
    assert all(abs(c - 127) <= 1 for c in pixels[2])
    assert pixels[3] == (255, 255, 255)


def test_la_composited_on_white():
    image = Image.new("LA", (3, 1), (0, 0))
    image.putpixel((1, 0), (60, 255))
    image.putpixel((2, 0), (0, 0))
    decoded = decode(_save(image, "PNG"))
    assert decoded.mode == "LA"
    assert [decoded.image.getpixel((x, 0)) for x in range(3)] == [
        (255, 255, 255), (60, 60, 60), (255, 255, 255)]


def test_palette_with_transparent_index():
    image = Image.new("P", (3, 1), 0)
    image.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * (256 * 3 - 9))
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    for fmt in ("PNG", "GIF"):
        decoded = decode(_save(image, fmt, transparency=0))
        assert decoded.mode == "P"
        assert [decoded.image.getpixel((x, 0)) for x in range(3)] == [
            (255, 255, 255), (200, 10, 10), (10, 200, 10)], fmt


def test_palette_without_transparency():
    image = Image.new("P", (2, 1), 0)
    image.putpalette([5, 6, 7, 200, 10, 10] + [0] * (256 * 3 - 6))
    image.putpixel((1, 0), 1)
    decoded = decode(_save(image, "PNG"))
    assert [decoded.image.getpixel((x, 0)) for x in range(2)] == [(5, 6, 7), (200, 10, 10)]


def test_16_bit_greyscale_png_scaled_by_nominal_range():
    values = np.array([[0, 257, 32896, 65535, 1000]], dtype=np.uint16)
    data = _save(Image.fromarray(values), "PNG")
    decoded = decode(data)
    assert decoded.mode.startswith("I")  # "I;16" (Pillow >= 10) or "I"
    grey = np.asarray(decoded.image)[0, :, 0].tolist()
    assert grey == [0, 1, 128, 255, 4]


def test_cmyk_jpeg_colours():
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    decoded = decode(_save(cyan, "JPEG", quality=95))
    assert decoded.mode == "CMYK"
    r, g, b = decoded.image.getpixel((8, 8))
    assert r < 20 and g > 235 and b > 235


def test_one_bit_image():
    image = Image.new("1", (8, 2), 0)
    image.putpixel((3, 1), 1)
    decoded = decode(_save(image, "PNG"))
    assert decoded.mode == "1"
    assert decoded.image.getpixel((3, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((2, 1)) == (0, 0, 0)


def test_greyscale_jpeg_becomes_rgb_grey():
    image = Image.new("L", (64, 64), 77)
    decoded = decode(_save(image, "JPEG", quality=95))
    assert decoded.mode == "L" and decoded.image.mode == "RGB"
    r, g, b = decoded.image.getpixel((30, 30))
    assert r == g == b and abs(r - 77) <= 2


# --- several frames ---------------------------------------------------------------------

def test_animated_gif_first_frame_and_frame_count():
    frames = [Image.new("RGB", (20, 10), colour)
              for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    decoded = decode(data)
    assert decoded.frames == 3
    assert decoded.image.getpixel((10, 5)) == (255, 0, 0)


def test_multipage_tiff_first_page_and_page_count():
    pages = [Image.new("RGB", (12, 9), (0, 0, 255)), Image.new("RGB", (30, 30), (255, 0, 0))]
    data = _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    decoded = decode(data)
    assert decoded.frames == 2
    assert decoded.image.size == (12, 9)
    assert decoded.image.getpixel((3, 3)) == (0, 0, 255)


def test_skimage_multipage_tiff():
    import os

    from _imagedata import skimage_dir

    with open(os.path.join(skimage_dir(), "multipage.tif"), "rb") as handle:
        decoded = decode(handle.read())
    assert decoded.format == "TIFF"
    assert decoded.frames >= 2


# --- refusals ---------------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 100)  # far fewer rows than claimed
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels)
            + _png_chunk(b"IEND", b""))


def test_decompression_bomb_refused_before_decoding():
    data = _bomb_png(40_000, 40_000)
    assert len(data) < 200
    with pytest.raises(DecodeError, match="too many pixels"):
        decode(data)


def test_max_pixels_is_respected():
    data = _save(_two_colour((100, 100)), "PNG")
    with pytest.raises(DecodeError, match="too many pixels"):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).image.size == (100, 100)


def test_truncated_jpeg_says_truncated():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), "RGB")
    data = _save(noise, "JPEG", quality=90)
    for cut in (len(data) // 2, len(data) - 100, 400):
        with pytest.raises(DecodeError, match="truncated"):
            decode(data[:cut])


def test_truncated_header_is_a_clear_decode_error():
    data = _save(_two_colour(), "PNG")
    with pytest.raises(DecodeError) as info:
        decode(data[:20])
    assert str(info.value)


def test_zero_sized_image_refused():
    data = _bomb_png(0, 10)
    with pytest.raises(DecodeError):
        decode(data)


def test_large_jpeg_is_draft_reduced_but_reports_full_size():
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), "RGB")
    image = image.resize((1600, 1200), Image.Resampling.BILINEAR)
    decoded = decode(_save(image, "JPEG", quality=90))
    assert (decoded.width, decoded.height) == (1600, 1200)
    assert min(decoded.image.size) >= 256  # DRAFT_SIZE
    assert decoded.image.size[0] * 1200 == decoded.image.size[1] * 1600


def _png_with_bad_ancillary_crc() -> bytes:
    buffer = io.BytesIO()
    pixels = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    good = buffer.getvalue()
    body = b"tEXt" + b"Comment\x00hello"
    chunk = (struct.pack(">I", len(body) - 4) + body
             + struct.pack(">I", (zlib.crc32(body) + 1) & 0xFFFFFFFF))
    return good[:33] + chunk + good[33:]  # after IHDR, with a wrong checksum


def test_png_with_a_bad_checksum_on_an_ancillary_chunk_decodes():
    """As libpng does (a real flightgear texture has a broken iCCP chunk)."""
    decoded = decode(_png_with_bad_ancillary_crc())
    assert decoded.image.size == (50, 40)


def test_png_tolerance_does_not_let_truncated_pixels_through():
    from PIL import ImageFile

    data = _png_with_bad_ancillary_crc()
    with pytest.raises(DecodeError, match="truncated"):
        decode(data[:-60])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the global flag is restored


# --- reasons a person can read ----------------------------------------------------------

def _corrupt_png_chunk_type() -> bytes:
    """A PNG whose IHDR chunk type has a byte that is not ASCII (0xC5): Pillow reads chunk
    types with bytes.decode("ascii")."""
    data = bytearray(_save(_two_colour(), "PNG"))
    data[12] = 0xC5
    return bytes(data)


def test_corrupt_png_says_damaged_chunk_not_a_codec_error():
    """Was "'ascii' codec can't decode byte 0xc5 in position 0: ordinal not in range(128)"."""
    with pytest.raises(DecodeError) as info:
        decode(_corrupt_png_chunk_type())
    reason = str(info.value)
    assert reason == "the PNG data is damaged (bad chunk: its type is not text)"


@pytest.mark.parametrize("data,expected", [
    (b"P6\n1v 16\n255\n" + b"\x00" * 768, "the PPM/PGM/PBM data is damaged"),
    (b"GIF89a\x00\x00\x00", "the GIF header is damaged, or of a kind that cannot be read"),
    (b"", "empty file (0 bytes)"),
    (b"<!DOCTYPE html><html></html>", "not an image: the content is an HTML page"),
])
def test_reasons_are_sentences(data, expected):
    """Were "invalid literal for int() with base 10: b'1v'", "cannot identify image file
    <_io.BytesIO object at 0x7f...>" and "not an image (unrecognised content)"."""
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert str(info.value) == expected


def test_truncated_png_says_truncated_file():
    """Was "truncated file (Truncated File Read)" or "image file is truncated (N bytes not
    processed)": Pillow's words after ours."""
    rng = np.random.default_rng(1)
    data = _save(Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)), "PNG")
    for cut in (40, len(data) // 2, len(data) - 30):
        with pytest.raises(DecodeError) as info:
            decode(data[:cut])
        assert str(info.value) == "truncated file: the PNG data ends before the picture does"
