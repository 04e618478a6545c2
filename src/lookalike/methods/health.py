"""Picture health measurements: sharpness, brightness, contrast and information, measured once
at scan time so that `lookalike stats` reads numbers and never decodes a picture again.

They are taken on the grey working image the hashes share (Picture.gray: its short side is
area-averaged to 128..255 px), so a picture is judged at one scale whatever its size, as
cleanvision judges blur on a small copy; and they cost a Laplacian and a histogram of that
small image. The detectors and their thresholds are in report/health.py. This is a
measurement, not a matching method: `dupes` never matches on it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Signature
from .registry import MethodSpec, Picture, register_method

# The stored values, in order (float32 each). A new field or a changed definition is a new
# SPEC version, so a rescan recomputes only these rows. Version 2: the coarse Laplacian's image
# drops the last rows and columns beyond a multiple of COARSE (an integer area factor), and
# the histogram shares are float64 (version 1's were float32: its fields differ in the last
# float32 digit, and a 2%/98% grey level by one on 3 of 2,172 pictures).
FIELDS = ("mean", "std", "laplacian", "coarse_laplacian", "dark", "bright", "entropy", "low",
          "high")
COARSE = 4  # the coarse Laplacian is taken on the grey image area-averaged by this factor
DARK_LEVEL = 32  # grey levels below this count as dark pixels ...
BRIGHT_LEVEL = 224  # ... and from this on as bright ones
LOW_SHARE, HIGH_SHARE = 0.02, 0.98  # the grey levels at these shares of the pixels
SPEC = MethodSpec(name="health", version=2, kind="exact", bits=32 * len(FIELDS), variants=1,
                  default_radius=0, min_quality=0.0,
                  params=f"gray,{COARSE},{DARK_LEVEL},{BRIGHT_LEVEL},{LOW_SHARE},{HIGH_SHARE}",
                  description="health measurements (sharpness, brightness, contrast, "
                              "entropy) for stats; not matched on", matches=False)


def measure(gray: np.ndarray) -> np.ndarray:
    """The FIELDS of one grey uint8 image, as float32 (see measure_batch)."""
    return measure_batch([gray])[0]


def measure_batch(grays: Sequence[np.ndarray]) -> np.ndarray:
    """(len(grays), len(FIELDS)) float32: for each grey uint8 image, the mean and standard
    deviation of its grey levels; the standard deviation of its 4-neighbour Laplacian, and of
    the Laplacian of the image area-averaged by COARSE (0 when too small): a blur takes the
    fine detail and leaves the coarse; the shares of dark and of bright pixels, the entropy
    of the grey histogram in bits, and the grey levels at LOW_SHARE and HIGH_SHARE of the
    pixels. Per image only the pixel work (a histogram, two Laplacians, one area-average);
    the statistics of the histograms in one NumPy pass for the batch: on a 256-px picture
    the ~15 small NumPy calls they took, one picture at a time, cost as much as its histogram
    (60 us)."""
    import cv2

    histograms = np.zeros((len(grays), 256))
    spreads = np.zeros((len(grays), 2))
    for row, gray in enumerate(grays):
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
        if gray.size == 0:
            continue
        histograms[row] = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
        spreads[row, 0] = _laplacian_spread(gray)
        if min(gray.shape) >= 3 * COARSE:
            spreads[row, 1] = _laplacian_spread(_coarse(gray))
    return from_histograms(histograms, spreads)


def from_histograms(histograms: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    """measure_batch's FIELDS from each image's grey histogram (N, 256) and its two
    Laplacian spreads (N, 2): the statistics of all the histograms in one NumPy pass."""
    count = histograms.sum(axis=1, keepdims=True)
    share = histograms / np.maximum(count, 1.0)
    levels = np.arange(256, dtype=np.float64)
    mean = share @ levels
    std = np.sqrt(np.maximum((share * (levels - mean[:, None]) ** 2).sum(axis=1), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(share > 0, share * np.log2(share), 0.0).sum(axis=1)
    cumulative = np.cumsum(share, axis=1)
    # searchsorted per row: the first level whose cumulative share reaches the given share
    low = (cumulative < LOW_SHARE).sum(axis=1)
    high = np.minimum((cumulative < HIGH_SHARE).sum(axis=1), 255)
    out = np.stack([mean, std, spreads[:, 0], spreads[:, 1], share[:, :DARK_LEVEL].sum(axis=1),
                    share[:, BRIGHT_LEVEL:].sum(axis=1), entropy, low, high], axis=1)
    out[count[:, 0] == 0] = 0.0
    return out.astype(np.float32)


def _coarse(gray: np.ndarray) -> np.ndarray:
    """The grey image area-averaged by COARSE, its last rows and columns beyond a multiple of
    COARSE left out: an integer factor takes OpenCV's fast path (a fractional one cost more
    than the Laplacian of the full image)."""
    import cv2

    height, width = gray.shape[0] // COARSE, gray.shape[1] // COARSE
    return cv2.resize(gray[:height * COARSE, :width * COARSE], (width, height),
                      interpolation=cv2.INTER_AREA)


def _laplacian_spread(gray: np.ndarray) -> float:
    """Standard deviation of the 4-neighbour Laplacian (ksize=1), border rows left out: their
    reflection would read as edges on a flat picture. In 16-bit integers (exact: at most
    4 x 255), its sum and sum of squares: twice as fast as float32 and meanStdDev."""
    import cv2

    if min(gray.shape) < 3:
        return 0.0
    response = cv2.Laplacian(gray, cv2.CV_16S, ksize=1)[1:-1, 1:-1]
    return spread(cv2.sumElems(response)[0], cv2.norm(response, cv2.NORM_L2SQR), response.size)


def spread(total: float, squares: float, count: int) -> float:
    """Standard deviation of `count` values from their sum and their sum of squares."""
    mean = total / count
    return float(np.sqrt(max(squares / count - mean * mean, 0.0)))


def unpack(values: np.ndarray) -> dict[str, np.ndarray]:
    """(N, nbytes) uint8 stored values (or N rows of bytes joined) -> field -> (N,) float."""
    rows = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, SPEC.nbytes)
    table = rows.view("<f4").astype(np.float64)
    return {name: table[:, i] for i, name in enumerate(FIELDS)}


@register_method(SPEC)
class HealthMeasures:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        table = measure_batch([picture.gray for picture in pictures]).astype("<f4")
        # quality: the grey standard deviation, as the hashes' quality measures contrast
        return [Signature(SPEC.name, SPEC.version, SPEC.params, values.tobytes(),
                          float(values[1])) for values in table]
