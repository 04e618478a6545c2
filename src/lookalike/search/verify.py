"""Geometric verification of a candidate pair from local features.

Descriptors are matched both ways (ratio test, mutual nearest neighbours), then a similarity
transform (scale, rotation, shift) is fitted robustly with RANSAC. A pair is confirmed by
enough inliers spread over the part the two pictures share. The evidence stays with the
result: inliers, scale, angle, mirror, and where each picture sits inside the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..methods.dihedral import variant
from ..methods.local import Features, LocalSignature, lab_of
from .binary import faiss_threads

RATIO = 0.8  # Lowe's ratio test on Hamming distances
MAX_DESCRIPTOR_DISTANCE = 80  # of 256 bits: farther matches are noise
# RANSAC inlier threshold, as a share of the smaller picture's diagonal: true copies fit to
# 1-3 per mille (median).
REPROJECTION = 0.008

MIN_INLIERS = 8  # chosen by measurement (bench/eval_local.py)
MIN_SPREAD = 0.015  # inliers' hull over the contained picture's shared part (a thin mast: 0.02)
SCALE_RANGE = (1 / 12, 12.0)
INSIDE = 0.85  # a picture is inside the other when this share of its frame maps into it


@dataclass(frozen=True)
class Verification:
    """How picture a maps onto picture b, and whether that is a copy."""

    confirmed: bool
    inliers: int
    matches: int
    scale: float = 0.0  # b pixels per a pixel
    rotation: float = 0.0  # degrees, counter-clockwise as seen on screen
    mirror: bool = False  # a was mirrored left-right to match b
    box_in_b: tuple[float, float, float, float] | None = None  # a's frame in b (x0, y0, x1, y1)
    box_in_a: tuple[float, float, float, float] | None = None  # b's frame in a
    spread: float = 0.0
    matrix: tuple[float, ...] | None = None  # 2x3 affine from a's pixels to b's (row-major)
    a_in_b: float = 0.0  # share of a's frame that lies inside b once mapped
    b_in_a: float = 0.0  # share of b's frame that lies inside a
    recoloured: bool = False  # the geometry fits but the colours differ: not confirmed
    coverage: float = 0.0  # share of the shared part's feature-rich cells holding an inlier
    # (computed for confirmed fits only)

    @property
    def relation(self) -> str:
        """"same" (each covers the other), "a in b", "b in a", or "overlap"."""
        a_in, b_in = self.a_in_b >= INSIDE, self.b_in_a >= INSIDE
        if a_in and b_in:
            return "same"
        return "a in b" if a_in else ("b in a" if b_in else "overlap")

    def describe(self) -> str:
        if not self.confirmed:
            return f"not verified ({self.inliers} inliers)"
        return (f"{self.inliers} inliers, scale {self.scale:.2f}, rotation "
                f"{round(self.rotation) + 0:+d} deg" + (", mirrored" if self.mirror else ""))


def match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i in a, j in b) that pass the ratio test and are mutual nearest neighbours.
    a, b: (N, 32) uint8 binary descriptors (Hamming) or (N, D) float32 (Euclidean)."""
    if len(a) < 2 or len(b) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    forward_d, forward_i = _knn(b, a, 2)
    _, backward_i = _knn(a, b, 1)
    rows = np.arange(len(a))
    best = forward_i[:, 0]
    limit = MAX_DESCRIPTOR_DISTANCE if a.dtype == np.uint8 else np.inf
    keep = ((backward_i[best, 0] == rows) & (forward_d[:, 0] <= limit)
            & (forward_d[:, 0] < RATIO * forward_d[:, 1]))
    return rows[keep].astype(np.int64), best[keep].astype(np.int64)


