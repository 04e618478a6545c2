"""The pieces of the HTML report: its style, its script, the summary tables and a group's card.
Every value from the index is escaped here; nothing refers to anything outside the file."""

from __future__ import annotations

import os
from html import escape
from typing import TYPE_CHECKING

from ..index.store import display_path
from ..types import Group
from .analysis import DatasetStats, Distribution

if TYPE_CHECKING:
    from ..search.evidence import Evidence

FAILURES_SHOWN = 1000  # rows of the table of unreadable files

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;
color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
code{font-size:12px;background:#f3f3f3;padding:0 3px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:right}td.t,th.t{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{margin:0;border:1px solid #eee;padding:4px}
.plot figcaption{font-weight:600;font-size:13px}.plot svg{display:block;max-width:100%;height:auto}
.note{background:#fff8e1;border-left:3px solid #e0a800;padding:6px 10px}
.pager{margin:10px 0}.pager button{font:inherit;padding:3px 12px}
.group{border:1px solid #ddd;border-radius:4px;margin:10px 0;padding:6px 10px}
.group h3{font-size:14px;margin:0 0 6px}.group h3 span{font-weight:400;color:#555}
.files{display:flex;flex-wrap:wrap;gap:10px}
.file{margin:0;width:176px;font-size:12px;overflow-wrap:anywhere}
.file img,.file .placeholder{display:block;max-width:160px;max-height:160px;margin:0 auto 4px}
.placeholder{width:160px;height:120px;background:#eee;color:#777;display:flex!important;
align-items:center;justify-content:center}
.path{color:#666}.ev{color:#35608f}.warn{color:#a33}
"""

# Pages of groups; images get their data URI from the JSON block when their page is shown,
# so the browser decodes one page of thumbnails, not all of them. #page=N opens page N.
SCRIPT = """
(function(){
  var thumbs = JSON.parse(document.getElementById('thumbs').textContent);
  var pages = document.querySelectorAll('#groups .page');
  var current = 0;
  function show(n){
    if(!pages.length){return;}
    current = Math.max(0, Math.min(pages.length - 1, n));
    for(var i = 0; i < pages.length; i++){pages[i].hidden = i !== current;}
    var images = pages[current].querySelectorAll('img[data-thumb]');
    for(var j = 0; j < images.length; j++){
      if(!images[j].getAttribute('src')){images[j].src = thumbs[images[j].dataset.thumb];}
    }
    var labels = document.querySelectorAll('.page-number');
    for(var k = 0; k < labels.length; k++){
      labels[k].textContent = 'page ' + (current + 1) + ' of ' + pages.length;
    }
    var buttons = document.querySelectorAll('.pager button');
    for(var b = 0; b < buttons.length; b++){
      var step = Number(buttons[b].dataset.step);
      buttons[b].disabled = (step < 0 && current === 0) ||
                            (step > 0 && current === pages.length - 1);
    }
  }
  var all = document.querySelectorAll('.pager button');
  for(var m = 0; m < all.length; m++){
    all[m].addEventListener('click', function(e){
      show(current + Number(e.currentTarget.dataset.step));
      if(history.replaceState){history.replaceState(null, '', '#page=' + (current + 1));}
    });
  }
  var asked = /page=(\\d+)/.exec(location.hash);
  show(asked ? Number(asked[1]) - 1 : 0);
})();
"""


def number(value: float) -> str:
    return f"{value:,.0f}"


def _bytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def _rows(rows: list[tuple], header: tuple | None = None) -> str:
    head = ""
    if header:  # a header cell aligned as the column's first cell
        first = rows[0] if rows else header
        cells = "".join(_cell(h, "th", _numeric(c)) for h, c in zip(header, first))
        head = "<tr>" + cells + "</tr>"
    return "<table>" + head + "".join(
        "<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows
    ) + "</table>"


def _numeric(value) -> bool:
    text = str(value)
    return text[:1].isdigit() or text[:1] == "-" and text[1:2].isdigit()


def _cell(value, tag: str = "td", numeric: bool | None = None) -> str:
    """Numbers right-aligned (the table's default), text left."""
    numeric = _numeric(value) if numeric is None else numeric
    align = "" if numeric else ' class="t"'
    return f"<{tag}{align}>{escape(str(value))}</{tag}>"


def summary_sections(result: DatasetStats, figures: str = "") -> str:
    """The numbers: overview, the plots (`figures`), distributions, categories, unreadable
    files."""
    d = result.duplicates
    overview = [("files", number(result.files)), ("readable images", number(result.images)),
                ("distinct by bytes", number(result.contents)),
                ("total size", _bytes(result.total_bytes)),
                ("could not be read", number(result.status.get("failed", 0))),
                ("not images", number(result.status.get("other", 0)))]
    if d is not None:
        overview += [("duplicate groups", number(d.groups)),
                     ("files in groups", number(d.files_in_groups)),
                     ("redundant copies", f"{number(d.redundant)} ({100 * d.rate:.1f}%)"),
                     ("space they take", _bytes(d.redundant_bytes))]
    out = ['<section id="summary"><h2>Summary</h2>' + _rows(overview) + "</section>"]
    if figures:
        out.append(f'<section id="plots"><h2>Plots</h2><div class="plots">{figures}</div>'
                   "</section>")
    dists = [(name, dist) for name, dist in (("width", result.width), ("height", result.height),
                                             ("aspect", result.aspect),
                                             ("bytes", result.file_bytes)) if dist is not None]
    if dists:
        out.append('<section id="distributions"><h2>Distributions</h2>' + _rows(
            [(name, *_marks(dist)) for name, dist in dists],
            ("", "min", "p5", "p25", "median", "p75", "p95", "max", "mean")) + "</section>")
    if result.by and result.categories:
        by_cat = d.by_category if d is not None else {}
        rows = [(value, number(n), *((number(by_cat[value].in_groups),
                                      number(by_cat[value].redundant),
                                      f"{100 * by_cat[value].rate:.1f}%")
                                     if value in by_cat else ("", "", "")))
                for value, n in result.categories.items()]
        out.append(f'<section id="categories"><h2>By {escape(result.by)}</h2>' + _rows(
            rows, (result.by, "files", "in groups", "redundant", "rate")) + "</section>")
    if result.failures:
        shown = result.failures[:FAILURES_SHOWN]
        more = len(result.failures) - len(shown)
        out.append('<section id="failures"><h2>Files that could not be read</h2>' + _rows(
            [(display_path(f.path), f.stage, f.reason, number(f.bytes)) for f in shown],
            ("path", "stage", "reason", "bytes"))
            + (f"<p class=\"note\">and {number(more)} more (<code>lookalike stats --format "
               f"json</code> lists them all)</p>" if more else "") + "</section>")
    downloads = result.downloads
    if downloads is not None and downloads.failures:
        shown = downloads.failures[:FAILURES_SHOWN]
        more = len(downloads.failures) - len(shown)
        out.append('<section id="downloads"><h2>Downloads that failed</h2>' + _rows(
            [(f.url, f.reason) for f in shown], ("URL", "reason"))
            + (f"<p class=\"note\">and {number(more)} more</p>" if more else "")
            + "</section>")
    return "\n".join(out)


def _marks(dist: Distribution) -> list[str]:
    values = [dist.min, *dist.percentiles.values(), dist.max, dist.mean]
    return [f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" for v in values]


def group_card(position: int, group: Group, evidence: dict[str, "Evidence"],
               thumb_keys: dict[str, str]) -> str:
    detail = group.method
    if group.method not in ("bytes", "pixels"):
        detail += f", max distance {group.max_distance}, diameter {group.diameter}"
    warn = "" if group.fully_linked else \
        ' <span class="warn">(not every two members matched)</span>'
    files = "".join(_file_card(f, evidence.get(f.path), thumb_keys.get(f.path))
                    for f in group.files)
    return (f'<article class="group" id="group-{position}"><h3>Group {position} '
            f"<span>&middot; {len(group.files)} files &middot; {escape(detail)} &middot; "
            f"{escape(group.linkage)} linkage{warn}</span></h3>"
            f'<div class="files">{files}</div></article>')


def _closeness(ev: "Evidence") -> str:
    """As `dupes --pairs` says it: embeddings by similarity, the rest by distance in bits."""
    if ev.method == "embed":
        from ..search.embed import similarity_of

        return f"embed sim={similarity_of(ev.distance):.3f}"
    return f"{ev.method} d={ev.distance}"


def _file_card(info, ev: "Evidence | None", key: str | None) -> str:
    path = display_path(info.path)
    name = escape(os.path.basename(path) or path)
    if key:
        picture = f'<img data-thumb="{escape(key)}" alt="{name}">'
    else:
        picture = ('<div class="placeholder" title="no preview: the file could not be read">'
                   'no preview</div>')
    matched = ""
    if ev is not None:
        how = _closeness(ev) + ("" if ev.transform == "identity" else f" {ev.transform}")
        matched = (f'<br><span class="ev" title="matched {escape(display_path(ev.other))}">'
                   f"{escape(how)}</span>")
    return (f'<figure class="file">{picture}<figcaption><b>{name}</b><br>'
            f"{info.width}&times;{info.height} &middot; {_bytes(info.bytes)}{matched}<br>"
            f'<span class="path">{escape(path)}</span></figcaption></figure>')
