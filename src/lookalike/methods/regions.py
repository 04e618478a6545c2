"""Rectangular regions of a page, collage or screenshot that may each be a picture of their own.

Pictures laid out on a page are usually separated by gutters: lines with no edges across them
(a flat or gently graded background). A recursive XY cut along such lines, as page layout
analysis does, finds each tile; a tile can then be hashed and looked up like a whole picture,
which finds copies that local features miss (soft, plain or upscaled pictures).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 exclusive

WORK_SIDE = 512  # the layout is read at this size
EDGE = 10  # a grey-level step between neighbouring pixels (after a light blur) that is content
NOISE = 0.004  # a line with at most this share of content pixels is still empty
GUTTER = 3  # empty lines in a row (at WORK_SIDE) that separate two regions
MIN_SIDE = 32  # regions narrower or lower than this (at WORK_SIDE) are left out
MAX_REGIONS = 24


def content_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels next to a step of more than EDGE grey levels."""
    import cv2

    smooth = cv2.GaussianBlur(gray, (3, 3), 0).astype(np.int16)
    dx = np.abs(np.diff(smooth, axis=1))
    dy = np.abs(np.diff(smooth, axis=0))
    mask = np.zeros(gray.shape, dtype=bool)
    mask[:, 1:] |= dx > EDGE
    mask[1:, :] |= dy > EDGE
    return mask


def propose(rgb: np.ndarray, max_regions: int = MAX_REGIONS) -> list[Box]:
    """Boxes (in the pixels of `rgb`) of the regions the layout splits into, largest first;
    empty when the picture is one region. Each tile comes tight (its empty border trimmed)
    and, where that differs, with the margin up to its gutters (a product on a white ground
    loses its own white border in the tight one)."""
    import cv2

    full = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, WORK_SIDE / max(full.shape))
    gray = full
    if scale < 1.0:
        size = (max(1, round(full.shape[1] * scale)), max(1, round(full.shape[0] * scale)))
        gray = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
    mask = content_mask(gray)
    height, width = mask.shape
    found: list[tuple[Box, bool]] = []
    for box, tight in _cut(mask, (0, 0, width, height), depth=0):
        if box != (0, 0, width, height) and not any(_same(box, b) for b, _ in found):
            found.append((box, tight))
    found.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
    return [_refined(full, box, scale) if tight and scale < 1.0 else _scaled(box, scale,
                                                                            rgb.shape)
            for box, tight in found[:max_regions]]


def _scaled(box: Box, scale: float, shape: tuple[int, ...]) -> Box:
    back = 1.0 / scale
    return (max(0, int(box[0] * back)), max(0, int(box[1] * back)),
            min(shape[1], int(np.ceil(box[2] * back))), min(shape[0], int(np.ceil(box[3] * back))))


def _refined(gray: np.ndarray, box: Box, scale: float) -> Box:
    """A tight box found at WORK_SIDE, trimmed again on the full-size pixels around it."""
    pad = int(np.ceil(1.0 / scale)) + 2
    x0, y0, x1, y1 = _scaled(box, scale, gray.shape)
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(gray.shape[1], x1 + pad), min(gray.shape[0], y1 + pad)
    tight = _trim(content_mask(gray[y0:y1, x0:x1]), (0, 0, x1 - x0, y1 - y0))
    if tight is None:
        return _scaled(box, scale, gray.shape)
    return x0 + tight[0], y0 + tight[1], x0 + tight[2], y0 + tight[3]


def _cut(mask: np.ndarray, cell: Box, depth: int) -> Iterator[tuple[Box, bool]]:
    """The leaves of the XY cut of `cell`: each tight (True), then with its margin."""
    tight = _trim(mask, cell)
    if tight is None or depth > 8:
        return
    x0, y0, x1, y1 = tight
    for axis in (0, 1):  # rows first: pages are read top to bottom
        cells = _split(mask[y0:y1, x0:x1], axis)
        if len(cells) > 1:
            for a, b in cells:
                sub = (x0, y0 + a, x1, y0 + b) if axis == 0 else (x0 + a, y0, x0 + b, y1)
                yield from _cut(mask, sub, depth + 1)
            return
    if _big_enough(tight):
        yield tight, True
        if _big_enough(cell) and not _same(cell, tight):
            yield cell, False


def _empty(mask: np.ndarray, axis: int) -> np.ndarray:
    """Per row (axis 0) or column (axis 1): whether it holds (almost) no content."""
    counts = mask.sum(axis=1 - axis)
    return counts <= NOISE * mask.shape[1 - axis]


def _trim(mask: np.ndarray, cell: Box) -> Box | None:
    x0, y0, x1, y1 = cell
    part = mask[y0:y1, x0:x1]
    rows = np.flatnonzero(~_empty(part, 0))
    cols = np.flatnonzero(~_empty(part, 1))
    if rows.size == 0 or cols.size == 0:
        return None
    return x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1


def _split(part: np.ndarray, axis: int) -> list[tuple[int, int]]:
    """Spans along `axis` separated by at least GUTTER empty lines; each span reaches the
    middle of its gutters (its margin)."""
    empty = _empty(part, axis)
    n = empty.size
    edges = np.flatnonzero(np.diff(np.r_[0, empty.astype(np.int8), 0]))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])
            if b - a >= GUTTER and a > 0 and b < n]
    if not runs:
        return [(0, n)]
    bounds = [0] + [(a + b) // 2 for a, b in runs] + [n]
    return list(zip(bounds[:-1], bounds[1:]))


def _big_enough(box: Box) -> bool:
    return box[2] - box[0] >= MIN_SIDE and box[3] - box[1] >= MIN_SIDE


def _same(a: Box, b: Box, tolerance: float = 0.03) -> bool:
    """Boxes whose sides differ by at most `tolerance` of their size."""
    w = max(a[2] - a[0], b[2] - b[0], 1)
    h = max(a[3] - a[1], b[3] - b[1], 1)
    return (abs(a[0] - b[0]) <= tolerance * w and abs(a[2] - b[2]) <= tolerance * w
            and abs(a[1] - b[1]) <= tolerance * h and abs(a[3] - b[3]) <= tolerance * h)
