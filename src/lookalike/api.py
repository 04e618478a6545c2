"""The one-call entry point for a notebook: duplicate groups of a folder, no index to manage.

    import lookalike
    groups = lookalike.find_duplicates("photos/")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .index.store import open_index
from .scan import scan
from .search.dupes import find_groups
from .types import Group


def find_duplicates(folders: str | os.PathLike | Iterable[str | os.PathLike], *,
                    mode: str = "fast", index_path: str | os.PathLike | None = None,
                    workers: int | None = None) -> list[Group]:
    """Duplicate groups of the pictures under `folders` (one path or several), largest first.

    Without `index_path`, the index lives in a temporary folder removed before returning, so
    nothing is written into the folders; with it, the index is kept there and a later call
    reads only what changed. `mode`: "fast" or "thorough" (README, "Fast or thorough").
    """
    if index_path is not None:
        return _scan_and_group(folders, Path(index_path), mode, workers)
    with tempfile.TemporaryDirectory(prefix="lookalike-") as scratch:
        return _scan_and_group(folders, Path(scratch) / "index.db", mode, workers)


def _scan_and_group(folders, index_path: Path, mode: str, workers: int | None) -> list[Group]:
    scan(folders, index_path=index_path, mode=mode, workers=workers)
    with open_index(index_path) as index:
        return find_groups(index)
