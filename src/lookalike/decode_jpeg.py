"""A JPEG decoded straight into an RGB array by simplejpeg (libjpeg-turbo): the pixels
Pillow's path in decode.py gives, in about half the time.

For a 256-px JPEG, Pillow's path costs 0.37 ms a picture up to the array the signatures start
from (its header parsing in Python, its own raster, then the copy out of it); simplejpeg
0.17 ms, the same bytes (bench/README.md, "Fourth pass"). decode.py takes it only where the
answer cannot differ: a grey or YCbCr/RGB JPEG (the modes Pillow drafts), within its limits,
at Pillow's draft scale, not reduced after decoding (decode.py reads the orientation, with
Pillow, from a file that has an EXIF segment). Any error simplejpeg raises (it runs in
strict mode: a truncated or damaged file raises) gives None, and decode.py decodes with
Pillow, whose reasons for a failure stay the ones reported.
"""

from __future__ import annotations

import numpy as np

# libjpeg-turbo's colour spaces that Pillow opens as mode "L" or "RGB"
_MODES = {"Gray": "L", "YCbCr": "RGB", "RGB": "RGB"}

try:
    import simplejpeg
except ImportError:  # an install without it decodes every JPEG with Pillow
    simplejpeg = None


def draft_scale(width: int, height: int, draft_size: int) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's JPEG draft picks for `draft_size`."""
    ratio = min(width // draft_size, height // draft_size) if draft_size > 0 else 1
    return next((scale for scale in (8, 4, 2) if ratio >= scale), 1)


def jpeg_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, Pillow's mode) of a JPEG simplejpeg can decode as Pillow would; None
    for any other (CMYK, YCCK, a damaged header) or where simplejpeg is not installed."""
    if simplejpeg is None:
        return None
    try:
        height, width, space, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    mode = _MODES.get(space)
    return (width, height, mode) if mode and width > 0 and height > 0 else None


def jpeg_pixels(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The RGB pixels at the DCT scale that gives `size` (width, height), or None where
    simplejpeg reports a fault or picks another size."""
    try:
        pixels = simplejpeg.decode_jpeg(data, "rgb", min_height=size[1], min_width=size[0])
    except ValueError:
        return None
    return pixels if (pixels.shape[1], pixels.shape[0]) == size else None
