"""Where an index is: the default place for a folder, the search upward for one (stopping at
ceilings, as git does), and the places an index must never be created."""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

from ..errors import IndexError_, IndexNotFoundError
from ..settings import setting

INDEX_DIR = ".lookalike"
INDEX_NAME = "index.db"


def default_index_path(first_root: str | os.PathLike) -> Path:
    return Path(first_root) / INDEX_DIR / INDEX_NAME


def find_index(start: str | os.PathLike = ".") -> Path:
    """The index of the folder `start` or of its nearest parent that has one.

    Like git's discovery, the search stops at a ceiling: the user's home folder (searched, not
    passed), a change of file system, any folder in LOOKALIKE_CEILING_DIRECTORIES (separated
    by os.pathsep; searched, not passed), and it never reads an index at the root "/".
    """
    env = setting("LOOKALIKE_INDEX")
    if env:
        return Path(env)
    here = Path(start).resolve()
    for folder in search_folders(here):
        candidate = folder / INDEX_DIR / INDEX_NAME
        if candidate.exists():
            return candidate
    message = f"no index found in {here} or its parents"
    near = nearby_indexes(here)
    if near:
        listed = ", ".join(str(p) for p in near)
        raise IndexNotFoundError(f"{message}; below it: {listed}. Give --index with one of "
                                 "them, or run the command in its folder")
    raise IndexNotFoundError(f"{message}; run 'lookalike scan FOLDER' first or give "
                             "--index PATH")


# nearby_indexes reads at most this many folder entries in all (a hint must stay instant,
# even when run from a folder holding a million files) and looks this many levels down.
NEARBY_ENTRIES = 2_000
NEARBY_DEPTH = 2


def nearby_indexes(here: Path, most: int = 3) -> list[Path]:
    """Up to `most` indexes in the folders below `here` (two levels down, hidden folders
    left out), for the hint of a command run one folder too high."""
    found: list[Path] = []
    budget = NEARBY_ENTRIES
    level = [here]
    for _ in range(NEARBY_DEPTH):
        below: list[Path] = []
        for folder in level:
            try:
                with os.scandir(folder) as scanned:
                    entries = sorted(islice(scanned, max(budget, 0)), key=lambda e: e.name)
                budget -= len(entries)
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                        continue
                    candidate = Path(entry.path) / INDEX_DIR / INDEX_NAME
                    if candidate.is_file():
                        found.append(candidate)
                        if len(found) >= most:
                            return found
                    below.append(Path(entry.path))
            except OSError:
                continue
        level = below
    return found


def search_folders(here: Path) -> list[Path]:
    """`here` and the parents find_index may look in, nearest first."""
    ceilings = {Path(c).resolve() for c in
                setting("LOOKALIKE_CEILING_DIRECTORIES").split(os.pathsep) if c}
    ceilings.add(Path.home().resolve())
    try:
        device = here.stat().st_dev
    except OSError:
        device = None
    folders = []
    for folder in (here, *here.parents):
        if folder == Path(folder.anchor):
            break  # never the root: a stray index there would answer for the whole machine
        try:
            if device is not None and folder.stat().st_dev != device:
                break  # another file system (a mount point's parent)
        except OSError:
            break
        folders.append(folder)
        if folder in ceilings:
            break
    return folders


def check_index_place(path: Path) -> None:
    """Refuse to create an index in a file system's root folder (a scan given "/" by mistake
    would otherwise leave an index that every later search finds)."""
    folder = path.absolute().parent
    if folder.name == INDEX_DIR:
        folder = folder.parent
    if folder == Path(folder.anchor):
        raise IndexError_(f"refusing to create an index in the root folder {folder}: scan a "
                          "folder below it, or give --index PATH elsewhere")
