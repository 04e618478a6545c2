"""Dataset analysis from the index: what the collection holds, what could not be read, and how
much of it is duplicated. Counts come from SQL aggregates, distributions from NumPy arrays
filled by one query each; nothing here loops in Python over every file."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from ..errors import LookalikeError
from ..index.store import Index, display_path, from_db_path, open_index, to_db_path
from ..types import Group

log = logging.getLogger(__name__)

DEFAULT_BY = "category"  # the metadata key stats are split by when files carry it
PERCENTILES = (5, 25, 50, 75, 95)
HISTOGRAM_BINS = 30
NO_VALUE = "(none)"  # files without the metadata key


@dataclass(frozen=True)
class Distribution:
    """Summary of one numeric column, with a histogram for plots (`edges` has one more entry
    than `counts`; file sizes use log-spaced edges)."""

    count: int
    min: float
    max: float
    mean: float
    median: float
    percentiles: dict[str, float]  # "p5" ... "p95"
    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class FailedFile:
    path: str
    stage: str
    reason: str
    bytes: int


@dataclass(frozen=True)
class FailedDownload:
    url: str
    reason: str
    source: str  # the CSV/Parquet/JSON Lines file that listed it


@dataclass(frozen=True)
class DownloadStats:
    """What `lookalike ingest` recorded: every row's last status, failures with reasons."""

    rows: int
    status: dict[str, int]  # ok, failed, invalid, duplicate
    failure_reasons: dict[str, int]
    failures: tuple[FailedDownload, ...]  # failed and invalid rows


@dataclass(frozen=True)
class CategoryDuplicates:
    files: int
    in_groups: int  # files of this category that have a duplicate somewhere
    redundant: int  # of those, the ones beyond each group's first (kept) file
    rate: float  # redundant / files


@dataclass(frozen=True)
class DuplicateStats:
    method: str
    groups: int
    files_in_groups: int
    redundant: int  # files_in_groups - groups: what removing all copies but one would save
    redundant_bytes: int
    rate: float  # redundant / images
    largest_group: int
    by_method: dict[str, int]  # groups by the weakest evidence that joined them
    by_category: dict[str, CategoryDuplicates]


@dataclass(frozen=True)
class DatasetStats:
    index: str
    files: int  # every path the index knows, vanished ones excluded
    status: dict[str, int]  # ok, failed, other, ...
    images: int  # readable images (status ok)
    contents: int  # distinct images by bytes
    total_bytes: int  # of the readable images
    formats: dict[str, int]
    modes: dict[str, int]
    by: str | None  # the metadata key of `categories`, None when no file has it
    categories: dict[str, int]
    width: Distribution | None
    height: Distribution | None
    aspect: Distribution | None  # width / height
    file_bytes: Distribution | None
    failures: tuple[FailedFile, ...]
    failure_reasons: dict[str, int]  # by stage and the reason's first words
    duplicates: DuplicateStats | None  # None when not asked for or no signatures exist
    downloads: DownloadStats | None  # None when nothing was ingested into this index
    seconds: float

    def to_dict(self) -> dict:
        """Plain JSON-ready values (the `stats --format json` contract)."""
        data = asdict(self)
        data["failures"] = [dict(f, path=display_path(f["path"])) for f in data["failures"]]
        return json.loads(json.dumps(data))  # tuples as lists, as a JSON reader sees them


@contextmanager
def opened_index(index: Index | str | os.PathLike) -> Iterator[Index]:
    """An index given as an open Index is used as is; a path is opened and closed here."""
    if isinstance(index, Index):
        yield index
        return
    with open_index(index) as opened:
        yield opened


