"""decode()'s simplejpeg and pyspng paths give exactly what its Pillow path gives, or step
aside.

Every case decodes the same bytes twice, with simplejpeg and pyspng and with them switched off
(the Pillow path of decode.py), and compares everything decode returns: size, format, mode,
frames and every pixel, or the failure's reason. The photographs are scikit-image's samples,
re-encoded as JPEGs of several kinds (chroma subsampling, progressive, grey, odd sizes, big
enough to be drafted, EXIF orientations, CMYK) and PNGs of every colour type (transparency,
palettes, 16 bits, animation, EXIF), and damaged in the ways files are.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

import lookalike.decode_jpeg as decode_jpeg
import lookalike.decode_png as decode_png
from lookalike.decode import decode
from lookalike.errors import DecodeError
from lookalike.methods.registry import Picture

from _imagedata import skimage_dir

pytest.importorskip("simplejpeg")
pytest.importorskip("pyspng")


def _photo(name: str, scale: float = 1.0) -> Image.Image:
    with Image.open(os.path.join(skimage_dir(), name)) as image:
        image = image.convert("RGB")
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.BICUBIC)
    return image


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _both(data: bytes, **kwargs):
    """(fast path, Pillow path): what decode gives, or its reason for failing."""
    out = []
    saved = decode_jpeg.simplejpeg, decode_png.pyspng
    for modules in (saved, (None, None)):
        decode_jpeg.simplejpeg, decode_png.pyspng = modules
        try:
            out.append(decode(data, **kwargs))
        except DecodeError as exc:
            out.append(str(exc))
        finally:
            decode_jpeg.simplejpeg, decode_png.pyspng = saved
    return out


def _fast(decoded) -> bool:
    """Whether the fast path decoded it into an array (the Pillow path gives a Pillow image)."""
    return decoded.pixels is not None


def _same(fast, slow) -> None:
    assert type(fast) is type(slow)
    if isinstance(slow, str):
        assert fast == slow
        return
    assert (fast.width, fast.height, fast.format, fast.mode, fast.frames) == \
        (slow.width, slow.height, slow.format, slow.mode, slow.frames)
    assert fast.size == slow.size
    assert np.array_equal(Picture(fast).rgb, Picture(slow).rgb)
    assert np.array_equal(np.asarray(fast.image), np.asarray(slow.image))


KINDS = {
    "4:2:0 q85": dict(quality=85),
    "4:4:4 q95": dict(quality=95, subsampling=0),
    "4:2:2 q70": dict(quality=70, subsampling=1),
    "progressive": dict(quality=80, progressive=True),
    "optimized q40": dict(quality=40, optimize=True),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name,scale", [("astronaut.png", 1.0), ("coffee.png", 0.53),
                                        ("chelsea.png", 2.6), ("rocket.jpg", 1.0)])
@pytest.mark.parametrize("draft_size", [256, 1024, 0])
def test_same_pixels_as_pillow(name, scale, kind, draft_size):
    data = _jpeg(_photo(name, scale), **KINDS[kind])
    fast, slow = _both(data, draft_size=draft_size)
    _same(fast, slow)
    assert _fast(fast)
    if draft_size == 256 and scale > 2:
        assert fast.size[0] < fast.width  # drafted, at Pillow's scale


def test_grey_and_odd_sizes():
    for size in ((257, 131), (1031, 517), (9, 7)):
        grey = _photo("camera.png").convert("L").resize(size)
        fast, slow = _both(_jpeg(grey, quality=90))
        _same(fast, slow)
        assert fast.mode == "L" and fast.pixels is not None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_pillow(orientation):
    image = _photo("chelsea.png")
    exif = Image.Exif()
    exif[0x0112] = orientation
    fast, slow = _both(_jpeg(image, quality=90, exif=exif.tobytes()))
    _same(fast, slow)
    if orientation in (5, 6, 7, 8):
        assert (fast.width, fast.height) == (image.height, image.width)


def test_cmyk_left_to_pillow():
    data = _jpeg(_photo("astronaut.png").convert("CMYK"), quality=90)
    fast, slow = _both(data)
    _same(fast, slow)
    assert fast.pixels is None and fast.mode == "CMYK"


def test_texture_drafted_again_as_pillow():
    """A fine texture drafted to 256 px is decoded again at 1024 by both paths alike."""
    rng = np.random.default_rng(7)
    cells = rng.integers(0, 2, (300, 300), dtype=np.uint8) * 60 + 100
    texture = Image.fromarray(np.kron(cells, np.ones((8, 8), np.uint8)))  # 2400 px
    fast, slow = _both(_jpeg(texture.convert("RGB"), quality=90))
    _same(fast, slow)
    assert fast.size[0] > 256 * 2  # the texture was decoded again, finer


def test_damaged_files_get_pillows_reason():
    data = _jpeg(_photo("coffee.png"), quality=90)
    cases = {
        "truncated": data[: len(data) // 2],
        "header only": data[:400],
        "garbage scan": data[:600] + bytes(range(256)) * 8 + data[-2:],
    }
    for what, damaged in cases.items():
        fast, slow = _both(damaged)
        _same(fast, slow)
        assert isinstance(slow, str) or what == "garbage scan", what


def test_limits_give_pillows_reason():
    data = _jpeg(_photo("chelsea.png"), quality=90)
    fast, slow = _both(data, max_pixels=1000, draft_size=0)
    assert isinstance(slow, str) and "too many pixels" in slow
    _same(fast, slow)


def test_lazy_image_matches_pixels():
    """Not drafted (under 512 px), nothing asks for a Pillow image until `image` is read."""
    decoded = decode(_jpeg(_photo("astronaut.png", 0.75), quality=90))
    assert decoded.pixels is not None
    assert decoded._image is None
    assert np.array_equal(np.asarray(decoded.image), decoded.pixels)
    assert decoded.image.size == decoded.size


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _with_alpha(image: Image.Image, opaque: bool = False) -> Image.Image:
    """RGBA: opaque, or a gradient of transparency with fully clear and opaque parts."""
    width, height = image.size
    ramp = np.tile(np.linspace(-80, 330, width).clip(0, 255).astype(np.uint8), (height, 1))
    alpha = Image.fromarray(np.full((height, width), 255, np.uint8) if opaque else ramp)
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


@lru_cache(maxsize=1)
def _pngs() -> dict[str, tuple[bytes, bool]]:
    """name -> (PNG bytes, whether pyspng decodes it)."""
    photo = _photo("chelsea.png")
    grey = photo.convert("L")
    palette = photo.quantize(200)
    small = photo.resize((97, 61)).quantize(12)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "RGB": (_png(photo), True),
        "RGB, compressed hard": (_png(photo, compress_level=9), True),
        "grey": (_png(grey), True),
        "RGBA, see-through": (_png(_with_alpha(photo)), True),
        "RGBA, opaque": (_png(_with_alpha(photo, opaque=True)), True),
        "grey + alpha": (_png(_with_alpha(grey).convert("LA")), True),
        "palette": (_png(palette), True),
        "palette, 4 bits": (_png(small, bits=4), True),
        "palette, transparent index": (_png(palette, transparency=3), False),
        "16-bit grey": (_png(Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)), False),
        "1-bit": (_png(grey.convert("1")), False),
        "animated": (_png(photo, save_all=True, append_images=[grey.convert("RGB")]), False),
        "EXIF orientation": (_png(photo, exif=exif.tobytes()), False),
    }


@pytest.mark.parametrize("name", sorted(_pngs()))
def test_png_same_as_pillow(name):
    data, fast_expected = _pngs()[name]
    fast, slow = _both(data)
    _same(fast, slow)
    assert (decode_png.png_header(data) is not None) == fast_expected
    if fast_expected and not name.startswith(("RGBA", "grey +")):
        assert _fast(fast)


def test_png_damage_gets_pillows_answer():
    data = _png(_photo("coffee.png"), pnginfo=_text_chunk())
    text = data.index(b"tEXt")
    ihdr_crc = 8 + 8 + 13
    cases = {
        "truncated": data[: len(data) // 2],
        "IHDR checksum": data[:ihdr_crc] + bytes(4) + data[ihdr_crc + 4:],
        "text checksum": _broken_crc(data, text),  # Pillow decodes it anyway, as libpng
        "pixels damaged": data[:-200] + bytes(188) + data[-12:],
        "no IEND": data[:-12],
    }
    for what, damaged in cases.items():
        fast, slow = _both(damaged)
        _same(fast, slow)
        if what in ("truncated", "IHDR checksum"):
            assert isinstance(slow, str), what
        if what == "text checksum":
            assert not isinstance(slow, str) and not _fast(fast)


def _text_chunk():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made for a test")
    return info


def _broken_crc(data: bytes, kind_at: int) -> bytes:
    length = int.from_bytes(data[kind_at - 4:kind_at], "big")
    crc_at = kind_at + 4 + length
    return data[:crc_at] + bytes(4) + data[crc_at + 4:]


def test_png_limits_give_pillows_reason():
    data = _png(_photo("chelsea.png"))
    fast, slow = _both(data, max_pixels=1000)
    assert isinstance(slow, str) and "too many pixels" in slow
    _same(fast, slow)


def test_alpha_on_white_is_pillows_paste_for_every_pair():
    """Every colour value under every alpha, composited as Pillow's paste with the alpha as
    mask composites it (what _to_rgb does for pictures that Pillow decodes)."""
    from lookalike.decode import BACKGROUND, _on_white

    values = np.arange(256, dtype=np.uint8)
    colour, alpha = np.repeat(values, 256), np.tile(values, 256)
    rgba = np.stack([colour, 255 - colour, colour // 2, alpha], -1).reshape(256, 256, 4)
    image = Image.fromarray(rgba)
    expected = Image.new("RGB", image.size, BACKGROUND)
    expected.paste(image, mask=image.getchannel("A"))
    assert np.array_equal(_on_white(rgba), np.asarray(expected))
    opaque = rgba.copy()
    opaque[..., 3] = 255
    assert np.array_equal(_on_white(opaque), rgba[..., :3])