def _knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS brute force: Hamming for bytes, Euclidean for floats (distances, not squared)."""
    import faiss

    with faiss_threads(0):  # a few hundred descriptors
        if base.dtype == np.uint8:
            index = faiss.IndexBinaryFlat(base.shape[1] * 8)
            index.add(np.ascontiguousarray(base))
            return index.search(np.ascontiguousarray(queries), k)
        index = faiss.IndexFlatL2(base.shape[1])
        index.add(np.ascontiguousarray(base, dtype=np.float32))
        d, i = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.sqrt(np.maximum(d, 0)), i


def verify(a: LocalSignature, b: LocalSignature, min_inliers: int = MIN_INLIERS) -> Verification:
    """The better of a-as-is and a-mirrored onto b; a fit whose two pictures largely
    overlap but differ in colour is not a copy (the same picture recoloured)."""
    best = verify_features(a.plain, b.plain, min_inliers)
    if not (best.confirmed and best.inliers >= 3 * min_inliers):  # else clearly a copy as is
        mirrored = verify_features(a.mirrored, b.plain, min_inliers, mirrored=True)
        best = max(best, mirrored, key=lambda v: (v.confirmed, v.inliers))
    if best.confirmed and recoloured(a, b, best):
        return replace(best, confirmed=False, recoloured=True)
    return best


RECOLOUR_OVERLAP = 0.5  # both frames at least this much inside each other: colours compared
RECOLOUR_CHROMA = 12.0  # |a, b difference| of the median shared cell above which it differs


def _thumbnail_cells(a: LocalSignature, v: Verification
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a's colour thumbnail as the fit sees it (mirrored with it), the fit's 2x3 matrix, and
    the thumbnail cells' centres mapped into b's pixels."""
    thumb = a.thumbnail[:, :, ::-1] if v.mirror else a.thumbnail
    side = thumb.shape[1]
    centres = (np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)
               + 0.5) / side * np.asarray([a.plain.width, a.plain.height])
    matrix = np.asarray(v.matrix).reshape(2, 3)
    return thumb, matrix, centres @ matrix[:, :2].T + matrix[:, 2]


def recoloured(a: LocalSignature, b: LocalSignature, v: Verification) -> bool:
    """Whether the shared part has other colours in b than in a (thumbnails sampled through
    the fitted transform); a grey picture is compatible with any colour."""
    if a.thumbnail is None or b.thumbnail is None or v.matrix is None:
        return False
    if min(v.a_in_b, v.b_in_a) < RECOLOUR_OVERLAP:
        return False  # a small part: 8x8 thumbnails are too coarse to compare it
    thumb_a, matrix, mapped = _thumbnail_cells(a, v)
    side = thumb_a.shape[1]
    cells = np.floor(mapped / np.asarray([b.plain.width, b.plain.height]) * side).astype(int)
    inside = ((cells >= 0) & (cells < side)).all(axis=1)
    if inside.sum() < side:
        return False
    ca = thumb_a[1:].reshape(2, -1)[:, inside].astype(np.float32)
    cb = b.thumbnail[1:, cells[inside, 1], cells[inside, 0]].astype(np.float32)
    if min(np.abs(ca - 128).mean(), np.abs(cb - 128).mean()) < GREY_CHROMA:
        return False
    # the median of the cells that show colour on either side: stickers over a part of the
    # picture are not a recolour, one product in another colour on white still is
    differs = np.abs(ca - cb).mean(axis=0)
    coloured = np.maximum(np.abs(ca - 128).mean(axis=0), np.abs(cb - 128).mean(axis=0))
    judged = differs[coloured >= GREY_CHROMA]
    return float(np.median(judged if judged.size >= 4 else differs)) > RECOLOUR_CHROMA


