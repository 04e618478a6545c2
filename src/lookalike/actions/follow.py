"""The index follows what an apply run and its undo did to the files: quarantined or deleted
files leave the live set (groups, plans and the web UI stop showing them), restored ones come
back. Best effort: while a scan holds the index, the next scan brings it up to date instead."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import LookalikeError
from ..index.store import open_index
from .apply import ApplyReport, quarantine_for
from .journal import INDEXED, JOURNAL_NAME, Journal, last_event, read_steps
from .undo import UndoReport, find_runs

log = logging.getLogger(__name__)
MOVED_AWAY = ("move", "delete")  # journal ops that take a file from its place


def after_apply(report: ApplyReport, index_path: str | os.PathLike) -> str | None:
    """Mark the files the run moved away; a warning (why the index was not updated) or None."""
    if not report.executed or not report.run_dir:
        return None
    return follow_runs(index_path, [Path(report.run_dir)])


def after_undo(report: UndoReport, run_dir: str | os.PathLike) -> str | None:
    """Mark the files the undo put back as live again; a warning or None."""
    index_path = read_steps(Path(run_dir) / JOURNAL_NAME)[0].get("index")
    if not index_path:
        return None
    return follow_runs(index_path, [Path(run_dir)])


def catch_up(index_path: str | os.PathLike) -> str | None:
    """Bring the index up to date with every run in its quarantine folder that it has not
    followed yet: an apply or undo killed before its last step leaves files the index still
    shows as live (or as moved). Cheap when there is nothing to do; a warning or None."""
    runs = [run for run in find_runs(quarantine_for(index_path))
            if last_event(run / JOURNAL_NAME) != INDEXED]
    return follow_runs(index_path, runs) if runs else None


def follow_runs(index_path: str | os.PathLike, runs: list[Path]) -> str | None:
    """Record in the index what `runs` did (moved away, put back), then mark each journal as
    followed. Idempotent: it sets each file to the state its run's journal leads to."""
    if not Path(index_path).is_file():
        return f"the index {index_path} is gone; it was not updated"
    try:
        with open_index(index_path) as index:
            index.acquire()
            count = 0
            for run in runs:
                gone, back = _net_effect(run)
                count += index.files_moved(gone) + index.files_restored(back)
                with Journal(run / JOURNAL_NAME) as journal:
                    journal.write({"event": INDEXED, "index": str(index_path)})
    except (LookalikeError, OSError) as exc:
        return f"the index was not updated ({exc}); the next scan will do it"
    log.info("index %s: %d files updated", index_path, count)
    return None


def _net_effect(run: Path) -> tuple[list[str], list[str]]:
    """Files the run took away and has not put back, and files its undo put back."""
    gone, back = [], []
    for step in read_steps(run / JOURNAL_NAME)[1]:
        if step.intent.get("op") not in MOVED_AWAY or not step.done:
            continue
        (back if step.undone else gone).append(step.intent["path"])
    return gone, back
