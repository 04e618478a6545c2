"""Named edits that turn a picture into a duplicate of itself, for tests and benchmarks."""

from __future__ import annotations

import io
import math
import random
import struct
from typing import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

# Each takes an RGB picture and returns (file bytes, extension).
Edit = Callable[[Image.Image, bytes], tuple[bytes, str]]


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        kwargs.setdefault("quality", 92)
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def with_comment(data: bytes, text: bytes = b"edited by lookalike tests") -> bytes:
    """The same file with extra metadata and untouched pixel data (JPEG COM, PNG tEXt)."""
    if data.startswith(b"\xff\xd8"):
        segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
        return data[:2] + segment + data[2:]
    if data.startswith(b"\x89PNG"):
        import zlib

        body = b"tEXt" + b"Comment\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:33] + chunk + data[33:]  # after the IHDR chunk
    raise ValueError("only JPEG and PNG")


def _re(image: Image.Image, **kwargs) -> tuple[bytes, str]:
    return encode(image, "JPEG", **kwargs), ".jpg"


EDITS: dict[str, Edit] = {
    "copy": lambda im, data: (data, ".jpg"),
    "metadata": lambda im, data: (with_comment(data), ".jpg"),
    "png": lambda im, data: (encode(Image.open(io.BytesIO(data)).convert("RGB"), "PNG"), ".png"),
    "jpeg70": lambda im, data: _re(im, quality=70),
    "resize50": lambda im, data: _re(im.resize((max(1, im.width // 2), max(1, im.height // 2)),
                                               Image.Resampling.LANCZOS)),
    "mirror": lambda im, data: _re(ImageOps.mirror(im)),
    "flip": lambda im, data: _re(ImageOps.flip(im)),
    "rot90": lambda im, data: _re(im.transpose(Image.Transpose.ROTATE_90)),
    "rot180": lambda im, data: _re(im.transpose(Image.Transpose.ROTATE_180)),
    "rot270": lambda im, data: _re(im.transpose(Image.Transpose.ROTATE_270)),
    "blur": lambda im, data: _re(im.filter(ImageFilter.GaussianBlur(1.5))),
    "grey": lambda im, data: _re(ImageOps.grayscale(im).convert("RGB")),
    "brighter": lambda im, data: _re(ImageEnhance.Brightness(im).enhance(1.25)),
}


def apply(name: str, image: Image.Image, original_jpeg: bytes) -> tuple[bytes, str]:
    return EDITS[name](image, original_jpeg)


# --- edits that hashes find hard, with random choices drawn from a caller's generator --------
# Kept apart from EDITS: tests and the sample collection expect every one of EDITS to be found
# by the default method, which none of the hash methods does for a 20% crop or padding.

def crop(image: Image.Image, share: float, left: float = 0.5, top: float = 0.5) -> Image.Image:
    """`share` of the width and of the height cut off; `left` and `top` (0..1) say how much of
    each cut is taken from the left and the top side."""
    cut_w, cut_h = round(image.width * share), round(image.height * share)
    x0, y0 = round(cut_w * left), round(cut_h * top)
    return image.crop((x0, y0, x0 + image.width - cut_w, y0 + image.height - cut_h))


def largest_upright(width: int, height: int, degrees: float) -> tuple[int, int]:
    """Width and height of the largest axis-aligned rectangle inside the rotated picture."""
    angle = math.radians(abs(degrees))
    long_side, short_side = max(width, height), min(width, height)
    sin_a, cos_a = math.sin(angle), math.cos(angle)
    if short_side <= 2 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side
        w, h = (half / sin_a, half / cos_a) if width >= height else (half / cos_a, half / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        w = (width * cos_a - height * sin_a) / cos_2a
        h = (height * cos_a - width * sin_a) / cos_2a
    return int(w), int(h)


def rotate_cropped(image: Image.Image, degrees: float) -> Image.Image:
    """Rotated counter-clockwise and cut to the largest upright rectangle: no fill corners."""
    rotated = image.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    w, h = largest_upright(image.width, image.height, degrees)
    cx, cy = rotated.width / 2, rotated.height / 2
    return rotated.crop((math.ceil(cx - w / 2), math.ceil(cy - h / 2), math.floor(cx + w / 2),
                         math.floor(cy + h / 2)))


CAPTIONS = ("SALE -30%", "NEW", "sample", "(c) shop 2024", "ONLY 9.99", "best seller")


def caption(image: Image.Image, text: str, x: float = 0.5, y: float = 0.5) -> Image.Image:
    """`text` (white, black outline, 1/7 of the height) drawn in the lower half; `x` and `y`
    (0..1) place it within the room left."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(10, image.height // 7))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=2)
    px = x * max(0, image.width - (right - left))
    py = image.height * 0.5 + y * max(0, image.height * 0.5 - (bottom - top))
    draw.text((px - left, py - top), text, font=font, fill=(255, 255, 255), stroke_width=2,
              stroke_fill=(0, 0, 0))
    return out


def pad(image: Image.Image, margin: float = 0.06) -> Image.Image:
    """White border: padded to a square, plus `margin` of the side on every side."""
    side = max(image.width, image.height)
    border = round(side * margin)
    canvas = Image.new("RGB", (side + 2 * border, side + 2 * border), (255, 255, 255))
    canvas.paste(image, (border + (side - image.width) // 2, border + (side - image.height) // 2))
    return canvas


# Each takes an RGB picture, its file bytes and a generator for its random choices.
SeededEdit = Callable[[Image.Image, bytes, random.Random], tuple[bytes, str]]

HARD_EDITS: dict[str, SeededEdit] = {
    "crop10": lambda im, data, rng: _re(crop(im, 0.10, rng.random(), rng.random())),
    "crop20": lambda im, data, rng: _re(crop(im, 0.20, rng.random(), rng.random())),
    "rot5": lambda im, data, rng: _re(rotate_cropped(im, 5.0)),
    "text": lambda im, data, rng: _re(caption(im, rng.choice(CAPTIONS), rng.random(),
                                              rng.random())),
    "pad": lambda im, data, rng: _re(pad(im)),
}
ALL_EDITS = (*EDITS, *HARD_EDITS)


def apply_seeded(name: str, image: Image.Image, data: bytes,
                 rng: random.Random) -> tuple[bytes, str]:
    """Any edit of EDITS or HARD_EDITS by name; the same `rng` state gives the same result."""
    if name in HARD_EDITS:
        return HARD_EDITS[name](image, data, rng)
    if name in EDITS:
        return EDITS[name](image, data)
    raise ValueError(f"unknown edit {name!r}; known: {', '.join(ALL_EDITS)}")