def verify_features(a: Features, b: Features, min_inliers: int = MIN_INLIERS,
                    mirrored: bool = False) -> Verification:
    """Fit a similarity from a's keypoints to b's; `mirrored` says a's features are those of
    its mirror image (the result maps the mirrored a into b)."""
    import cv2

    ia, ib = match(a.descriptors, b.descriptors)
    if len(ia) < max(min_inliers, 3):
        return Verification(False, 0, len(ia), mirror=mirrored)
    pa, pb = a.xy[ia], b.xy[ib]
    threshold = REPROJECTION * min(math.hypot(a.width, a.height) * _rough_scale(pa, pb),
                                   math.hypot(b.width, b.height))
    matrix, mask = cv2.estimateAffinePartial2D(
        pa, pb, method=cv2.RANSAC, ransacReprojThreshold=max(threshold, 1.0),
        maxIters=2000, confidence=0.995, refineIters=10)
    if matrix is None or mask is None:
        return Verification(False, 0, len(ia), mirror=mirrored)
    inlier = mask.ravel().astype(bool)
    n = int(inlier.sum())
    scale = float(math.hypot(matrix[0, 0], matrix[1, 0]))
    rotation = -math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))  # y axis points down
    inverse = cv2.invertAffineTransform(matrix)
    box_in_b, a_in_b = _mapped(matrix, a, b)
    box_in_a, b_in_a = _mapped(inverse, b, a)
    spread = _spread(pa[inlier], pb[inlier], box_in_a, box_in_b)
    ok = (n >= min_inliers and SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]
          and spread >= MIN_SPREAD and box_in_b is not None and box_in_a is not None)
    covered = _coverage(a, b, pa, pb, inlier, matrix, inverse,
                        max(threshold, 1.0)) if ok else 0.0
    if mirrored:  # report boxes in the frames of the pictures as they are
        box_in_a = _mirror_box(box_in_a, a.width)
    return Verification(ok, n, len(ia), scale, rotation, mirrored, box_in_b, box_in_a, spread,
                        tuple(float(v) for v in matrix.ravel()), a_in_b, b_in_a,
                        coverage=covered)


COVER_GRID = 4  # the shared part of each picture cut into 4 x 4 cells
COVER_KEYPOINTS = 3  # a cell with this many keypoints has content that a copy must match
COVER_HOMOGRAPHY = 0.6  # under this, a homography's inliers may cover more (it costs 1 ms)


def _coverage(a: Features, b: Features, pa: np.ndarray, pb: np.ndarray, inlier: np.ndarray,
              matrix: np.ndarray, inverse: np.ndarray, threshold: float) -> float:
    """The smaller, over both pictures, of the share of their shared part's feature-rich
    cells that hold an inlier. Two pictures drawn in one frame or template (menu icons,
    signs, dialogs) fit on the frame alone and leave the cells of their own content empty;
    a copy matches all over. Where that share is low, a homography's inliers count if it
    fits more points than the similarity (a perspective copy fits a similarity in part)."""
    import cv2

    shared_a = _inside(a.xy, matrix, b)  # a's keypoints that land inside b, and back
    shared_b = _inside(b.xy, inverse, a)

    def share(mask: np.ndarray) -> float:
        return min(_covered(a.xy[shared_a], pa[mask]), _covered(b.xy[shared_b], pb[mask]))

    covered = share(inlier)
    if covered < COVER_HOMOGRAPHY and len(pa) >= 8:
        _, mask = cv2.findHomography(pa, pb, cv2.RANSAC, threshold)
        if mask is not None and int(mask.sum()) > int(inlier.sum()):
            covered = max(covered, share(mask.ravel().astype(bool)))
    return covered


def _inside(points: np.ndarray, matrix: np.ndarray, other: Features) -> np.ndarray:
    """Mask of `points` that `matrix` maps inside `other`'s frame."""
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    return ((mapped[:, 0] >= 0) & (mapped[:, 0] < other.width)
            & (mapped[:, 1] >= 0) & (mapped[:, 1] < other.height))


def _covered(keypoints: np.ndarray, inliers: np.ndarray) -> float:
    """Share of the cells of the keypoints' bounding box (the shared part: keypoints that
    land inside the other picture) with COVER_KEYPOINTS keypoints that hold an inlier."""
    if len(keypoints) < COVER_KEYPOINTS:
        return 1.0
    x0, y0 = keypoints.min(axis=0)
    x1, y1 = keypoints.max(axis=0) + 1e-3
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 1.0

    def cells(points: np.ndarray) -> np.ndarray:
        inside = ((points[:, 0] >= x0) & (points[:, 0] < x1)
                  & (points[:, 1] >= y0) & (points[:, 1] < y1))
        points = points[inside]
        col = np.clip(((points[:, 0] - x0) / (x1 - x0) * COVER_GRID).astype(int), 0,
                      COVER_GRID - 1)
        row = np.clip(((points[:, 1] - y0) / (y1 - y0) * COVER_GRID).astype(int), 0,
                      COVER_GRID - 1)
        return np.bincount(row * COVER_GRID + col, minlength=COVER_GRID ** 2)

    rich = cells(keypoints) >= COVER_KEYPOINTS
    if not rich.any():
        return 1.0
    return float((rich & (cells(inliers) > 0)).sum() / rich.sum())


