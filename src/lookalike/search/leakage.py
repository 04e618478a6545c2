"""Leakage between the sets of an ML dataset: duplicate pairs whose files lie in different
sets (train/test/val), with a summary of how much of each later set is already in an
earlier one.

All sets live in one index, so one search finds every pair; the sets are told apart by the
folder (root) each file lies under. A file under no root is ignored; where roots nest, the
deepest root wins (a test/ folder inside data/ is the test set, not part of data).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import LookalikeError
from ..index.paths import display_path
from ..index.store import Index
from ..methods import dihedral
from ..types import Group, Match
from .dupes import groups_of, matches_of, searched
from .options import DEFAULT_LINKAGE, SearchOptions, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrossPair:
    """A duplicate pair across two sets; set_a comes before set_b in the order the sets
    were given (train before test), so `path_b` is the file that leaks from `set_a`."""

    set_a: str
    path_a: str
    set_b: str
    path_b: str
    method: str
    distance: int
    score: float
    transform: str = "identity"

    def to_dict(self) -> dict:
        return {"set_a": self.set_a, "path_a": display_path(self.path_a), "set_b": self.set_b,
                "path_b": display_path(self.path_b), "method": self.method,
                "distance": self.distance, "score": round(self.score, 4),
                "transform": self.transform}


@dataclass(frozen=True)
class SetLeak:
    """How many files of the later set have at least one duplicate in the earlier set."""

    earlier: str
    later: str
    leaked: int
    later_files: int

    @property
    def fraction(self) -> float:
        return self.leaked / self.later_files if self.later_files else 0.0

    def to_dict(self) -> dict:
        return {"earlier": self.earlier, "later": self.later, "leaked": self.leaked,
                "later_files": self.later_files, "fraction": round(self.fraction, 6)}


@dataclass(frozen=True)
class LeakGroup:
    """A duplicate group whose files lie in two or more sets: (set, path) per file."""

    files: tuple[tuple[str, str], ...]
    method: str

    @property
    def sets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for s, _ in self.files))

    def to_dict(self) -> dict:
        return {"sets": list(self.sets), "method": self.method,
                "files": [{"set": s, "path": display_path(f)} for s, f in self.files]}


@dataclass(frozen=True)
class Leakage:
    roots: Mapping[str, str]  # set name -> absolute root
    files: Mapping[str, int]  # set name -> its live files in the index
    pairs: list[CrossPair]
    summary: list[SetLeak]  # one per (earlier, later) pair of sets, in the sets' order
    groups: list[LeakGroup]

    @property
    def leaked(self) -> bool:
        return bool(self.pairs)

    def to_dict(self) -> dict:
        """As `leakage --format json` prints it."""
        return {"sets": {name: {"root": display_path(root), "files": self.files[name]}
                         for name, root in self.roots.items()},
                "summary": [s.to_dict() for s in self.summary],
                "pairs": [p.to_dict() for p in self.pairs],
                "groups": [g.to_dict() for g in self.groups]}


def normalise_sets(sets: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """Set name -> absolute root, checked: at least two sets, distinct names and roots."""
    if len(sets) < 2:
        raise LookalikeError("leakage needs at least two sets (for example train and test)")
    roots = {str(name): os.path.abspath(os.fspath(root)) for name, root in sets.items()}
    if len(set(roots.values())) < len(roots):
        raise LookalikeError("two sets have the same folder: "
                             + ", ".join(f"{n}={r}" for n, r in roots.items()))
    return roots


def set_of(path: str, roots: Mapping[str, str]) -> str | None:
    """The set whose root holds `path` (the deepest root where roots nest), or None."""
    best, depth = None, -1
    for name, root in roots.items():
        inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
        if inside and len(root) > depth:
            best, depth = name, len(root)
    return best


def outer_roots(roots: Sequence[str]) -> list[str]:
    """The roots not inside another one: what a scan needs to walk (a nested root is walked
    with its parent, and walking it again would see its files twice)."""
    return [r for r in roots
            if not any(o != r and r.startswith(o.rstrip(os.sep) + os.sep) for o in roots)]


def cross_pairs(index: Index, sets: Mapping[str, str | os.PathLike], method: str = "auto",
                max_distance: int | None = None, calibrated: bool = True,
                verify: bool = False, similarity: float | None = None,
                model: str | None = None, where: Mapping[str, str] | None = None,
                linkage: str = DEFAULT_LINKAGE, *, options: SearchOptions | None = None
                ) -> Leakage:
    """Duplicate pairs (find_pairs, the same settings: keywords or `options`) whose two files
    lie in different sets, the per-set-pair summary, and the groups (find_groups) spanning
    sets."""
    opts = resolve(options, method=method, max_distance=max_distance, calibrated=calibrated,
                   verify=verify, similarity=similarity, model=model, where=where,
                   linkage=linkage)
    roots = normalise_sets(sets)
    files, ids, parts = searched(index, opts)
    member = {f.path: set_of(f.path, roots) for infos in files.values() for f in infos}
    counts = {name: 0 for name in roots}
    for name in member.values():
        if name is not None:
            counts[name] += 1
    order = {name: k for k, name in enumerate(roots)}
    pairs = [p for m in matches_of(files, ids, parts)
             if (p := _crossing(m, member, order)) is not None]
    linked = groups_of(files, ids, parts, opts.linkage)
    groups = [g for g in (_leak_group(g, member) for g in linked) if g is not None]
    log.info("leakage: %d crossing pairs, %d groups across sets", len(pairs), len(groups))
    return Leakage(roots, counts, pairs, _summary(pairs, list(roots), counts), groups)


def _crossing(m: Match, member: Mapping[str, str | None],
              order: Mapping[str, int]) -> CrossPair | None:
    a, b = member.get(m.a), member.get(m.b)
    if a is None or b is None or a == b:
        return None
    if order[a] > order[b]:  # the earlier set first; a flip or turn reads the same backwards
        return CrossPair(b, m.b, a, m.a, m.method, m.distance, m.score, _inverse(m.transform))
    return CrossPair(a, m.a, b, m.b, m.method, m.distance, m.score, m.transform)


def _inverse(transform: str) -> str:
    return dihedral.NAMES[dihedral.INVERSE[dihedral.NAMES.index(transform)]]


def _summary(pairs: list[CrossPair], names: list[str],
             counts: Mapping[str, int]) -> list[SetLeak]:
    leaked: dict[tuple[str, str], set[str]] = {}
    for p in pairs:
        leaked.setdefault((p.set_a, p.set_b), set()).add(p.path_b)
    return [SetLeak(earlier, later, len(leaked.get((earlier, later), ())), counts[later])
            for i, earlier in enumerate(names) for later in names[i + 1:]]


def _leak_group(group: Group, member: Mapping[str, str | None]) -> LeakGroup | None:
    files = tuple((s, f.path) for f in group.files if (s := member.get(f.path)) is not None)
    if len({s for s, _ in files}) < 2:
        return None
    return LeakGroup(files, group.method)
