"""A PNG decoded straight into an array by pyspng (libspng): the pixels Pillow's path in
decode.py gives, a third faster on the mixed benchmark set (bench/README.md, "Fourth pass").

decode.py takes it only where the answer cannot differ: 8-bit grey, RGB, grey + alpha and
RGBA, and palettes without transparency (pyspng does not apply a tRNS chunk); not animated,
with no EXIF chunk before the pixels (which would be read for the orientation); every chunk
before the pixels intact (Pillow checks their CRCs; libspng, as pyspng sets it up, does not);
within decode's limits and not reduced after decoding. Any error libspng reports gives None,
and decode.py decodes with Pillow, whose reasons for a failure stay the ones reported.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

import numpy as np

try:
    import pyspng
except ImportError:  # an install without it decodes every PNG with Pillow
    pyspng = None

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour type -> Pillow's mode for it at bit depth 8 (a palette at any depth)
_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}
_LEFT_TO_PILLOW = (b"acTL", b"eXIf")  # frames to count; an orientation to read


class PngHeader(NamedTuple):
    width: int
    height: int
    mode: str  # Pillow's mode for the file
    alpha: bool  # decoded with an alpha channel: Pillow converts it to RGBA first


def png_header(data: bytes) -> PngHeader | None:
    """What the chunks before the first IDAT say, or None where Pillow must decode the file:
    pyspng missing, another bit depth or colour type, an animation, an EXIF chunk, a damaged
    or missing chunk."""
    if pyspng is None or not data.startswith(_SIGNATURE):
        return None
    position, header = len(_SIGNATURE), None
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            return None
        if kind == b"IDAT":
            return header
        body = data[position + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IHDR":
            if length != 13 or header is not None:
                return None
            width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", body)
            mode = _MODES.get(colour)
            if mode is None or (depth != 8 and not (mode == "P" and depth in (1, 2, 4))):
                return None
            header = PngHeader(width, height, mode, colour in (4, 6))
        elif kind in _LEFT_TO_PILLOW or header is None:
            return None
        elif kind == b"tRNS" and header.mode == "P":
            return None  # Pillow makes it RGBA with this alpha; pyspng would leave it out
        position = end
    return None


def png_pixels(data: bytes, header: PngHeader) -> np.ndarray | None:
    """H x W x 4 (alpha), H x W x 3 (RGB, palette) or H x W (grey) uint8, or None where
    libspng reports a fault or gives another shape."""
    shape = (header.height, header.width)
    if header.alpha:
        fmt, shape = "RGBA", (*shape, 4)
    elif header.mode == "L":
        fmt = "L"
    else:
        fmt, shape = "RGB", (*shape, 3)
    try:
        pixels = pyspng.load(data, fmt)
    except Exception:  # noqa: BLE001  (libspng's faults come as RuntimeError; any means Pillow)
        return None
    return pixels if pixels.shape == shape and pixels.dtype == np.uint8 else None
