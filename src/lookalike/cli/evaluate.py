"""`lookalike calibrate` and `lookalike eval`: thresholds from the user's own collection, and
scores against labelled duplicates. Registered on main.app; errors translated as there."""

from __future__ import annotations

import json
import math
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError
from ..evaluation.calibrate import (Calibration, MethodCalibration, calibrate as run_calibrate,
                                    curve_json, save_thresholds)
from ..evaluation.score import RECALL_AT_PRECISION, Evaluation, evaluate, load_labels
from ..index.store import StoredThreshold, display_path, open_index
from ..methods.registry import get_spec
from ..search.dupes import make_rule
from .common import OK, PARTIAL, _emit, _index_path, _split_methods, _translate, app, err, out

SHOWN_CURVE_FLOOR = 0.1  # the table stops at the first radius beyond the choice below this
NOTHING = -1  # the threshold reported when none reaches the target


class Report(str, Enum):
    table = "table"
    json = "json"


@app.command("calibrate")
def calibrate_command(
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    method: Optional[list[str]] = typer.Option(
        None, "--method", "-m", help="Methods to calibrate, comma-separated (default: auto "
        "and every Hamming method in the index)."),
    sample: int = typer.Option(200, "--sample", min=1, help="Indexed pictures to edit."),
    target_precision: float = typer.Option(0.99, "--target-precision", min=0.0, max=1.0,
                                           help="Precision the chosen radius must reach."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and of the edits."),
    edits: Optional[list[str]] = typer.Option(
        None, "--edits", help="Edits to plant, comma-separated (default: every edit that "
        "changes pixels: jpeg70, resize50, flips, turns, blur, grey, brighter, crop10, "
        "crop20, rot5, text, pad)."),
    show: bool = typer.Option(False, "--show", help="Only show the stored thresholds."),
    fmt: Report = typer.Option(Report.table, "--format", help="Results as table or json."),
) -> None:
    """Measure each method's precision and recall on edited copies of your own pictures,
    and store the widest radius that keeps the target precision (used by dupes and query)."""
    try:
        with open_index(_index_path(index)) as idx:
            if show:
                _print_stored(idx.thresholds(), fmt)
                raise typer.Exit(OK)
            idx.acquire()  # fail at once when a scan is writing, not after the measuring
            result = run_calibrate(idx, _split_methods(method), sample, target_precision,
                                   seed, _split_methods(edits))
            stored = save_thresholds(idx, result)
            defaults = {m.method: _radius_now(idx, m.method) for m in result.methods}
    except LookalikeError as exc:
        raise _translate(exc)
    if fmt is Report.json:
        _emit(json.dumps(_calibration_json(result, stored), indent=2))
    else:
        _print_calibration(result, stored, defaults)
    raise typer.Exit(PARTIAL if result.skipped else OK)


def _radius_now(idx, method: str) -> float | None:
    if method == "embed":
        from ..search import embed

        spec = embed.index_spec(idx)
        return embed.min_similarity(idx, spec)
    rule = make_rule(idx, method)
    return None if rule is None else rule.radius


def _nan_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _calibration_json(c: Calibration, stored: list[str]) -> dict:
    return {
        "target_precision": c.target_precision, "seed": c.seed, "edits": list(c.edits),
        "sources": c.sources, "sampled": [display_path(p) for p in c.sampled],
        "queries": c.queries, "seconds": round(c.seconds, 3),
        "skipped": [f.to_dict() for f in c.skipped],
        "methods": [{"method": m.method, "kind": m.kind, "higher_is_better": m.higher_is_better,
                     "threshold": m.threshold, "passed": m.passed, "stored": m.method in stored,
                     "precision": _nan_none(m.precision), "recall": _nan_none(m.recall),
                     "curve": curve_json(m.curve)} for m in c.methods]}


def _print_calibration(c: Calibration, stored: list[str], now: dict) -> None:
    out.print(f"{c.queries:,} edited copies of {c.sources:,} indexed pictures "
              f"({len(c.edits)} edits, seed {c.seed}) in {c.seconds:.1f} s; "
              f"target precision {c.target_precision:g}")
    for m in c.methods:
        _print_curve(m)
        word = "least similarity" if m.kind == "vector" else "radius"
        if m.passed:
            out.print(f"[bold]{m.method}[/]: {word} {m.threshold:g}, precision "
                      f"{m.precision:.3f}, recall {m.recall:.3f}"
                      + (" (stored)" if m.method in stored else ""))
        else:
            best = max(m.curve, key=lambda p: -1.0 if math.isnan(p.precision) else p.precision)
            out.print(f"[bold]{m.method}[/]: [red]nothing passes[/] ({word} {NOTHING}): "
                      f"no {word} reaches precision {c.target_precision:g} (best "
                      f"{_nan_none(best.precision) or 0:.3f} at {best.threshold:g}); not "
                      f"stored, {m.method} keeps {word} {now.get(m.method)}")
    for f in c.skipped[:10]:
        err.print(f"  skipped: {escape(display_path(f.path))} ({f.stage}): {escape(f.reason)}")
    if len(c.skipped) > 10:
        err.print(f"  ... and {len(c.skipped) - 10:,} more (--format json lists them all)")


def _print_curve(m: MethodCalibration) -> None:
    name = "radius" if not m.higher_is_better else "score"
    out.print(f"  {m.method:8} {name:>6} {'tp':>7} {'fp':>8} {'precision':>9} {'recall':>7}")
    previous, hidden = None, 0
    for p in m.curve:
        chosen = p.threshold == m.threshold
        if not chosen and previous is not None and (p.tp, p.fp) == (previous.tp, previous.fp):
            continue  # no hit between these two radii (pHash distances are often even)
        beyond = p.threshold > m.threshold if not m.higher_is_better else p.threshold < m.threshold
        if hidden or (beyond and not math.isnan(p.precision) and p.precision < SHOWN_CURVE_FLOOR
                      and previous is not None and previous.precision < SHOWN_CURVE_FLOOR):
            hidden += 1
            continue
        mark = "  <- chosen" if chosen else ""
        precision = "-" if math.isnan(p.precision) else f"{p.precision:.3f}"
        out.print(f"  {'':8} {p.threshold:6g} {p.tp:7,} {p.fp:8,} {precision:>9} "
                  f"{p.recall:7.3f}{mark}")
        previous = p
    if hidden:
        out.print(f"  {'':8} ... {hidden} wider radii, precision under {SHOWN_CURVE_FLOOR:g} "
                  "(--format json has the whole curve)")


def _print_stored(thresholds: dict[str, StoredThreshold], fmt: Report) -> None:
    if fmt is Report.json:
        _emit(json.dumps({"thresholds": [
            {"method": t.method, "value": t.value, "target_precision": t.target_precision,
             "precision": t.precision, "recall": t.recall, "sample": t.sample,
             "created": t.created, "curve": t.curve} for t in thresholds.values()]}, indent=2))
        return
    if not thresholds:
        out.print("no stored thresholds: every method uses its default radius "
                  "(lookalike calibrate measures them)")
    for t in thresholds.values():
        default = "" if t.method == "auto" else f", default {get_spec(t.method).default_radius}"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created or 0))
        out.print(f"{t.method:10} radius {t.value:g}{default}  precision {t.precision:.3f} "
                  f"recall {t.recall:.3f} at target {t.target_precision:g}, "
                  f"{t.sample} pictures, {when}")


