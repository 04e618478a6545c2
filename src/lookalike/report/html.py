"""`lookalike report`: one self-contained HTML file (no network, no CDN) with the dataset
analysis as plots and the duplicate groups as a paged gallery of thumbnails.

Bounded by design: thumbnails are embedded (once per distinct content, as data URIs in one
JSON block) only for the `max_groups` largest groups, and a little JavaScript shows one page
of groups at a time, setting the images of that page only. What was left out is said on the
page.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..index.store import Index, display_path
from ..types import Group
from .analysis import DatasetStats, has_signatures, opened_index, stats as analyse
from .page import SCRIPT, STYLE, group_card, number, summary_sections
from .plots import plots
from .thumbs import THUMB_SIZE, ThumbCache, ThumbStats

if TYPE_CHECKING:
    from ..search.evidence import Evidence
    from ..search.options import SearchOptions

log = logging.getLogger(__name__)

MAX_GROUPS = 1000  # groups in the gallery; the rest are counted, not shown
PAGE_SIZE = 50  # groups a page


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


def write_report(index: Index | str | os.PathLike, out: str | os.PathLike, *,
                 max_groups: int = MAX_GROUPS, page_size: int = PAGE_SIZE,
                 by: str | None = None, thumb_size: int = THUMB_SIZE,
                 title: str = "lookalike report",
                 options: SearchOptions | None = None) -> ReportResult:
    """Write the HTML report of `index` (an open Index or its path) to `out`.

    Groups come from find_groups with `options` (the default cascade when None); thumbnails
    are cached in the index's folder (thumbs/), so a second report reuses them.
    """
    started = time.perf_counter()
    out = Path(out)
    with opened_index(index) as idx, idx.snapshot():  # groups and numbers of one state
        groups, evidence = _groups_with_evidence(idx, options)
        result = analyse(idx, by=by, groups=groups, duplicates=groups is not None)
        groups = groups or []
        shown = groups[:max(0, max_groups)]
        cache = ThumbCache.for_index(idx, thumb_size)
        hashes = {p: state[3] for p, state in
                  idx.file_states([f.path for g in shown for f in g.files]).items()}
    thumbs = cache.many([(p, h) for p, h in hashes.items()])  # files only: no read transaction
    uris = {h.hex(): f"data:{cache.mime};base64,{base64.b64encode(data).decode('ascii')}"
            for h, data in thumbs.items() if data is not None}
    keys = {p: h.hex() for p, h in hashes.items() if thumbs.get(h) is not None}
    document = render_html(result, groups, shown, evidence, keys, uris, page_size, title,
                           cache.stats)
    size = _write_atomic(out, document.encode("utf-8"))
    log.info("report %s: %d bytes, %d of %d groups", out, size, len(shown), len(groups))
    return ReportResult(out, size, len(groups), len(shown), sum(len(g.files) for g in shown),
                        cache.stats, result, round(time.perf_counter() - started, 3))


def render_html(result: DatasetStats, groups: Sequence[Group], shown: Sequence[Group],
                evidence: dict[str, Evidence], thumb_keys: dict[str, str],
                thumb_uris: dict[str, str], page_size: int = PAGE_SIZE,
                title: str = "lookalike report", thumb_stats: ThumbStats | None = None) -> str:
    """The whole document. `thumb_keys`: path -> key into `thumb_uris` (key -> data URI);
    a path without one is shown as a placeholder."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures = "".join(f'<figure class="plot"><figcaption>{escape(p.title)}</figcaption>'
                      f"{p.svg}</figure>" for p in plots(result))
    body = [
        f"<header><h1>{escape(title)}</h1><p>index <code>{escape(display_path(result.index))}"
        f"</code> &middot; generated {generated}</p></header>",
        summary_sections(result, figures),
        _gallery(groups, shown, evidence, thumb_keys, max(1, page_size), thumb_stats),
    ]
    # "</" cannot occur in base64 or hex, but a path could hold it: keep the JSON inert.
    thumbs_json = json.dumps(thumb_uris, separators=(",", ":")).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(part for part in body if part)
            + f'\n<script type="application/json" id="thumbs">{thumbs_json}</script>'
            + f"\n<script>{SCRIPT}</script></body></html>\n")


def _gallery(groups: Sequence[Group], shown: Sequence[Group], evidence: dict[str, Evidence],
             thumb_keys: dict[str, str], page_size: int,
             thumb_stats: ThumbStats | None) -> str:
    if not groups:
        return '<section id="groups"><h2>Duplicate groups</h2><p>No duplicates found.</p></section>'
    pages = []
    for start in range(0, len(shown), page_size):
        cards = "".join(group_card(number_, g, evidence, thumb_keys)
                        for number_, g in enumerate(shown[start:start + page_size], start + 1))
        pages.append(f'<div class="page" data-page="{len(pages)}"'
                     f'{" hidden" if pages else ""}>{cards}</div>')
    left = len(groups) - len(shown)
    note = ""
    if left:
        files_left = sum(len(g.files) for g in groups[len(shown):])
        note = (f'<p class="note" id="left-out">Showing the {number(len(shown))} largest of '
                f"{number(len(groups))} groups; the other {number(left)} groups "
                f"({number(files_left)} files) are left out of this page (<code>lookalike "
                f"report --max-groups N</code> shows more, <code>lookalike dupes --format "
                f"json</code> lists them all).</p>")
    failed = ""
    if thumb_stats is not None and thumb_stats.failed:
        count = thumb_stats.failed
        failed = (f'<p class="note">{number(count)} picture{"s" if count > 1 else ""} could '
                  f"not be read for a thumbnail (shown as a placeholder).</p>")
    pager = ('<nav class="pager"><button type="button" data-step="-1">&larr; previous'
             '</button> <span class="page-number"></span> <button type="button" '
             'data-step="1">next &rarr;</button></nav>')
    return (f'<section id="groups"><h2>Duplicate groups</h2>{note}{failed}'
            f"<p>Largest groups first, {page_size} a page.</p>{pager}{''.join(pages)}{pager}"
            "</section>")


def _groups_with_evidence(idx: Index, options: SearchOptions | None
                          ) -> tuple[list[Group] | None, dict[str, Evidence]]:
    """The groups under `options` and each grouped file's evidence, from one search; None
    when the index holds no signatures."""
    from ..search.evidence import groups_with_evidence

    if not has_signatures(idx):
        return None, {}
    return groups_with_evidence(idx, options=options)


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
