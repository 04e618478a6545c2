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
from .registry import MethodSpec, Picture, _area, register_method

# The stored values, in order (float32 each). A new field or a changed definition is a new
# SPEC version, so a rescan recomputes only these rows.
FIELDS = ("mean", "std", "laplacian", "coarse_laplacian", "dark", "bright", "entropy", "low",
          "high")
COARSE = 4  # the coarse Laplacian is taken on the grey image area-averaged by this factor
DARK_LEVEL = 32  # grey levels below this count as dark pixels ...
BRIGHT_LEVEL = 224  # ... and from this on as bright ones
LOW_SHARE, HIGH_SHARE = 0.02, 0.98  # the grey levels at these shares of the pixels
SPEC = MethodSpec(name="health", version=1, kind="exact", bits=32 * len(FIELDS), variants=1,
                  default_radius=0, min_quality=0.0,
                  params=f"gray,{COARSE},{DARK_LEVEL},{BRIGHT_LEVEL},{LOW_SHARE},{HIGH_SHARE}",
                  description="health measurements (sharpness, brightness, contrast, "
                              "entropy) for stats; not matched on", matches=False)


def measure(gray: np.ndarray) -> np.ndarray:
    """The FIELDS of a grey uint8 image, as float32: mean and standard deviation of the grey
    levels; the standard deviation of its 4-neighbour Laplacian, and of the Laplacian of the
    image area-averaged by COARSE (0 when too small): a blur takes the fine detail and
    leaves the coarse; the shares of dark and of bright pixels, the entropy of the grey
    histogram in bits, and the grey levels at LOW_SHARE and HIGH_SHARE of the pixels."""
    import cv2

    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    count = gray.size
    if count == 0:
        return np.zeros(len(FIELDS), np.float32)
    histogram = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    share = histogram / count
    levels = np.arange(256, dtype=np.float64)
    mean = float(share @ levels)
    std = float(np.sqrt(max(share @ (levels - mean) ** 2, 0.0)))
    laplacian = _laplacian_spread(gray)
    coarse = 0.0
    if min(gray.shape) >= 3 * COARSE:
        coarse = _laplacian_spread(_area(gray, gray.shape[1] / COARSE, gray.shape[0] / COARSE))
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    cumulative = np.cumsum(share)
    low = float(np.searchsorted(cumulative, LOW_SHARE))
    high = float(np.searchsorted(cumulative, HIGH_SHARE))
    return np.array([mean, std, laplacian, coarse, share[:DARK_LEVEL].sum(),
                     share[BRIGHT_LEVEL:].sum(), entropy, low, min(high, 255.0)], np.float32)


def _laplacian_spread(gray: np.ndarray) -> float:
    """Standard deviation of the 4-neighbour Laplacian (ksize=1), border rows left out: their
    reflection would read as edges on a flat picture."""
    import cv2

    if min(gray.shape) < 3:
        return 0.0
    response = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)[1:-1, 1:-1]
    return float(cv2.meanStdDev(response)[1][0, 0])


def unpack(values: np.ndarray) -> dict[str, np.ndarray]:
    """(N, nbytes) uint8 stored values (or N rows of bytes joined) -> field -> (N,) float."""
    rows = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, SPEC.nbytes)
    table = rows.view("<f4").astype(np.float64)
    return {name: table[:, i] for i, name in enumerate(FIELDS)}


@register_method(SPEC)
class HealthMeasures:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        out = []
        for picture in pictures:
            values = measure(picture.gray)
            # quality: the grey standard deviation, as the hashes' quality measures contrast
            out.append(Signature(SPEC.name, SPEC.version, SPEC.params,
                                 values.astype("<f4").tobytes(), float(values[1])))
        return out