@app.command("eval")
def eval_command(
    truth: Path = typer.Option(..., "--truth", help="Labels: {\"pairs\": [[a, b], ...]}, "
                               "{\"groups\": [[a, b, c], ...]} or bench truth.json."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    method: str = typer.Option("auto", "--method", "-m",
                               help="auto, bytes, pixels, embed, or a hash (phash, pdq, ...)."),
    no_calibration: bool = typer.Option(False, "--no-calibration",
                                        help="Ignore radii stored by 'lookalike calibrate'."),
    fmt: Report = typer.Option(Report.table, "--format", help="Scores as table or json."),
) -> None:
    """Score the index against labelled duplicates: precision, recall, F1, µAP, recall at
    precision 0.99, and recall per transform."""
    try:
        labels = load_labels(truth)
        with open_index(_index_path(index)) as idx:
            result = evaluate(idx, labels, method, calibrated=not no_calibration)
    except LookalikeError as exc:
        raise _translate(exc)
    if fmt is Report.json:
        _emit(json.dumps(_evaluation_json(result, labels.shape, len(labels.files)), indent=2))
    else:
        _print_evaluation(result, labels.shape, len(labels.files))
    raise typer.Exit(OK)


def _evaluation_json(e: Evaluation, shape: str, n_files: int) -> dict:
    return {
        "method": e.method, "radius": e.radius, "calibrated": e.calibrated,
        "wide_radius": e.wide_radius, "labels": {"shape": shape, "files": n_files},
        "matched": e.matching.how, "not_found": list(e.matching.missing),
        "positives": e.positives, "tp": e.tp, "fp": e.fp,
        "precision": _nan_none(e.precision), "recall": _nan_none(e.recall), "f1": e.f1,
        "micro_ap": _nan_none(e.micro_ap),
        "recall_at_precision": {"precision": RECALL_AT_PRECISION,
                                "recall": _nan_none(e.recall_at_precision)},
        "per_transform": {k: {"found": f, "pairs": n, "recall": f / n}
                          for k, (f, n) in e.per_transform.items()},
        "unjudged": e.unjudged, "incomplete_pairs": e.incomplete_pairs}


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _print_evaluation(e: Evaluation, shape: str, n_files: int) -> None:
    how = ", ".join(f"{n:,} by {'file name' if k == 'name' else k + ' path'}"
                    for k, n in e.matching.how.items())
    out.print(f"labels: {n_files:,} files ({shape}), {len(e.matching.indexed):,} found in the "
              f"index ({how})")
    if e.matching.missing:
        shown = ", ".join(escape(display_path(p)) for p in e.matching.missing[:5])
        err.print(f"  {len(e.matching.missing):,} labelled files not in the index: {shown}"
                  + (" ..." if len(e.matching.missing) > 5 else ""))
    radius = "exact copies only" if e.radius is None else \
        f"radius {e.radius}" + (" (calibrated)" if e.calibrated else "")
    out.print(f"method {e.method}, {radius}: {e.positives:,} labelled duplicate pairs, "
              f"{e.tp + e.fp:,} pairs found, {e.fp:,} of them wrong")
    out.print(f"precision {_fmt(e.precision)}  recall {_fmt(e.recall)}  F1 {_fmt(e.f1)}")
    wide = "" if e.wide_radius is None else f", pairs up to radius {e.wide_radius} ranked by score"
    out.print(f"µAP {_fmt(e.micro_ap)}{wide}; recall at precision {RECALL_AT_PRECISION:g}: "
              f"{_fmt(e.recall_at_precision)}")
    if e.per_transform:
        out.print("recall per transform:")
        for kind, (found, pairs) in e.per_transform.items():
            out.print(f"  {kind:12} {found:5,}/{pairs:<5,} {found / pairs:.3f}")
    if e.unjudged:
        out.print(f"[dim]{e.unjudged:,} found pairs involve unlabelled files (not judged)[/]")
