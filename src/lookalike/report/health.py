"""Dataset health, as fastdup and cleanvision check it: blurry, too dark, too bright, blank
and low-information pictures, extreme shapes and sizes, and outliers by descriptor.

Nothing is decoded here: the picture measurements were stored at scan time (the "health"
method, methods/health.py), sizes come from the index's content records and outliers from
stored embeddings. Each check is one value against one threshold (HealthThresholds), chosen
by measurement on planted cases (bench/eval_health.py, bench/README.md).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterator

import numpy as np

from ..errors import LookalikeError
from ..index.store import Index, display_path, from_db_path
from ..methods.health import SPEC as HEALTH_SPEC, unpack
from .analysis import META_SQL, NO_VALUE, _json_path, _metadata_key, opened_index
from ..search import embed, vectors

MAX_LISTED = 1000  # flagged files listed per check (all are counted)
OUTLIER_REFERENCE = 10_000  # pictures the outlier distances are measured against, at most
MIN_DETAIL = 0.1  # coarse Laplacian spread (grey levels) below which sharpness is not judged


@dataclass(frozen=True)
class HealthThresholds:
    """Where each check flags a picture. Defaults: chosen on the TUNE half of planted cases
    (bench/eval_health.py); their precision and recall on the other half are in
    bench/README.md."""

    blurry: float = 0.23  # sharpness (fine over coarse Laplacian spread) below this
    dark: float = 64.0  # the 98th-percentile grey level at or below this: even highlights dark
    bright: float = 185.0  # the 2nd-percentile grey level at or above this: even shadows light
    blank: float = 3.5  # grey range (2nd to 98th percentile) below this: near-uniform
    low_information: float = 1.5  # entropy of the grey histogram (bits) below this
    # The size checks are exact: any aspect in (4, 5] and any tiny side in (48, 88] were
    # right on every planted case; the usual 4:1 and 64 px are kept. huge was not planted.
    aspect: float = 4.0  # long side / short side at or above this
    tiny: float = 64.0  # short side (px) below this
    huge: float = 50.0  # megapixels at or above this
    outlier: float = 99.0  # percentile of the distance to the k-th nearest embedding
    outlier_k: int = 5

    def __post_init__(self) -> None:
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise LookalikeError(f"health threshold {name}={value}: give {low} to {high}")


# Allowed range of every threshold (the CLI's --health KEY=VALUE checks against it).
BOUNDS: dict[str, tuple[float, float]] = {
    "blurry": (0.0, 100.0), "dark": (0.0, 255.0), "bright": (0.0, 255.0),
    "blank": (0.0, 128.0), "low_information": (0.0, 8.0), "aspect": (1.0, 1000.0),
    "tiny": (0.0, 100_000.0), "huge": (0.001, 100_000.0), "outlier": (50.0, 100.0),
    "outlier_k": (1, 100)}


@dataclass(frozen=True)
class Check:
    name: str
    value: str  # what is compared
    flags: str  # "below" the threshold, or "at or above" it ("at or below" for dark)
    needs: str  # "health": the stored measurements; "size": content records; "embed"


CHECKS = (
    Check("blurry", "sharpness (fine / coarse detail)", "below", "health"),
    Check("dark", "grey level at the 98th percentile", "at or below", "health"),
    Check("bright", "grey level at the 2nd percentile", "at or above", "health"),
    Check("blank", "grey range (2nd to 98th percentile)", "below", "health"),
    Check("low_information", "grey entropy in bits", "below", "health"),
    Check("aspect", "long side / short side", "at or above", "size"),
    Check("tiny", "short side in px", "below", "size"),
    Check("huge", "megapixels", "at or above", "size"),
    Check("outlier", "distance to the k-th nearest embedding", "above", "embed"),
)


@dataclass(frozen=True)
class Flagged:
    path: str
    value: float


@dataclass(frozen=True)
class CheckResult:
    name: str
    value: str  # what the threshold is compared with
    flags: str
    threshold: float
    checked: int  # files this check could look at
    count: int  # files flagged
    by_category: dict[str, int]
    flagged: tuple[Flagged, ...]  # the worst first, at most MAX_LISTED


@dataclass(frozen=True)
class HealthReport:
    images: int  # readable files
    measured: int  # of them, with stored health measurements
    by: str | None
    checks: dict[str, CheckResult]
    notes: tuple[str, ...]  # what could not be checked, and why

    def to_dict(self) -> dict:
        """Plain JSON-ready values (the `stats --format json` key "health")."""
        data = asdict(self)
        for check in data["checks"].values():
            check["flagged"] = [dict(f, path=display_path(f["path"])) for f in check["flagged"]]
        return json.loads(json.dumps(data))


@dataclass(frozen=True)
class HealthTable:
    """Every readable file with its measurements (NaN where not measured)."""

    paths: list[str]
    content_ids: np.ndarray
    categories: list[str] | None
    values: dict[str, np.ndarray]  # check name -> value compared with its threshold


def health(index: Index | str | os.PathLike, thresholds: HealthThresholds | None = None,
           by: str | None = None) -> HealthReport:
    """The health checks of the collection in `index` (an open Index or its path), counted
    per category of the metadata key `by` (default "category" when files have it)."""
    thresholds = thresholds or HealthThresholds()
    with opened_index(index) as idx, idx.snapshot():
        key = _metadata_key(idx, by)
        table = health_table(idx, key, thresholds.outlier_k)
        notes = list(_notes(table))
    results = {}
    for check in CHECKS:
        values = table.values[check.name]
        mask = flag(check.name, values, thresholds, table)
        results[check.name] = _result(check, table, values, mask, _threshold(check, thresholds,
                                                                             values))
    measured = int(np.isfinite(table.values["blank"]).sum())
    return HealthReport(len(table.paths), measured, key, results, tuple(notes))


def health_table(idx: Index, key: str | None = None, outlier_k: int = 5) -> HealthTable:
    """The measurements of every readable file: one query for the files, one read of the
    stored health values, one of the embeddings when there are any."""
    params: tuple = (_json_path(key),) if key else ()
    rows = idx.conn.execute(
        f"SELECT f.path, f.content_id, COALESCE(c.width, 0), COALESCE(c.height, 0)"
        f"{', ' + META_SQL if key else ''} FROM files f JOIN contents c ON c.id = f.content_id "
        f"WHERE f.status='ok' ORDER BY f.path", params).fetchall()
    paths = [from_db_path(r[0]) for r in rows]
    content_ids = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    width = np.fromiter((r[2] for r in rows), np.float64, len(rows))
    height = np.fromiter((r[3] for r in rows), np.float64, len(rows))
    categories = [NO_VALUE if r[4] is None else str(r[4]) for r in rows] if key else None
    measures = _stored_measures(idx, content_ids)
    long_side, short_side = np.maximum(width, height), np.minimum(width, height)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(short_side > 0, long_side / short_side, np.nan)
        # Fine detail over coarse detail: a blur takes the first and keeps the second, and
        # the ratio does not change with contrast (a darkened copy) or with how much of the
        # picture is detailed. Without coarse detail (a flat picture) it is not judged.
        coarse = measures["coarse_laplacian"]
        sharpness = np.where(coarse >= MIN_DETAIL, measures["laplacian"] / coarse, np.nan)
    values = {"blurry": sharpness, "dark": measures["high"], "bright": measures["low"],
              "blank": measures["high"] - measures["low"], "low_information": measures["entropy"],
              "aspect": aspect, "tiny": np.where(short_side > 0, short_side, np.nan),
              "huge": np.where(short_side > 0, width * height / 1e6, np.nan),
              "outlier": _outlier_distances(idx, content_ids, outlier_k)}
    return HealthTable(paths, content_ids, categories, values)


def _stored_measures(idx: Index, content_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Each health field per file (NaN for a content without a stored measurement)."""
    stored = idx.load_codes(HEALTH_SPEC)
    fields_ = unpack(stored.codes.reshape(-1, HEALTH_SPEC.nbytes))
    rows, found = _rows_of(stored.content_ids, content_ids)
    return {name: np.where(found, column[rows] if column.size else np.nan, np.nan)
            for name, column in fields_.items()}


