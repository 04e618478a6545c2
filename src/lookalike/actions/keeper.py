"""Which file of a duplicate group is kept, and why, in words a person reads where they review
(the `dupes` table, the HTML report, the web UI) and the same choice `plan` makes.

The order: files in a reference folder, then files a person marked keep, then files not
marked quarantine; among those, files under a preferred folder first, then the keep rules in
order (largest resolution, largest file, oldest by default), then the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from ..errors import PlanError
from ..index.store import Index
from ..types import Group


@dataclass(frozen=True)
class Candidate:
    """One file of a group, as the index saw it."""

    path: str
    width: int
    height: int
    size: int
    mtime_ns: int
    hash: str  # xxh3-128 of the bytes, hex (contents.hash)
    format: str = ""  # JPEG, PNG, ... ("" when unknown)


# Each rule is a sort key: smaller sorts first, the first file is kept.
KEEP_RULES: dict[str, Callable[[Candidate], object]] = {
    "largest-resolution": lambda c: -(c.width * c.height),
    "largest-file": lambda c: -c.size,
    "oldest": lambda c: c.mtime_ns,
    "newest": lambda c: -c.mtime_ns,
    "shortest-path": lambda c: len(c.path),
}
# The oldest of copies of one resolution: a copy is made after its original (a download, a
# re-save, an edit), while "largest file" picks whatever was re-encoded biggest: a mirrored
# PNG of a JPEG, a brightened or blurred re-save. On the make-run sample the original is
# kept in 13 of 13 groups, against 7 of 13 with largest-file before oldest.
DEFAULT_RULES = ("largest-resolution", "oldest", "largest-file")
RULE_WORDS = {"largest-resolution": "largest resolution", "largest-file": "largest file",
              "oldest": "oldest file", "newest": "newest file",
              "shortest-path": "shortest path"}

# Formats that keep every pixel rank above lossy ones, for the "better format" highlight only
# (no keep rule uses it: a PNG made from a JPEG is bigger, not better).
LOSSLESS = {"PNG", "TIFF", "BMP", "PPM", "PGM", "PBM", "QOI"}


@dataclass(frozen=True)
class Keeper:
    """The file a group keeps, why, and which members are best on each value."""

    path: str
    reason: str  # "largest resolution", "in a reference folder", "marked keep", ...
    # value -> the members best on it (all of them when they tie): resolution, bytes,
    # format (lossless over lossy), date (oldest), path (shortest)
    best: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason, "best": self.best}


def parse_rules(text: str | Sequence[str]) -> list[str]:
    """'largest-resolution,oldest' -> its rule names, checked."""
    names = [r.strip() for r in (text.split(",") if isinstance(text, str) else text)
             if r.strip()]
    unknown = [r for r in names if r not in KEEP_RULES]
    if unknown:
        raise PlanError(f"unknown keep rule(s) {', '.join(unknown)}; known: "
                        f"{', '.join(KEEP_RULES)}")
    return names or list(DEFAULT_RULES)


def is_under(path: str, folders: Sequence[str]) -> bool:
    """Whether `path` lies in one of `folders` (absolute, symlinks of the folders resolved)."""
    if not folders:
        return False  # realpath costs a system call a component; most groups have no folders
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def choose(members: Sequence[Candidate], rules: Sequence[str] = DEFAULT_RULES,
           prefer: Sequence[str] = (), refs: Sequence[str] = (),
           marks: Mapping[str, str] | None = None) -> Keeper:
    """The kept member of one group and the reason, by the order in this module's doc."""
    marks = marks or {}
    rules = parse_rules(list(rules))
    in_ref = [c for c in members if is_under(c.path, refs)]
    marked_keep = [c for c in members if marks.get(c.path) == "keep"]
    unwanted = {c.path for c in members if marks.get(c.path) == "quarantine"}
    not_unwanted = [c for c in members if c.path not in unwanted]
    pool = in_ref or marked_keep or not_unwanted or list(members)

    def key(c: Candidate) -> tuple:
        return (not is_under(c.path, prefer), *(KEEP_RULES[r](c) for r in rules), c.path)

    ranked = sorted(pool, key=key)
    keep = ranked[0]
    if in_ref:
        prefix = "in a reference folder"
    elif marked_keep:
        prefix = "marked keep"
    elif len(pool) == 1 < len(members):
        prefix = "the others are marked quarantine"
    else:
        prefix = ""
    if len(ranked) > 1:
        why = _deciding(key(keep), key(ranked[1]), rules)
        reason = f"{prefix}; {why}" if prefix else why
    else:
        reason = prefix or "the only candidate"
    return Keeper(keep.path, reason, best_values(members))


def _deciding(first: tuple, second: tuple, rules: list[str]) -> str:
    """The first sort key on which the kept file beats the runner-up, in words."""
    if first[0] != second[0]:
        return "in a preferred folder"
    for rule, a, b in zip(rules, first[1:], second[1:]):
        if a != b:
            return RULE_WORDS[rule]
    return "first by path (the rules tie)"


def best_values(members: Sequence[Candidate]) -> dict[str, list[str]]:
    """For each value a person compares, the members best on it; a value on which all
    members tie names nobody."""
    values: dict[str, Callable[[Candidate], object]] = {
        "resolution": lambda c: -(c.width * c.height),
        "bytes": lambda c: -c.size,
        "format": lambda c: 0 if c.format.upper() in LOSSLESS else 1,
        "date": lambda c: c.mtime_ns,
        "path": lambda c: len(c.path),
    }
    best = {}
    for name, value in values.items():
        scores = [value(c) for c in members]
        top = min(scores)
        if any(s != top for s in scores):
            best[name] = [c.path for c, s in zip(members, scores) if s == top]
    return best


def marks_of(index: Index, paths: Iterable[str]) -> dict[str, str]:
    """path -> "keep" or "quarantine", for the files among `paths` a person marked (the web
    UI's triage) whose bytes are still those they marked."""
    ids = index.live_file_ids(paths)
    by_id = index.marks(ids.values())
    return {path: by_id[i].mark for path, i in ids.items() if i in by_id}


def candidates(index: Index, groups: Sequence[Group]) -> list[list[Candidate]]:
    """Each group's live members as keep candidates (a file gone since the scan drops out)."""
    states = index.file_states([f.path for g in groups for f in g.files])
    return [[Candidate(f.path, f.width, f.height, states[f.path][0], states[f.path][1],
                       states[f.path][3].hex(), states[f.path][4])
             for f in g.files if f.path in states] for g in groups]


def keepers(index: Index, groups: Sequence[Group], rules: Sequence[str] = DEFAULT_RULES,
            prefer_path: Sequence[str] = (), reference: Sequence[str] = (),
            use_marks: bool = True) -> list[Keeper | None]:
    """The keeper of each group as `plan` with the same arguments would choose it (None for a
    group with fewer than two live files), for the views where a person reviews."""
    prefer = [os.path.abspath(p) for p in prefer_path]
    refs = [os.path.abspath(p) for p in reference]
    marks = marks_of(index, [f.path for g in groups for f in g.files]) if use_marks else {}
    return [choose(members, rules, prefer, refs, marks) if len(members) >= 2 else None
            for members in candidates(index, groups)]
