"""`lookalike report`: one self-contained HTML file (no network, no CDN) with the dataset
analysis as plots and the duplicate groups as a gallery of thumbnails to act from: the file
`plan` would keep and why, the best value of each column, matches in words, filters by
evidence and similarity, sort by group size or wasted space, click to enlarge.

Made from Jinja2 templates (templates/, autoescaped). Bounded by design: thumbnails are
embedded (once per distinct content, as data URIs in one JSON block) only for the
`max_groups` largest groups, and a little JavaScript shows one page of groups at a time,
setting the images of that page only. What was left out is said on the page.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import jinja2
from markupsafe import Markup

from ..actions.keeper import DEFAULT_RULES, Keeper, RULE_WORDS, keepers, parse_rules
from ..index.store import Index, display_path
from ..methods.registry import get_spec
from ..search.partial import PartialPair, containment_pairs
from ..types import Group
from .analysis import DatasetStats, has_signatures, opened_index, stats as analyse
from .health import HealthReport, health as check_health
from .health_page import health_section
from .page import (EVIDENCE, LINK_NOTE, FileState, PartialCard, group_cards, number,
                   numeric, partial_cards, summary)
from .plots import plots
from .thumbs import THUMB_SIZE, ThumbCache, ThumbStats
from ..search.evidence import groups_with_evidence

if TYPE_CHECKING:
    from ..search.evidence import Evidence
    from ..search.options import SearchOptions

log = logging.getLogger(__name__)

MAX_GROUPS = 1000  # groups in the gallery; the rest are counted, not shown
PAGE_SIZE = 50  # groups a page
MAX_PARTIAL = 100  # partial copies (crops, pictures inside others) shown, containments first


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    groups_total: int
    groups_shown: int
    files_shown: int
    thumbs: ThumbStats
    stats: DatasetStats
    seconds: float
    partial_shown: int = 0


def write_report(index: Index | str | os.PathLike, out: str | os.PathLike, *,
                 max_groups: int = MAX_GROUPS, page_size: int = PAGE_SIZE,
                 by: str | None = None, thumb_size: int = THUMB_SIZE,
                 title: str = "lookalike report",
                 options: SearchOptions | None = None,
                 keep: Sequence[str] = DEFAULT_RULES, prefer_path: Sequence[str] = (),
                 reference: Sequence[str] = (), use_marks: bool = True,
                 partial: bool | None = None) -> ReportResult:
    """Write the HTML report of `index` (an open Index or its path) to `out`.

    Groups come from find_groups with `options` (the default cascade when None); each shows
    the file `plan` with the same `keep` rules, `prefer_path`, `reference` folders and marks
    (`use_marks`) would keep. With `partial` (None: when the index holds local features),
    the crops and pictures inside others (dupes --partial) are shown with their frame drawn.
    Thumbnails are cached in the index's folder (thumbs/), so a second report reuses them.
    """
    started = time.perf_counter()
    out = Path(out)
    rules = parse_rules(list(keep))  # a wrong rule fails before the search
    with opened_index(index) as idx, idx.snapshot():  # groups and numbers of one state
        groups, evidence = _groups_with_evidence(idx, options)
        result = analyse(idx, by=by, groups=groups, duplicates=groups is not None)
        checked = check_health(idx, by=by)
        groups = groups or []
        shown = groups[:max(0, max_groups)]
        chosen = keepers(idx, shown, rules, prefer_path, reference, use_marks)
        pairs = _partial_pairs(idx, partial)
        pictured = {p.inner for p in pairs} | {p.outer for p in pairs}
        sizes = {f.path: (f.width, f.height) for files in idx.live_files().values()
                 for f in files if f.path in pictured} if pairs else {}
        cache = ThumbCache.for_index(idx, thumb_size)
        states = idx.file_states(list(dict.fromkeys(
            [f.path for g in shown for f in g.files] + sorted(pictured))))
    hashes = {p: state[3] for p, state in states.items()}
    thumbs = cache.many([(p, h) for p, h in hashes.items()])  # files only: no read transaction
    uris = {h.hex(): f"data:{cache.mime};base64,{base64.b64encode(data).decode('ascii')}"
            for h, data in thumbs.items() if data is not None}
    keys = {p: h.hex() for p, h in hashes.items() if thumbs.get(h) is not None}
    document = render_html(result, groups, shown, evidence, keys, uris, page_size, title,
                           cache.stats, checked, chosen,
                           {p: FileState(st[1], st[4]) for p, st in states.items()}, rules,
                           partial_cards(pairs, sizes, keys))
    size = _write_atomic(out, document.encode("utf-8"))
    log.info("report %s: %d bytes, %d of %d groups", out, size, len(shown), len(groups))
    return ReportResult(out, size, len(groups), len(shown), sum(len(g.files) for g in shown),
                        cache.stats, result, round(time.perf_counter() - started, 3),
                        len(pairs))


def render_html(result: DatasetStats, groups: Sequence[Group], shown: Sequence[Group],
                evidence: dict[str, Evidence], thumb_keys: dict[str, str],
                thumb_uris: dict[str, str], page_size: int = PAGE_SIZE,
                title: str = "lookalike report", thumb_stats: ThumbStats | None = None,
                health_report: HealthReport | None = None,
                chosen: Sequence[Keeper | None] | None = None,
                states: dict[str, FileState] | None = None,
                rules: Sequence[str] = DEFAULT_RULES,
                partials: Sequence[PartialCard] = ()) -> str:
    """The whole document. `thumb_keys`: path -> key into `thumb_uris` (key -> data URI);
    a path without one is shown as a placeholder. `chosen`: the keeper of each shown group
    (none marked when not given); `states`: each file's date and format."""
    cards = group_cards(shown, evidence, chosen if chosen is not None else [None] * len(shown),
                        states or {}, thumb_keys)
    counts = {kind: sum(c.evidence == kind for c in cards) for kind in EVIDENCE}
    # "</" cannot occur in base64 or hex, but a path could hold it: keep the JSON inert.
    thumbs_json = json.dumps(thumb_uris, separators=(",", ":")).replace("</", "<\\/")
    return _templates().get_template("report.html.j2").render(
        title=title, index=display_path(result.index),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary(result),
        # matplotlib's own SVG, made from numbers (plots.py): nothing from a path in it
        plots=[{"title": p.title, "svg": Markup(p.svg)} for p in plots(result)],
        health=Markup(health_section(health_report)),  # escaped by health_page itself
        cards=cards, groups_total=len(groups), left_out=len(groups) - len(shown),
        files_left=sum(len(g.files) for g in groups[len(shown):]),
        thumbs_failed=thumb_stats.failed if thumb_stats is not None else 0,
        kinds=[(kind, words, counts[kind]) for kind, words in EVIDENCE.items() if counts[kind]],
        page_size=max(1, page_size), rules=", ".join(RULE_WORDS[r] for r in rules),
        link_note=LINK_NOTE, thumbs_json=Markup(thumbs_json), partials=partials,
        max_partial=MAX_PARTIAL)


@functools.cache
def _templates() -> jinja2.Environment:
    """The report's templates (package data), autoescaped; made on first use."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("lookalike.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["number"] = number
    env.filters["numeric"] = numeric
    return env


def _groups_with_evidence(idx: Index, options: SearchOptions | None
                          ) -> tuple[list[Group] | None, dict[str, Evidence]]:
    """The groups under `options` and each grouped file's evidence, from one search; None
    when the index holds no signatures."""
    if not has_signatures(idx):
        return None, {}
    return groups_with_evidence(idx, options=options)


def _partial_pairs(idx: Index, partial: bool | None) -> list[PartialPair]:
    """The first MAX_PARTIAL containments and overlaps of `dupes --partial`; none unless
    asked, or (None) unless the index holds local features."""
    if partial is False or (partial is None and not idx.has_signatures(get_spec("local"))):
        return []
    return [p for p in containment_pairs(idx) if p.relation != "same"][:MAX_PARTIAL]


def _write_atomic(out: Path, data: bytes) -> int:
    """Write `out` through a temporary file in its folder, so a reader never sees half."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