def _rough_scale(pa: np.ndarray, pb: np.ndarray) -> float:
    """b's size over a's, from the spread of the matched points (for the RANSAC threshold)."""
    sa = float(np.median(np.abs(pa - np.median(pa, axis=0)))) + 1e-6
    sb = float(np.median(np.abs(pb - np.median(pb, axis=0)))) + 1e-6
    return min(max(sb / sa, 1 / 12), 12.0)


def _mapped(matrix: np.ndarray, a: Features, b: Features):
    """a's frame mapped into b: its bounding box clipped to b, and the share of a's frame
    that falls inside b."""
    import cv2

    corners = np.asarray([[0, 0], [a.width, 0], [a.width, a.height], [0, a.height]],
                         np.float64)
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    x0, y0 = np.clip(mapped.min(axis=0), 0, [b.width, b.height])
    x1, y1 = np.clip(mapped.max(axis=0), 0, [b.width, b.height])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None, 0.0
    frame = np.asarray([[0, 0], [b.width, 0], [b.width, b.height], [0, b.height]], np.float32)
    quad = mapped.astype(np.float32)
    area = abs(float(cv2.contourArea(quad)))
    inside, _ = cv2.intersectConvexConvex(quad, frame)
    share = min(float(inside) / area, 1.0) if area > 0 else 0.0
    return (float(x0), float(y0), float(x1), float(y1)), share


def _mirror_box(box, width: int):
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return (width - x1, y0, width - x0, y1)


def _spread(pa: np.ndarray, pb: np.ndarray, box_in_a, box_in_b) -> float:
    """How much of the shared region the inliers cover: the larger of the two sides' convex
    hull areas over the shared box's area."""
    best = 0.0
    for points, box in ((pa, box_in_a), (pb, box_in_b)):
        if box is None or len(points) < 3:
            continue
        area = (box[2] - box[0]) * (box[3] - box[1])
        hull = _hull_area(points)
        best = max(best, hull / area if area > 0 else 0.0)
    return min(best, 1.0)


def _hull_area(points: np.ndarray) -> float:
    import cv2

    hull = cv2.convexHull(np.ascontiguousarray(points, dtype=np.float32))
    return float(cv2.contourArea(hull))


# Pictures too plain for features (skies, gradients, pages) are compared by their colour
# thumbnails instead: measured on the 20k benchmark's hash pairs of such pictures, these
# limits keep 471 of 497 true pairs and drop 515 of 781 false ones (bench/README.md).
THUMB_LIGHTNESS = 5.0  # mean |difference| of lightness (0-255), each thumbnail's mean removed
THUMB_CHROMA = 10.0  # mean |difference| of a and b, unless one picture is grey
GREY_CHROMA = 3.0  # a picture whose a, b stay this close to neutral is grey


def thumbnails_agree(a: np.ndarray, b: np.ndarray, transform: int = 0,
                     max_lightness: float = THUMB_LIGHTNESS,
                     max_brightness: float = 255.0) -> bool:
    """Whether two (3, T, T) CIELAB thumbnails show the same picture, after turning a by
    the dihedral `transform` (methods/dihedral.py) onto b. Brightness shifts (up to
    `max_brightness` in mean lightness) and conversion to grey are allowed (they are
    planted duplicates), recolouring is not."""
    a, b = _turned(a, b, transform)
    lightness = _cell_lightness(a, b).mean()
    brightness = abs(float(a[0].mean() - b[0].mean()))
    return bool(lightness <= max_lightness and brightness <= max_brightness
                and _chroma(a, b) <= THUMB_CHROMA)


