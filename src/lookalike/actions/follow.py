"""The index follows what an apply run and its undo did to the files: quarantined or deleted
files leave the live set (groups, plans and the web UI stop showing them), restored ones come
back. Best effort: while a scan holds the index, the next scan brings it up to date instead."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import LookalikeError
from ..index.store import open_index
from .apply import ApplyReport
from .journal import JOURNAL_NAME, read_steps
from .undo import UndoReport

log = logging.getLogger(__name__)
MOVED_AWAY = ("quarantine", "delete")


def after_apply(report: ApplyReport, index_path: str | os.PathLike) -> str | None:
    """Mark the files the run moved away; a warning (why the index was not updated) or None."""
    gone = [o.path for o in report.outcomes if o.status == "done" and o.action in MOVED_AWAY]
    return _update(index_path, lambda index: index.files_moved(gone)) if gone else None


def after_undo(report: UndoReport, run_dir: str | os.PathLike) -> str | None:
    """Mark the files the undo put back as live again; a warning or None."""
    if not report.restored:
        return None
    index_path = read_steps(Path(run_dir) / JOURNAL_NAME)[0].get("index")
    if not index_path:
        return None
    return _update(index_path, lambda index: index.files_restored(report.restored))


def _update(index_path: str | os.PathLike, change) -> str | None:
    if not Path(index_path).is_file():
        return f"the index {index_path} is gone; it was not updated"
    try:
        with open_index(index_path) as index:
            index.acquire()
            count = change(index)
    except LookalikeError as exc:
        return f"the index was not updated ({exc}); the next scan will do it"
    log.info("index %s: %d files updated", index_path, count)
    return None
