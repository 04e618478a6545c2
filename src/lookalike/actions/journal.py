"""The journal of one apply run: JSON Lines, each line written and fsynced before the next
step, so a run killed at any point (even SIGKILL) leaves a record undo can trust.

For every step: an "intent" line before touching the file system, a "done" line after.
Undo appends "undone" lines, so running it twice does nothing the second time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import QuarantineBusyError
from ..locks import try_lock

JOURNAL_NAME = "journal.jsonl"
FILES_DIR = "files"  # quarantined files, under their absolute path
INDEXED = "indexed"  # appended once the index reflects every step above it (follow.py)


def new_run_id() -> str:
    """Sortable by time, unique per process: UTC time to the microsecond and the pid."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}"


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new name in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quarantine_path(run_dir: Path, path: str) -> Path:
    """Where `path` goes in the run's quarantine: its absolute path mirrored, so two files of
    the same name from different folders never meet and undo needs no lookup."""
    return run_dir / FILES_DIR / os.path.abspath(path).lstrip(os.sep)


@contextmanager
def quarantine_lock(folder: str | os.PathLike) -> Iterator[None]:
    """One apply or undo at a time per quarantine folder: two at once could both judge the
    same file by a state the other is changing."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = try_lock(os.path.join(folder, ".lock"))
    if fd is None:
        raise QuarantineBusyError(f"another lookalike apply or undo is using {folder}; "
                                  "wait for it to finish")
    try:
        yield
    finally:
        os.close(fd)


class Journal:
    """Append-only, fsynced JSON Lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        # surrogateescape: a name that is not valid UTF-8 is written as its raw bytes.
        self._fh = open(path, "a", encoding="utf-8", errors="surrogateescape")
        if created:
            fsync_dir(path.parent)

    def write(self, event: dict) -> None:
        self._fh.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Step:
    """One step of a run as its journal tells it."""

    number: int
    intent: dict
    done: bool = False
    undone: bool = False
    result: dict = field(default_factory=dict)


def read_steps(path: Path) -> tuple[dict, list[Step]]:
    """The run's header and its steps in order. A last line cut short by a crash is ignored:
    its step was never begun (the intent is written before anything is touched)."""
    header: dict = {}
    steps: dict[int, Step] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind, number = event.get("event"), event.get("step")
            if kind == "run":
                header = event
            elif kind == "finished":
                header["finished"] = event.get("finished")
            elif kind == "intent":
                steps[number] = Step(number, event)
            elif kind == "done" and number in steps:
                steps[number].done = True
                steps[number].result = event
            elif kind == "undone" and number in steps:
                steps[number].undone = True
    return header, [steps[n] for n in sorted(steps)]


def last_event(path: Path, tail_bytes: int = 4096) -> str | None:
    """The kind of the journal's last whole event (read from its end only), or None."""
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - tail_bytes))
        lines = fh.read().splitlines()
    for line in reversed(lines):
        try:
            return json.loads(line).get("event")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue  # a line cut by a crash, or the first line cut by the seek
    return None
