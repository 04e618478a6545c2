"""The one-call entry point for a notebook: duplicate groups of a folder, no index to manage.

    import lookalike
    groups = lookalike.find_duplicates("photos/")
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from .collection import Collection
from .types import Group


def find_duplicates(folders: str | os.PathLike | Iterable[str | os.PathLike], *,
                    mode: str = "fast", index_path: str | os.PathLike | None = None,
                    workers: int | None = None, **settings: Any) -> list[Group]:
    """Duplicate groups of the pictures under `folders` (one path or several), largest first.

    Without `index_path`, the index lives in a temporary folder removed before returning, so
    nothing is written into the folders; with it, the index is kept there and a later call
    reads only what changed. `mode`: "fast" or "thorough" (README, "Fast or thorough");
    `settings`: SearchOptions fields (max_distance=, linkage=, ...).
    """
    with Collection.scan(folders, index=index_path, mode=mode, workers=workers) as photos:
        return photos.groups(**settings)
