"""What the HTML report shows, as plain values for its templates (templates/): the summary
tables' rows and each group's card (the keeper and why, the best value of each column, the
match in words, links to the file and its folder). No HTML is made here: the templates
escape every value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Mapping, Sequence

from ..index.store import display_path
from ..types import FileInfo, Group
from .analysis import DatasetStats, Distribution
from .words import evidence_words, partial_words, percent

if TYPE_CHECKING:
    from ..actions.keeper import Keeper
    from ..search.evidence import Evidence

FAILURES_SHOWN = 1000  # rows of the table of unreadable files

# The evidence filter's kinds, strongest first: a group is filed under its weakest evidence
# (Group.method); every hash method is "hash".
EVIDENCE = {"bytes": "same bytes", "pixels": "same pixels", "hash": "perceptual hash",
            "embedding": "embedding", "local": "local features"}
# Browsers keep a page opened from a file from following file: links (or only some of them).
LINK_NOTE = "a file: link: a browser may block it from this page (then copy the path)"


def number(value: float) -> str:
    return f"{value:,.0f}"


def nbytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def numeric(value: object) -> bool:
    """Whether a table cell holds a number (right-aligned) rather than text."""
    text = str(value)
    return text[:1].isdigit() or text[:1] == "-" and text[1:2].isdigit()


@dataclass(frozen=True)
class Table:
    rows: list[tuple]
    header: tuple | None = None


@dataclass(frozen=True)
class Summary:
    overview: Table
    distributions: Table | None
    by: str | None
    categories: Table | None
    failures: Table | None
    failures_more: int
    downloads: Table | None
    downloads_more: int


def summary(result: DatasetStats) -> Summary:
    """The numbers: overview, distributions, categories, unreadable files, failed downloads."""
    d = result.duplicates
    overview = [("files", number(result.files)), ("readable images", number(result.images)),
                ("distinct by bytes", number(result.contents)),
                ("total size", nbytes(result.total_bytes)),
                ("could not be read", number(result.status.get("failed", 0))),
                ("not images", number(result.status.get("other", 0)))]
    if d is not None:
        overview += [("duplicate groups", number(d.groups)),
                     ("files in groups", number(d.files_in_groups)),
                     ("redundant copies", f"{number(d.redundant)} ({100 * d.rate:.1f}%)"),
                     ("space they take", nbytes(d.redundant_bytes))]
    dists = [(name, *_marks(dist)) for name, dist in (
        ("width", result.width), ("height", result.height), ("aspect", result.aspect),
        ("bytes", result.file_bytes)) if dist is not None]
    categories = None
    if result.by and result.categories:
        by_cat = d.by_category if d is not None else {}
        categories = Table([(value, number(n), *((number(by_cat[value].in_groups),
                                                  number(by_cat[value].redundant),
                                                  f"{100 * by_cat[value].rate:.1f}%")
                                                 if value in by_cat else ("", "", "")))
                            for value, n in result.categories.items()],
                           (result.by, "files", "in groups", "redundant", "rate"))
    failed = result.failures[:FAILURES_SHOWN]
    downloads = result.downloads.failures if result.downloads is not None else []
    return Summary(
        Table(overview),
        Table(dists, ("", "min", "p5", "p25", "median", "p75", "p95", "max", "mean"))
        if dists else None,
        result.by,
        categories,
        Table([(display_path(f.path), f.stage, f.reason, number(f.bytes)) for f in failed],
              ("path", "stage", "reason", "bytes")) if failed else None,
        len(result.failures) - len(failed),
        Table([(f.url, f.reason) for f in downloads[:FAILURES_SHOWN]], ("URL", "reason"))
        if downloads else None,
        max(0, len(downloads) - FAILURES_SHOWN))


def _marks(dist: Distribution) -> list[str]:
    values = [dist.min, *dist.percentiles.values(), dist.max, dist.mean]
    return [f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" for v in values]


@dataclass(frozen=True)
class FileState:
    """What the scan saw of a file besides FileInfo (Index.file_states)."""

    mtime_ns: int = 0
    format: str = ""


@dataclass(frozen=True)
class FileCard:
    name: str
    path: str  # printable
    dimensions: str
    size: str
    format: str
    date: str
    thumb: str | None  # key into the page's thumbnails; None: a placeholder
    kept: bool
    best: frozenset[str]  # the values this file is best on: resolution, bytes, format, ...
    how: str  # the match in words
    how_detail: str  # the search's own terms (tooltip)
    other: str  # printable path of the file it matched
    transform: str
    score: float | None
    file_url: str | None
    folder_url: str | None


@dataclass(frozen=True)
class GroupCard:
    number: int  # 1-based, largest group first
    files: list[FileCard]
    evidence: str  # a key of EVIDENCE
    evidence_words: str
    detail: str  # the search's own terms
    similarity: float  # the weakest member's score, 0..1
    similarity_words: str
    wasted: int  # bytes of the files not kept
    wasted_words: str
    reason: str  # why the keeper is kept ("" when none)
    fully_linked: bool
    linkage: str


def evidence_kind(method: str) -> str:
    if method in ("bytes", "pixels", "local"):
        return method
    return "embedding" if method == "embed" else "hash"


def group_cards(groups: Sequence[Group], evidence: Mapping[str, "Evidence"],
                keepers: Sequence["Keeper | None"], states: Mapping[str, FileState],
                thumb_keys: Mapping[str, str]) -> list[GroupCard]:
    """A card per group, numbered from 1 in the given order."""
    return [_group_card(number, g, evidence, keeper, states, thumb_keys)
            for number, (g, keeper) in enumerate(zip(groups, keepers), 1)]


def _group_card(number: int, group: Group, evidence: Mapping[str, "Evidence"],
                keeper: "Keeper | None", states: Mapping[str, FileState],
                thumb_keys: Mapping[str, str]) -> GroupCard:
    kept = keeper.path if keeper is not None else None
    best: dict[str, set[str]] = {}
    for value, paths in (keeper.best if keeper is not None else {}).items():
        for path in paths:
            best.setdefault(path, set()).add(value)
    files = [_file_card(f, evidence.get(f.path), f.path == kept, frozenset(best.get(f.path, ())),
                        states, thumb_keys.get(f.path)) for f in group.files]
    scores = [c.score for c in files if c.score is not None]
    similarity = min(scores) if scores else 1.0
    if kept is not None:
        wasted = sum(f.bytes for f in group.files if f.path != kept)
    else:  # no live keeper (files gone since the scan): all but the largest
        wasted = sum(f.bytes for f in group.files) - max((f.bytes for f in group.files),
                                                         default=0)
    detail = group.method
    if group.method not in ("bytes", "pixels"):
        detail += f", max distance {group.max_distance}, diameter {group.diameter}"
    kind = evidence_kind(group.method)
    words = EVIDENCE[kind] + ("" if kind in ("bytes", "pixels") else f" ({group.method})")
    return GroupCard(number, files, kind, words, detail, similarity, percent(similarity),
                     wasted, nbytes(wasted), keeper.reason if keeper is not None else "",
                     group.fully_linked, group.linkage)


def _file_card(info: FileInfo, ev: "Evidence | None", kept: bool, best: frozenset[str],
               states: Mapping[str, FileState], thumb: str | None) -> FileCard:
    path = display_path(info.path)
    state = states.get(info.path, FileState())
    other = display_path(ev.other) if ev is not None else ""
    how = detail = ""
    score = None
    if ev is not None:
        score = ev.score
        how = evidence_words(ev, (state.format, states.get(ev.other, FileState()).format))
        detail = f"{ev.method} d={ev.distance}" + \
            ("" if ev.transform == "identity" else f" {ev.transform}")
    date = datetime.fromtimestamp(state.mtime_ns / 1e9, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S") if state.mtime_ns else ""
    file_url, folder_url = file_urls(info.path)
    return FileCard(os.path.basename(path) or path, path, f"{info.width}×{info.height}",
                    nbytes(info.bytes), state.format, date, thumb, kept, best, how, detail,
                    other, ev.transform if ev is not None else "identity", score, file_url,
                    folder_url)


def file_urls(path: str) -> tuple[str | None, str | None]:
    """file: URLs of a file and its folder, every unsafe byte percent-encoded (undecodable
    bytes of a name included); none for a path that is not absolute (a URL, say)."""
    if os.name != "posix" or not os.path.isabs(path):
        return None, None
    pure = PurePosixPath(path)
    folder = pure.parent.as_uri()
    return pure.as_uri(), folder if folder.endswith("/") else folder + "/"


@dataclass(frozen=True)
class PartialCard:
    """A partial copy: `inner` appears inside `outer` (or they overlap), with `inner`'s frame
    drawn on `outer`'s thumbnail."""

    words: str
    detail: str  # the evidence in the search's terms (tooltip)
    inner_name: str
    inner_path: str
    inner_thumb: str | None
    outer_name: str
    outer_path: str
    outer_thumb: str | None
    box_style: str | None  # CSS placing the frame on outer's thumbnail, in percent


def partial_cards(pairs: Sequence, sizes: Mapping[str, tuple[int, int]],
                  thumb_keys: Mapping[str, str]) -> list[PartialCard]:
    """Cards of search/partial.py's PartialPair values (`sizes`: path -> width, height)."""
    out = []
    for pair in pairs:
        width, height = sizes.get(pair.outer, (0, 0))
        style, fraction = None, None
        if pair.box is not None and width > 0 and height > 0:
            x0, y0, x1, y1 = (max(0.0, min(1.0, v / side)) for v, side in
                              zip(pair.box, (width, height, width, height)))
            if x1 > x0 and y1 > y0:
                style = (f"left:{100 * x0:.2f}%;top:{100 * y0:.2f}%;"
                         f"width:{100 * (x1 - x0):.2f}%;height:{100 * (y1 - y0):.2f}%")
                fraction = x1 - x0
        inner, outer = display_path(pair.inner), display_path(pair.outer)
        out.append(PartialCard(partial_words(pair.relation, fraction), pair.describe(),
                               os.path.basename(inner), inner, thumb_keys.get(pair.inner),
                               os.path.basename(outer), outer, thumb_keys.get(pair.outer),
                               style))
    return out
