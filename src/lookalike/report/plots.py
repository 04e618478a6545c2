"""The report's plots: matplotlib (Agg, no pyplot state) rendered to inline SVG.

Text stays text (svg.fonttype none) and ids come from a fixed salt, so the same data gives
the same bytes, and a plot is a few kilobytes instead of a font's worth of paths.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from .analysis import DatasetStats, Distribution

FIGURE_SIZE = (5.2, 2.6)  # inches; at 72 px an inch in the page
BAR_LIMIT = 20  # categories and formats shown in a bar chart, the rest summed as "other"
COLOUR = "#3b6ea5"
ACCENT = "#c0504d"


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str  # an <svg> element, no XML prolog


def plots(result: DatasetStats) -> list[Plot]:
    """Every plot the data allows: distributions, counts, and duplicate rates."""
    out: list[Plot] = []
    for title, dist, unit, log_x in (
            ("Width", result.width, "px", False), ("Height", result.height, "px", False),
            ("Aspect ratio (width / height)", result.aspect, "", False),
            ("File size", result.file_bytes, "bytes", True)):
        if dist is not None:
            out.append(Plot(title, histogram(dist, unit, log_x)))
    for title, counts in (("Formats", result.formats), ("Colour modes", result.modes),
                          (f"Files by {result.by}", result.categories)):
        if counts:
            out.append(Plot(title, bars(counts, "files")))
    if result.failure_reasons:
        out.append(Plot("Files that could not be read", bars(result.failure_reasons, "files",
                                                             colour=ACCENT)))
    dupes = result.duplicates
    if dupes is not None and dupes.by_method:
        out.append(Plot("Duplicate groups by evidence", bars(dupes.by_method, "groups")))
    if dupes is not None and dupes.by_category:
        rates = {k: 100 * v.rate for k, v in dupes.by_category.items()}
        out.append(Plot(f"Redundant copies by {result.by}",
                        bars(rates, "% of files", colour=ACCENT, integer=False)))
    return out


def histogram(dist: Distribution, unit: str, log_x: bool = False) -> str:
    with _style():
        return _histogram(dist, unit, log_x)


def bars(counts: dict[str, float], unit: str, colour: str = COLOUR,
         integer: bool = True) -> str:
    """Horizontal bars, largest first, the tail beyond BAR_LIMIT summed as "other"."""
    with _style():
        return _bars(counts, unit, colour, integer)


def _histogram(dist: Distribution, unit: str, log_x: bool) -> str:
    figure, axes = _figure()
    edges = list(dist.edges)
    axes.stairs(dist.counts, edges, fill=True, color=COLOUR)
    axes.axvline(dist.median, color=ACCENT, linewidth=1.2)
    if log_x and edges[0] > 0:
        axes.set_xscale("log")
    # The median in the axis label, not a legend: a legend lands on the bars of some data.
    axes.set_xlabel(f"{unit or 'ratio'}   (red line: median {_number(dist.median)})")
    axes.set_ylabel("files")
    _whole_counts(axes.yaxis)
    return _svg(figure)


def _whole_counts(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _bars(counts: dict[str, float], unit: str, colour: str, integer: bool) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > BAR_LIMIT and integer:
        items = items[:BAR_LIMIT - 1] + [("other", sum(v for _, v in items[BAR_LIMIT - 1:]))]
    items = items[:BAR_LIMIT]
    height = max(FIGURE_SIZE[1], 0.25 * len(items) + 0.8)
    figure, axes = _figure((FIGURE_SIZE[0], height))
    labels = [label if len(label) <= 32 else label[:31] + "…" for label, _ in items]
    values = [v for _, v in items]
    positions = range(len(items))
    axes.barh(positions, values, color=colour)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(unit)
    if integer:
        _whole_counts(axes.xaxis)
    for y, v in zip(positions, values):
        axes.annotate(f"{v:,.0f}" if integer else f"{v:.1f}", (v, y), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=7)
    axes.margins(x=0.12)
    return _svg(figure)


def _figure(size: tuple[float, float] = FIGURE_SIZE):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=72, layout="constrained")
    axes = figure.add_subplot()
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _style():
    """Fixed ids, text as text, small fonts: for every figure made and saved inside."""
    import matplotlib

    return matplotlib.rc_context({"svg.hashsalt": "lookalike", "svg.fonttype": "none",
                                  "font.size": 9})


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    # The RDF metadata block says only "made by matplotlib"; in a page it is dead weight.
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
