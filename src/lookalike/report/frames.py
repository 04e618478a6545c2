"""pandas DataFrames of the index's files, of duplicate groups and of pairs, for notebooks.

pandas is optional (`pip install 'lookalike[report]'`); it is imported when a frame is made.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Sequence

from ..errors import LookalikeError
from ..index.store import Index, display_path, from_db_path
from ..types import Group, Match
from .analysis import opened_index
from .output import group_rows

if TYPE_CHECKING:
    import pandas

FILE_COLUMNS = ["path", "status", "bytes", "width", "height", "aspect", "format", "mode",
                "stage", "error", "content_id"]
# Columns of the frames of groups and pairs, taken from Group.to_dict and Match.to_dict.
GROUP_FRAME_COLUMNS = ["group", "group_size", "path", "width", "height", "bytes", "method",
                       "max_distance", "diameter", "linkage", "fully_linked"]
PAIR_FRAME_COLUMNS = ["a", "b", "method", "distance", "score", "transform"]


def _pandas():
    try:
        import pandas
    except ImportError:
        raise LookalikeError("DataFrames need pandas: pip install 'lookalike[report]' "
                             "(or pip install pandas)") from None
    return pandas


def files_frame(index: Index | str | os.PathLike, include_vanished: bool = False
                ) -> "pandas.DataFrame":
    """One row per file: path, status (ok, failed, other), bytes, width, height, aspect,
    format, colour mode, why it failed, and one column per metadata key (files.meta); a key
    that collides with one of those columns is named "meta_KEY"."""
    pd = _pandas()
    where = "" if include_vanished else "WHERE f.status != 'vanished'"
    with opened_index(index) as idx:
        rows = idx.conn.execute(
            "SELECT f.path, f.status, f.size, c.width, c.height, c.format, c.mode, f.stage, "
            f"f.error, f.content_id, f.meta FROM files f LEFT JOIN contents c "
            f"ON c.id = f.content_id {where} ORDER BY f.path").fetchall()
    frame = pd.DataFrame([r[:10] for r in rows],
                         columns=[c for c in FILE_COLUMNS if c != "aspect"])
    frame["path"] = [display_path(from_db_path(p)) for p in frame["path"]]
    for column in ("width", "height", "content_id"):
        frame[column] = frame[column].astype("Int64")  # NULL for failed files stays missing
    frame.insert(FILE_COLUMNS.index("aspect"), "aspect",
                 (frame["width"] / frame["height"].where(frame["height"] > 0)).astype("Float64"))
    meta = [_meta(r[10]) for r in rows]
    if any(meta):
        extra = pd.DataFrame(meta, index=frame.index)
        extra.columns = [f"meta_{c}" if c in frame.columns else c for c in extra.columns]
        frame = pd.concat([frame, extra], axis=1)
    return frame


def _meta(value: str | None) -> dict:
    """A file's metadata object; anything else (NULL, malformed, not an object) is none."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def groups_frame(groups: Sequence[Group]) -> "pandas.DataFrame":
    """One row per file of each group (numbered from 1, largest first as given), with the
    group's size, method, max_distance, diameter, linkage and fully_linked."""
    return _pandas().DataFrame(list(group_rows(groups)), columns=GROUP_FRAME_COLUMNS)


def pairs_frame(pairs: Sequence[Match]) -> "pandas.DataFrame":
    """One row per pair: a, b, method, distance, score, transform."""
    # The score unrounded: a notebook sorts and plots it (JSON and CSV round it to 4 places).
    return _pandas().DataFrame([m.to_dict() | {"score": m.score} for m in pairs],
                               columns=PAIR_FRAME_COLUMNS)
