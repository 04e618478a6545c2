"""How each file of a duplicate group matched: its strongest link to another member, from
the same search that made the groups (for the HTML report and the web UI)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..index.store import Index
from ..methods import dihedral
from ..types import Group
from ..methods.registry import get_spec
from .dupes import EMBED, ContentPairs, evidence_rank, groups_of, searched
from .embed import similarity_of
from .options import SearchOptions, resolve


@dataclass(frozen=True)
class Evidence:
    """How one file of a group matched: its strongest link to another member."""

    method: str
    distance: int
    other: str  # the member it matched
    transform: str = "identity"
    # The flip or turn that turns the group's first file into this one, composed along the
    # strongest links from it: `transform` alone is relative to `other`, a different member
    # for each file, and those links need not reach the first file.
    from_first: str = "identity"

    @property
    def score(self) -> float:
        """1.0 for identical, lower for less alike, as Match.score (dupes.matches_of)."""
        if self.method in ("bytes", "pixels"):
            return 1.0
        if self.method == EMBED:
            return similarity_of(self.distance)
        return 1.0 - self.distance / get_spec(self.method).bits


def groups_with_evidence(index: Index, method: str = "auto",
                         where: Mapping[str, str] | None = None, *,
                         options: SearchOptions | None = None, runner: str = "local",
                         ray_address: str | None = None
                         ) -> tuple[list[Group], dict[str, Evidence]]:
    """find_groups (decisions respected; settings as keywords or `options`; runner and
    ray_address as in find_pairs) and, per grouped file, its strongest link inside its
    group, from one search."""
    opts = resolve(options, method=method, where=where)
    files, ids, parts = searched(index, opts, runner, ray_address)
    groups = groups_of(files, ids, parts, opts.linkage)
    return groups, evidence_of(groups, files, ids, parts)


def evidence_of(groups: Sequence[Group], files: dict, ids: np.ndarray,
                parts: Sequence[ContentPairs]) -> dict[str, Evidence]:
    """path -> its best pair (by evidence rank, then distance) with another member of its
    group. The transform is the one that turns that member into this file."""
    row_of = {f.path: int(row) for row, cid in enumerate(ids.tolist())
              for f in files[cid]}
    group_of = {row_of[f.path]: number_ for number_, g in enumerate(groups)
                for f in g.files if f.path in row_of}
    best: dict[int, tuple[int, int, str, int, int]] = {}  # row -> (rank, d, method, other, v)
    # group number -> its links: (a, b), a < b -> (rank, d, v)
    links: dict[int, dict[tuple[int, int], tuple[int, int, int]]] = {}
    members = np.fromiter(group_of, dtype=np.int64, count=len(group_of))
    for part in parts:
        inside = np.isin(part.a, members) & np.isin(part.b, members)
        for a, b, d, v in zip(part.a[inside].tolist(), part.b[inside].tolist(),
                              part.distance[inside].tolist(), part.variant[inside].tolist()):
            if group_of[a] != group_of[b]:
                continue
            key, turn = ((a, b), v) if a < b else ((b, a), dihedral.INVERSE[v])
            own = links.setdefault(group_of[a], {})
            if key not in own or (evidence_rank(part.method), d) < own[key][:2]:
                own[key] = (evidence_rank(part.method), int(d), int(turn))
            # v turns a into b: b's card shows v, a's card the inverse.
            for here, other, turn in ((b, a, v), (a, b, dihedral.INVERSE[v])):
                link = (evidence_rank(part.method), int(d), part.method, other, int(turn))
                if here not in best or link < best[here]:
                    best[here] = link
    out: dict[str, Evidence] = {}
    for number, g in enumerate(groups):
        turned = from_first([row_of[f.path] for f in g.files if f.path in row_of],
                            links.get(number, {}))
        for f in g.files:
            row = row_of.get(f.path)
            twins = [] if row is None else \
                [t.path for t in files[int(ids[row])] if t.path != f.path]
            first = dihedral.NAMES[turned.get(row, 0)]
            if twins:  # a byte copy: the strongest evidence there is
                out[f.path] = Evidence("bytes", 0, twins[0], from_first=first)
            elif row in best:
                _, d, method, other, v = best[row]
                out[f.path] = Evidence(method, d, min(t.path for t in files[int(ids[other])]),
                                       dihedral.NAMES[v], first)
    return out


def from_first(rows: Sequence[int], links: Mapping[tuple[int, int], tuple[int, int, int]]
               ) -> dict[int, int]:
    """row -> the variant that turns rows[0] into it, along a spanning tree of the group grown
    from rows[0] by the strongest links first (`links`: (a, b), a < b -> (rank, distance, the
    variant that turns a into b)). Rows no link reaches are left out."""
    if not rows:
        return {}
    members = set(rows)
    near: dict[int, list[tuple[int, int, int, int]]] = {row: [] for row in members}
    for (a, b), (rank, d, v) in links.items():
        if a in members and b in members:
            near[a].append((rank, d, b, v))
            near[b].append((rank, d, a, dihedral.INVERSE[v]))
    out: dict[int, int] = {}
    frontier = [(0, 0, rows[0], 0)]  # (rank, distance, row, variant from rows[0])
    while frontier:
        _, _, row, turn = heapq.heappop(frontier)
        if row in out:
            continue
        out[row] = turn
        for rank, d, other, v in near[row]:
            if other not in out:
                heapq.heappush(frontier, (rank, d, other, dihedral.compose(turn, v)))
    return out