def _rows_of(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `wanted` in `sorted_ids` (content order) and which were found."""
    if sorted_ids.size == 0:
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    pos = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == wanted


def _outlier_distances(idx: Index, content_ids: np.ndarray, k: int) -> np.ndarray:
    """Cosine distance of each file's picture to its k-th nearest other picture by the
    index's embeddings; NaN without embeddings (or for a picture without one)."""
    out = np.full(len(content_ids), np.nan)
    if not embed.has_embeddings(idx):
        return out
    try:
        stored = embed.load(idx, embed.index_spec(idx))
    except LookalikeError:  # embeddings of a model no longer registered
        return out
    if len(stored.content_ids) <= k:
        return out
    # Against an evenly spaced sample of at most OUTLIER_REFERENCE pictures: the distances
    # grow, their order (all the percentile threshold needs) stays, and 50,000 pictures cost
    # 50,000 x 10,000 products rather than 50,000 squared.
    step = max(1, -(-len(stored.content_ids) // OUTLIER_REFERENCE))
    reference = np.arange(0, len(stored.content_ids), step)
    found = vectors.build(stored.vectors[reference]).knn(stored.vectors, k + 1)
    in_reference = np.arange(len(stored.content_ids)) % step == 0  # its first is itself
    kth = np.where(in_reference, found.similarity[:, k], found.similarity[:, k - 1])
    kth = kth.astype(np.float64)
    distance = np.where(np.isfinite(kth), 1.0 - kth, np.nan)
    rows, present = _rows_of(stored.content_ids, content_ids)
    out[present] = distance[rows[present]]
    return out


def flag(name: str, values: np.ndarray, thresholds: HealthThresholds,
         table: HealthTable | None = None) -> np.ndarray:
    """Which of `values` the check `name` flags (NaN: never)."""
    limit = getattr(thresholds, name)
    with np.errstate(invalid="ignore"):
        if name == "blurry" and table is not None:
            # A blank picture has no edges to be sharp or blurred: it is blank, not blurry.
            return (values < limit) & ~(table.values["blank"] < thresholds.blank)
        if name in ("blurry", "blank", "low_information", "tiny"):
            return values < limit
        if name == "dark":
            return values <= limit
        if name == "outlier":
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return np.zeros(len(values), bool)
            return values > np.percentile(finite, limit)
        return values >= limit


def _threshold(check: Check, thresholds: HealthThresholds, values: np.ndarray) -> float:
    """The threshold in the value's own unit (the outlier percentile as a distance)."""
    limit = float(getattr(thresholds, check.name))
    if check.name == "outlier":
        finite = values[np.isfinite(values)]
        return round(float(np.percentile(finite, limit)), 6) if finite.size else float("nan")
    return limit


WORST_FIRST: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blurry": np.negative, "dark": np.negative, "blank": np.negative,
    "low_information": np.negative, "tiny": np.negative}


def _result(check: Check, table: HealthTable, values: np.ndarray, mask: np.ndarray,
            threshold: float) -> CheckResult:
    rows = np.flatnonzero(mask)
    key = WORST_FIRST.get(check.name, lambda v: v)(values[rows])
    rows = rows[np.argsort(-key, kind="stable")][:MAX_LISTED]
    by_category: dict[str, int] = {}
    if table.categories is not None:
        by_category = dict(Counter(table.categories[i] for i in np.flatnonzero(mask))
                           .most_common())
    return CheckResult(check.name, check.value, check.flags,
                       threshold if np.isfinite(threshold) else -1.0,
                       int(np.isfinite(values).sum()), int(mask.sum()), by_category,
                       tuple(Flagged(table.paths[i], round(float(values[i]), 4)) for i in rows))


def _notes(table: HealthTable) -> Iterator[str]:
    missing = int(np.isnan(table.values["blank"]).sum())
    if missing:
        yield (f"{missing:,} of {len(table.paths):,} images have no health measurements "
               "(scanned before they were stored): 'lookalike scan DIR --method health' adds "
               "them")
    if not np.isfinite(table.values["outlier"]).any():
        yield ("no outliers checked: the index holds no embeddings ('lookalike scan DIR "
               "--mode thorough' or '--method embed' stores them)")


def thresholds_from(pairs: dict[str, float]) -> HealthThresholds:
    """HealthThresholds with the given names changed (LookalikeError for an unknown name or
    a value out of its bounds)."""
    known = {f.name for f in fields(HealthThresholds)}
    for name in pairs:
        if name not in known:
            raise LookalikeError(f"unknown health threshold {name!r}; known: "
                                 f"{', '.join(sorted(known))}")
    changed = {n: int(v) if n == "outlier_k" else float(v) for n, v in pairs.items()}
    return HealthThresholds(**changed)