def _turned(a: np.ndarray, b: np.ndarray, transform: int) -> tuple[np.ndarray, np.ndarray]:
    """Two thumbnails as float32, a turned by the dihedral `transform` onto b."""
    return variant(a.astype(np.float32), int(transform)), b.astype(np.float32)


def _cell_lightness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|difference| of lightness per cell, each thumbnail's mean removed: (..., T, T) for
    thumbnails (..., 3, T, T)."""
    light_a, light_b = a[..., 0, :, :], b[..., 0, :, :]
    return np.abs((light_a - light_a.mean(axis=(-2, -1), keepdims=True))
                  - (light_b - light_b.mean(axis=(-2, -1), keepdims=True)))


def _chroma(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean |difference| of a and b per pair of thumbnails (..., 3, T, T); 0 where either
    picture is grey (a grey copy)."""
    cells = (-3, -2, -1)
    grey = np.minimum(np.abs(a[..., 1:, :, :] - 128).mean(axis=cells),
                      np.abs(b[..., 1:, :, :] - 128).mean(axis=cells)) < GREY_CHROMA
    return np.where(grey, 0.0, np.abs(a[..., 1:, :, :] - b[..., 1:, :, :]).mean(axis=cells))


# same_thumbnail: every cell's lightness (each thumbnail's mean removed) within this. Re-
# encodes, resizes and blur of the sample pictures stay within 1.0; different pictures in one
# shared frame differ by 31 or more in some cell (tests/integration/test_thorough_mode.py).
SAME_CELL_LIGHTNESS = 6.0


def same_thumbnail(a: np.ndarray, b: np.ndarray, transform: int = 0) -> bool:
    """Whether two (3, T, T) CIELAB thumbnails are the same picture cell by cell, after
    turning a by `transform` onto b: stricter than thumbnails_agree, which averages over the
    cells (a shared frame keeps the average low while the content inside it differs)."""
    a, b = _turned(a, b, transform)
    return bool(_cell_lightness(a, b).max() <= SAME_CELL_LIGHTNESS
                and _chroma(a, b) <= THUMB_CHROMA)


# same_colours: the mean |difference| of a and b over the cells (unless either picture is
# grey). On the fast mode's hash pairs of bench/make_copydetect.py's collection (both
# splits), 14 keeps 637 of 650 copies and drops 70 of 77 pairs of a picture and its
# hue-rotated variant; 10 keeps 627 and drops 72.
SAME_CHROMA = 14.0


def same_colours(a: np.ndarray, b: np.ndarray, transform: int = 0,
                 max_chroma: float = SAME_CHROMA) -> bool:
    """Whether two (3, T, T) CIELAB thumbnails have the same colours, cell by cell, after
    turning a by `transform` onto b; a grey picture agrees with any (a grey copy)."""
    return bool(colours_agree(a[None], b[None], np.asarray([transform]), max_chroma)[0])


def colours_agree(a: np.ndarray, b: np.ndarray, transforms: np.ndarray,
                  max_chroma: float = SAME_CHROMA) -> np.ndarray:
    """same_colours of N pairs at once: a (N, 3, T, T), b the same or one (3, T, T) for all,
    transforms (N,); a bool mask. The thumbnails hold integers, so every mean is exact and
    each pair's answer is the one it gets alone."""
    return _chroma(*_turned_batch(a, b, transforms)) <= max_chroma


# same_layout: at most this share of cells may differ by more than LAYOUT_CELL in lightness
# (each thumbnail's mean removed). Two pictures shown small in one web or phone frame differ
# in the cells of the picture; copies that hashes find differ in 3 cells of 64 at most
# (bench/README.md, "The fast mode's hub check").
LAYOUT_CELL = 20.0
LAYOUT_SHARE = 0.05


def same_layout(a: np.ndarray, b: np.ndarray, transform: int = 0) -> bool:
    """Whether two (3, T, T) CIELAB thumbnails show the same light pattern nearly everywhere,
    after turning a by `transform` onto b."""
    return bool(layouts_agree(a[None], b[None], np.asarray([transform]))[0])


