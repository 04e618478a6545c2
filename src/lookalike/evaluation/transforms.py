"""Named edits that turn a picture into a duplicate of itself, for tests and benchmarks."""

from __future__ import annotations

import io
import struct
from typing import Callable

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

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
