"""A train/val/test split in which no duplicate group spans two splits.

Whole groups (find_groups, the default cascade) and singletons are the units. They are
placed greedily, largest first, each into the split furthest below its target file count:
with units placed largest first, no split ends further from its target than about one unit,
and a seeded shuffle before the (stable) sort decides among units of one size, so the same
seed gives the same split and another seed another one.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import LookalikeError
from ..index.paths import display_path
from ..index.store import Index
from .dupes import find_groups
from .options import DEFAULT_LINKAGE, SearchOptions, resolve
from .leakage import set_of

log = logging.getLogger(__name__)

DEFAULT_NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "val", "test")}


@dataclass(frozen=True)
class Assigned:
    path: str
    split: str
    group: int  # the unit's number: files sharing it are duplicates and share a split
    root: str | None = None  # the given folder the file lies under

    def to_dict(self) -> dict:
        return {"path": display_path(self.path), "split": self.split, "group": self.group}


@dataclass(frozen=True)
class Split:
    names: tuple[str, ...]
    ratios: tuple[float, ...]  # normalised to sum 1
    files: list[Assigned]  # sorted by path
    largest_group: int

    def counts(self) -> dict[str, int]:
        found = Counter(a.split for a in self.files)
        return {name: found.get(name, 0) for name in self.names}

    def targets(self) -> dict[str, float]:
        total = len(self.files)
        return {name: ratio * total for name, ratio in zip(self.names, self.ratios)}

    def to_dict(self) -> dict:
        """As `split --out FILE.json` writes it."""
        return {"splits": self.counts(), "ratios": dict(zip(self.names, self.ratios)),
                "files": [a.to_dict() for a in self.files]}


def split_names(count: int, names: Sequence[str] | None = None) -> tuple[str, ...]:
    if names:
        if len(names) != count or len(set(names)) != count:
            raise LookalikeError(f"{count} ratios need {count} distinct names, got "
                                 f"{', '.join(names)}")
        return tuple(names)
    if count not in DEFAULT_NAMES:
        raise LookalikeError(f"give names for {count} splits")
    return DEFAULT_NAMES[count]


def check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    if not ratios or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise LookalikeError(f"ratios must be non-negative with a positive sum, got {ratios}")
    total = float(sum(ratios))
    return tuple(float(r) / total for r in ratios)


def plan_split(index: Index, ratios: Sequence[float], roots: Sequence[str | os.PathLike] = (),
               names: Sequence[str] | None = None, seed: int = 0, method: str = "auto",
               linkage: str = DEFAULT_LINKAGE, where: Mapping[str, str] | None = None,
               stratify: str | None = None, *, options: SearchOptions | None = None
               ) -> Split:
    """Assign every live file (under `roots`, if given; with `where`, only files whose
    metadata match) to a split; duplicate groups (find_groups, settings as keywords or
    `options`) stay in one split. `stratify`: a metadata key whose values are split one by
    one, so each split holds every value in about the given ratios (a group goes with the
    value most of its files hold)."""
    opts = resolve(options, method=method, linkage=linkage, where=where)
    shares = check_ratios(ratios)
    chosen = split_names(len(shares), names)
    folders = {os.path.abspath(os.fspath(r)): os.path.abspath(os.fspath(r)) for r in roots}
    files = index.live_files(opts.where)
    paths = [f.path for infos in files.values() for f in infos]
    if folders:
        paths = [p for p in paths if set_of(p, folders) is not None]
    keep = set(paths)
    units: list[list[str]] = []
    seen: set[str] = set()
    for group in find_groups(index, options=opts):
        members = [f.path for f in group.files if f.path in keep]
        if members:
            units.append(members)
            seen.update(members)
    units += [[p] for p in sorted(keep - seen)]
    meta = index.file_meta() if stratify else {}
    strata: dict[str, list[list[str]]] = {}
    for unit in units:
        strata.setdefault(_stratum(unit, meta, stratify), []).append(unit)
    rng = np.random.default_rng(seed)
    assigned: list[Assigned] = []
    number = 0
    for key in sorted(strata):
        for unit, split in _place(strata[key], shares, rng):
            assigned += [Assigned(p, chosen[split], number, set_of(p, folders)) for p in unit]
            number += 1
    assigned.sort(key=lambda a: a.path)
    log.info("split: %d files in %d units, %d strata", len(assigned), number, len(strata))
    return Split(chosen, shares, assigned, max((len(u) for u in units), default=0))


def _stratum(unit: list[str], meta: Mapping[str, dict], key: str | None) -> str:
    if key is None:
        return ""
    values = Counter(str(meta.get(p, {}).get(key, "")) for p in unit)
    return min(values, key=lambda v: (-values[v], v))  # the commonest; ties by name


def _place(units: list[list[str]], shares: tuple[float, ...],
           rng: np.random.Generator) -> list[tuple[list[str], int]]:
    """(unit, split number) for each unit: largest first into the split with the largest
    deficit below its target (ties: the earlier split)."""
    order = rng.permutation(len(units))
    ranked = sorted((units[k] for k in order), key=len, reverse=True)  # stable: seed breaks ties
    total = sum(len(u) for u in units)
    targets = np.asarray(shares) * total
    counts = np.zeros(len(shares))
    placed = []
    for unit in ranked:
        split = int(np.argmax(targets - counts))
        counts[split] += len(unit)
        placed.append((unit, split))
    return placed


def materialise(split: Split, dest: str | os.PathLike, mode: str = "hardlink") -> int:
    """Write DEST/SPLIT/... with a link (or copy) of every file; the sources are only read.

    mode: "hardlink" (a copy where the file system cannot link, e.g. across devices),
    "symlink", or "copy". A file's place under its split is its path below the folder it was
    found under (with several folders, below a subfolder named after that folder). Anything
    under DEST/SPLIT that is not this plan's file is an error, never overwritten. Returns
    the files written."""
    if mode not in ("hardlink", "symlink", "copy"):
        raise LookalikeError(f"unknown mode {mode!r}: hardlink, symlink or copy")
    dest = Path(os.path.abspath(dest))
    roots = sorted({a.root for a in split.files if a.root is not None})
    if set_of(str(dest), {r: r for r in roots}) is not None:
        # The next scan of the dataset would index the links as duplicates of everything.
        raise LookalikeError(f"{dest} is inside a folder of the dataset; give one outside it")
    prefix = _root_prefixes(roots)
    planned = {dest / a.split / _relative(a, prefix): a.path for a in split.files}
    _check_destination(dest, split.names, planned)
    written = 0
    for target, source in planned.items():
        if os.path.lexists(target):
            continue  # the same file, from an earlier run of this same split
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(source, target, mode)
        written += 1
    return written


def _check_destination(dest: Path, names: Sequence[str], planned: Mapping[Path, str]) -> None:
    """Everything already under DEST/SPLIT must be this plan's own file at its place (a
    re-run), checked before anything is written: a file left from another split would put
    one picture in two splits."""
    for name in names:
        folder = dest / name
        if not folder.exists():
            continue
        for here, _, entries in os.walk(folder):
            for entry in entries:
                target = Path(here, entry)
                source = planned.get(target)
                if source is None or not (os.path.exists(target)
                                          and os.path.samefile(target, source)):
                    raise LookalikeError(f"{target} exists and is not this split's file; "
                                         "give an empty folder")


def _write(source: str, target: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(source, target)
        return
    if mode == "hardlink":
        try:
            os.link(source, target)
            return
        except OSError:  # another device, or a file system without hard links
            pass
    shutil.copy2(source, target)


def _root_prefixes(roots: list[str]) -> dict[str, str]:
    """A short, distinct subfolder name per root (its base name, numbered where two share
    one); none where there is a single root."""
    if len(roots) <= 1:
        return {r: "" for r in roots}
    names: dict[str, str] = {}
    used: Counter = Counter()
    for root in roots:
        base = os.path.basename(root.rstrip(os.sep)) or "root"
        used[base] += 1
        names[root] = base if used[base] == 1 else f"{base}-{used[base]}"
    return names


def _relative(a: Assigned, prefix: Mapping[str, str]) -> Path:
    if a.root is None:  # no folders given: the whole path below the file system root
        return Path(a.path.lstrip(os.sep))
    rel = os.path.relpath(a.path, a.root)
    return Path(prefix[a.root], rel) if prefix[a.root] else Path(rel)