def layouts_agree(a: np.ndarray, b: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """same_layout of N pairs at once, as colours_agree."""
    cells = _cell_lightness(*_turned_batch(a, b, transforms))
    return (cells > LAYOUT_CELL).mean(axis=(-2, -1)) <= LAYOUT_SHARE


def _turned_batch(a: np.ndarray, b: np.ndarray, transforms: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """_turned for N pairs: (N, 3, T, T) float32 each, a[i] turned by transforms[i]."""
    a = a.astype(np.float32)
    turned = np.empty_like(a)
    transforms = np.asarray(transforms)
    for k in np.unique(transforms).tolist():
        rows = transforms == k
        turned[rows] = variant(a[rows], int(k))
    return turned, b.astype(np.float32)


REGION_LIGHTNESS = 10.0  # region_agrees: lightness pattern limit (a box, not a whole picture)
REGION_BRIGHTNESS = 30.0  # and of the mean lightness: a somewhat brighter copy still agrees
REGION_CELLS = 16  # of a's 8x8 thumbnail cells that must land inside b to judge


def region_agrees(rgb: np.ndarray, width: int, height: int, v: Verification,
                  a: LocalSignature) -> bool:
    """Whether b's pixels (`rgb`, of a width x height picture, possibly reduced) where the
    fit puts a's thumbnail cells have a's colours and light pattern. Features can fit on a
    shared element only (a caption in the same font, a frame, a texture): those places of b
    then look otherwise. True when it cannot be judged (too few cells land inside b)."""
    import cv2

    if v.matrix is None or a.thumbnail is None:
        return True
    thumb, matrix, mapped = _thumbnail_cells(a, v)  # mapped: in b's full-size pixels
    side = thumb.shape[1]
    extent = np.abs(matrix[:, :2]) @ np.asarray([a.plain.width, a.plain.height]) / side
    # b area-averaged so that one of a's cells still spans 16 of its pixels or more
    per_pixel = rgb.shape[1] / width  # rgb pixels per full-size pixel
    shrink = max(1.0, float(extent.min()) * per_pixel / 16.0)
    size = (max(1, round(rgb.shape[1] / shrink)), max(1, round(rgb.shape[0] / shrink)))
    lab = lab_of(cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA))
    sums = np.stack([cv2.integral(channel.astype(np.float32)) for channel in lab])
    to_small = np.asarray(size, np.float64) / np.asarray([width, height])
    # each cell's whole footprint (a's thumbnail averages whole cells), but for a pixel at
    # each side: a fit a pixel off must not reach over a's edge (a dark picture on white)
    centre, half = mapped * to_small, np.maximum(extent * to_small / 2 - 1.0, 0.5)
    inside = ((centre >= 0) & (centre < np.asarray(size))).all(axis=1)
    if inside.sum() < REGION_CELLS:
        return True
    lo = np.clip(np.rint(centre[inside] - half), 0, np.asarray(size) - 1).astype(int)
    hi = np.clip(np.rint(centre[inside] + half), lo + 1, np.asarray(size)).astype(int)
    total = (sums[:, hi[:, 1], hi[:, 0]] - sums[:, lo[:, 1], hi[:, 0]]
             - sums[:, hi[:, 1], lo[:, 0]] + sums[:, lo[:, 1], lo[:, 0]])
    cb = total / ((hi - lo).prod(axis=1))
    ca = thumb.reshape(3, -1)[:, inside].astype(np.float32)
    lightness = np.abs((ca[0] - ca[0].mean()) - (cb[0] - cb[0].mean())).mean()
    brightness = abs(float(ca[0].mean() - cb[0].mean()))
    # b may show a grey copy of a; a grey a never shows in colour
    grey = np.abs(cb[1:] - 128).mean() < GREY_CHROMA
    chroma = 0.0 if grey else float(np.abs(ca[1:] - cb[1:]).mean())
    return bool(lightness <= REGION_LIGHTNESS and brightness <= REGION_BRIGHTNESS
                and chroma <= THUMB_CHROMA)