def stats(index: Index | str | os.PathLike, by: str | None = None, duplicates: bool = True,
          groups: Sequence[Group] | None = None) -> DatasetStats:
    """Analysis of the collection in `index` (an open Index or the path of one).

    `by`: the metadata key (files.meta) to split counts and duplicate rates by; default
    "category" when any file has it. `duplicates`: also run find_groups (the default cascade)
    when the index holds signatures; `groups` gives groups already found instead.
    """
    started = time.perf_counter()
    with opened_index(index) as idx, idx.snapshot():
        key = _metadata_key(idx, by)
        status = dict(idx.conn.execute(
            "SELECT status, COUNT(*) FROM files WHERE status != 'vanished' GROUP BY status "
            "ORDER BY status").fetchall())
        formats = _counted(idx, "c.format")
        modes = _counted(idx, "c.mode")
        categories = _counted(idx, META_SQL, (_json_path(key),)) if key else {}
        width, height, size = _columns(idx)
        failures = _failures(idx)
        downloads = _downloads(idx)
        dupes = None
        if groups is None and duplicates and has_signatures(idx):
            from ..search.dupes import find_groups

            groups = find_groups(idx)
        if groups is not None:
            dupes = _duplicate_stats(idx, groups, key, categories, len(width))
        contents = idx.conn.execute(
            "SELECT COUNT(DISTINCT content_id) FROM files WHERE status='ok'").fetchone()[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(height > 0, width / np.maximum(height, 1), np.nan)
    return DatasetStats(
        index=str(idx.path), files=sum(status.values()), status=status,
        images=int(status.get("ok", 0)), contents=int(contents), total_bytes=int(size.sum()),
        formats=formats, modes=modes, by=key, categories=categories,
        width=distribution(width[width > 0]), height=distribution(height[height > 0]),
        aspect=distribution(aspect[np.isfinite(aspect)]),
        file_bytes=distribution(size, log_bins=True), failures=failures,
        failure_reasons=dict(Counter(f"{f.stage}: {_reason_kind(f.reason)}"
                                     for f in failures).most_common()),
        duplicates=dupes, downloads=downloads, seconds=round(time.perf_counter() - started, 3))


def distribution(values: np.ndarray, log_bins: bool = False,
                 bins: int = HISTOGRAM_BINS) -> Distribution | None:
    """Summary and histogram of `values`; None when there are none."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    if log_bins and low > 0 and high > low:
        edges = np.geomspace(low, high, bins + 1)
    else:
        # One value only: a bin around it, not a range that starts at it.
        edges = np.linspace(low, high, bins + 1) if high > low else \
            np.linspace(low - 0.5, low + 0.5, 2)
    counts, edges = np.histogram(values, bins=edges)
    marks = np.percentile(values, PERCENTILES)
    return Distribution(
        count=int(values.size), min=low, max=high, mean=round(float(values.mean()), 4),
        median=float(np.median(values)),
        percentiles={f"p{p}": round(float(v), 4) for p, v in zip(PERCENTILES, marks)},
        edges=tuple(round(float(e), 4) for e in edges), counts=tuple(int(c) for c in counts))


def _metadata_key(idx: Index, by: str | None) -> str | None:
    """`by`, or "category" when some live file has it; None when no file has the key."""
    key = by or DEFAULT_BY
    path = _json_path(key)
    present = idx.conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM files f WHERE f.status='ok' AND "
        f"{META_SQL} IS NOT NULL)", (path,)).fetchone()[0]
    if present:
        return key
    if by is not None:
        log.info("no file has metadata key %r", by)
        return by  # asked for: reported, every file under NO_VALUE
    return None


# One metadata value of f, its JSON path bound as the one parameter (malformed JSON reads as
# no value). The key never enters the SQL text.
META_SQL = "(CASE WHEN json_valid(f.meta) THEN CAST(json_extract(f.meta, ?) AS TEXT) END)"
MAX_KEY_CHARS = 200


def _json_path(key: str) -> str:
    """The JSON path of a top-level key; SQLite's paths cannot hold a double quote."""
    if not key or len(key) > MAX_KEY_CHARS or '"' in key or any(ord(c) < 32 for c in key):
        raise LookalikeError(f"metadata key {key[:MAX_KEY_CHARS]!r}: give 1 to "
                             f"{MAX_KEY_CHARS} characters, without double quotes or control "
                             "characters")
    return f'$."{key}"'


def _counted(idx: Index, expression: str, params: tuple = ()) -> dict[str, int]:
    """Readable files per value of `expression` (over files f joined with contents c, with
    `params` bound in it), most first; files without a value under NO_VALUE."""
    rows = idx.conn.execute(
        f"SELECT COALESCE({expression}, ?) AS value, COUNT(*) AS n FROM files f "
        f"JOIN contents c ON c.id = f.content_id WHERE f.status='ok' "
        f"GROUP BY value ORDER BY n DESC, value", (*params, NO_VALUE)).fetchall()
    return {str(value): int(n) for value, n in rows}


def _columns(idx: Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width, height and file size of every readable file."""
    rows = idx.conn.execute(
        "SELECT COALESCE(c.width, 0), COALESCE(c.height, 0), f.size FROM files f "
        "JOIN contents c ON c.id = f.content_id WHERE f.status='ok'").fetchall()
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _failures(idx: Index) -> tuple[FailedFile, ...]:
    return tuple(FailedFile(from_db_path(p), s or "", e or "", int(n)) for p, s, e, n in
                 idx.conn.execute("SELECT path, stage, error, size FROM files "
                                  "WHERE status='failed' ORDER BY path"))


def _downloads(idx: Index) -> DownloadStats | None:
    rows = idx.conn.execute("SELECT source, url, status, reason FROM ingest "
                            "ORDER BY source, row").fetchall()
    if not rows:
        return None
    failed = tuple(FailedDownload(url, reason, source) for source, url, status, reason in rows
                   if status in ("failed", "invalid"))
    return DownloadStats(len(rows), dict(Counter(r[2] for r in rows).most_common()),
                         dict(Counter(_reason_kind(f.reason) for f in failed).most_common()),
                         failed)


def _reason_kind(reason: str) -> str:
    """The general part of a failure reason ("truncated file (...)" -> "truncated file"):
    reasons carry sizes and details that would make every count 1."""
    for cut in (" (", ": "):
        if cut in reason:
            reason = reason.split(cut, 1)[0]
    return reason.strip() or "unknown"


def has_signatures(idx: Index) -> bool:
    return idx.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM signatures s JOIN files f ON f.content_id = s.content_id "
        "WHERE f.status='ok')").fetchone()[0] == 1


def _duplicate_stats(idx: Index, groups: Sequence[Group], key: str | None,
                     categories: dict[str, int], images: int) -> DuplicateStats:
    grouped = sum(len(g.files) for g in groups)
    redundant_bytes = sum(f.bytes for g in groups for f in g.files[1:])
    by_category: dict[str, CategoryDuplicates] = {}
    if key:
        label = _labels(idx, key, [f.path for g in groups for f in g.files])
        in_groups = Counter(label.get(f.path, NO_VALUE) for g in groups for f in g.files)
        redundant = Counter(label.get(f.path, NO_VALUE) for g in groups for f in g.files[1:])
        for value, files in categories.items():
            by_category[value] = CategoryDuplicates(
                files, in_groups[value], redundant[value],
                round(redundant[value] / files, 6) if files else 0.0)
    return DuplicateStats(
        method="auto", groups=len(groups), files_in_groups=grouped,
        redundant=grouped - len(groups), redundant_bytes=int(redundant_bytes),
        rate=round((grouped - len(groups)) / images, 6) if images else 0.0,
        largest_group=max((len(g.files) for g in groups), default=0),
        by_method=dict(Counter(g.method for g in groups).most_common()),
        by_category=by_category)


def _labels(idx: Index, key: str, paths: list[str]) -> dict[str, str]:
    """path -> its metadata value, for those of `paths` that have one."""
    out: dict[str, str] = {}
    path = _json_path(key)
    for start in range(0, len(paths), 500):
        chunk = [to_db_path(p) for p in paths[start:start + 500]]
        marks = ",".join("?" * len(chunk))
        out.update((from_db_path(p), str(v)) for p, v in idx.conn.execute(
            f"SELECT f.path, {META_SQL} FROM files f WHERE f.path IN ({marks})",
            (path, *chunk))
            if v is not None)
    return out
