"""`lookalike cross` (duplicates across the sets of an ML dataset: train/test leakage) and
`lookalike split` (a split in which no duplicate group spans two splits). Registered on
main.app."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError
from ..index.store import default_index_path, display_path, open_index
from ..report.output import CROSS_PAIR_COLUMNS, SPLIT_COLUMNS, csv_text
from ..scan import DEFAULT_METHODS
from ..search.dupes import DEFAULT_LINKAGE, EXACT
from . import options
from ..search.leakage import Leakage, cross_pairs, normalise_sets, outer_roots
from ..search.split import Split, materialise, plan_split, split_names
from ..sources.folders import WalkOptions
from .common import (DUPES_FOUND, OK, USAGE, Format, _emit, _fail, _scan_with_progress,
                   _translate, _where, app, err, out)

# Names of the sets in the order given: TRAIN TEST [VAL...].
SET_NAMES = ("train", "test", "val")


def _set_names(count: int, names: Optional[str]) -> list[str]:
    if names:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        if len(chosen) != count or len(set(chosen)) != count:
            raise _fail(f"--names wants {count} distinct names, got {names!r}", USAGE)
        return chosen
    return [SET_NAMES[k] if k < len(SET_NAMES) else f"val{k - 1}" for k in range(count)]


def _check_folders(folders: list[Path]) -> None:
    for folder in folders:
        if not folder.is_dir():
            raise _fail(f"not a folder: {folder}", USAGE)


def _index_for(folders: list[Path], index: Optional[Path]) -> Path:
    return index if index is not None else default_index_path(os.path.abspath(folders[0]))


def _scan_folders(folders: list[Path], index: Path, method: str) -> None:
    """An incremental scan of the folders (a re-run reads only what changed), with the
    signatures `method` needs; unreadable files are reported and left out."""
    methods = list(DEFAULT_METHODS)
    if method not in ("auto", *EXACT) and method not in methods:
        methods.append(method)
    roots = outer_roots([os.path.abspath(f) for f in folders])
    summary = _scan_with_progress([Path(r) for r in roots], [], index, methods, WalkOptions(),
                                  None)
    if summary.failures:
        err.print(f"[yellow]{summary.failed:,} file(s) could not be read and are left out[/] "
                  "(lookalike stats lists them)")


@app.command("cross")
def cross(
    folders: list[Path] = typer.Argument(..., help="TRAIN TEST [VAL...]: one folder a set."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: "
                                         "TRAIN/.lookalike/index.db)."),
    method: str = typer.Option("auto", "--method", "-m",
                               help="auto, bytes, pixels, embed, or a hash (phash, pdq, ...)."),
    max_distance: Optional[int] = options.MAX_DISTANCE,
    names: Optional[str] = typer.Option(None, "--names", help="Names of the sets, comma-"
                                        "separated (default: train,test,val)."),
    fmt: Format = typer.Option(Format.table, "--format", help="Output as table, json or csv."),
    do_scan: bool = typer.Option(True, "--scan/--no-scan", help="Scan the folders first "
                                 "(incremental), or use the index as it is."),
    fail_on_leak: bool = typer.Option(False, "--fail-on-leak", help="Exit with 1 when a "
                                      "duplicate crosses two sets (for CI)."),
    where: list[str] = typer.Option([], "--where", help="Only files whose metadata has "
                                    "KEY=VALUE; repeatable."),
) -> None:
    """Duplicates that cross the sets of a dataset (train/test leakage); duplicates within
    one set are not reported."""
    if len(folders) < 2:
        raise _fail("give at least two folders: TRAIN TEST [VAL...]", USAGE)
    _check_folders(folders)
    set_names = _set_names(len(folders), names)
    conditions = _where(where)
    path = _index_for(folders, index)
    try:
        sets = normalise_sets(dict(zip(set_names, folders)))
        if do_scan:
            _scan_folders(folders, path, method)
        with open_index(path) as idx:
            found = cross_pairs(idx, sets, method, max_distance, where=conditions)
    except LookalikeError as exc:
        raise _translate(exc)
    if fmt is Format.json:
        _emit(leakage_json(found))
    elif fmt is Format.csv:
        _emit(leakage_csv(found))
    else:
        _print_leakage(found)
    raise typer.Exit(DUPES_FOUND if (fail_on_leak and found.leaked) else OK)


def _relative(path: str, root: str) -> str:
    return display_path(os.path.relpath(path, root))


def _print_leakage(found: Leakage) -> None:
    for p in found.pairs:
        out.print(f"{p.set_a}:{escape(_relative(p.path_a, found.roots[p.set_a]))}  ~  "
                  f"{p.set_b}:{escape(_relative(p.path_b, found.roots[p.set_b]))}  "
                  f"[dim]{p.method} d={p.distance} {p.transform}[/]")
    out.print(f"{len(found.pairs):,} pairs across sets, {len(found.groups):,} groups spanning "
              "sets")
    for s in found.summary:
        out.print(f"{s.leaked:,} of {s.later_files:,} {s.later} images ({s.fraction:.1%}) "
                  f"have a duplicate in {s.earlier}")


def leakage_json(found: Leakage) -> str:
    return json.dumps(found.to_dict(), indent=2)


def leakage_csv(found: Leakage) -> str:
    """The crossing pairs, one a row (the summary is in the JSON and the table)."""
    return csv_text(CROSS_PAIR_COLUMNS, (p.to_dict() for p in found.pairs))


def _parse_ratios(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _fail(f"--ratios wants numbers like 0.8,0.1,0.1, got {text!r}", USAGE) from None


@app.command("split")
def split_command(
    folders: list[Path] = typer.Argument(..., help="Folders of the dataset."),
    ratios: str = typer.Option("0.8,0.1,0.1", "--ratios", help="Shares of the splits by "
                               "file count, comma-separated (normalised to sum 1)."),
    names: Optional[str] = typer.Option(None, "--names", help="Split names (default: "
                                        "train,val,test for three ratios, train,test for "
                                        "two)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same split."),
    out_file: Path = typer.Option(..., "--out", help="Where to write path,split: .csv or "
                                  ".json."),
    copy_to: Optional[Path] = typer.Option(None, "--copy-to", help="Also build DIR/SPLIT/... "
                                           "with hard links (copies across devices); the "
                                           "originals are never moved."),
    link_to: Optional[Path] = typer.Option(None, "--link-to", help="Also build DIR/SPLIT/... "
                                           "with symbolic links."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: "
                                         "FIRST_FOLDER/.lookalike/index.db)."),
    method: str = typer.Option("auto", "--method", "-m", help="How duplicates are found "
                               "(as in dupes)."),
    linkage: str = typer.Option(DEFAULT_LINKAGE, "--linkage", "-l",
                                help="How pairs make groups (as in dupes); connected keeps "
                                "every chain of look-alikes together."),
    do_scan: bool = typer.Option(True, "--scan/--no-scan", help="Scan the folders first "
                                 "(incremental), or use the index as it is."),
    where: list[str] = typer.Option([], "--where", help="Only files whose metadata has "
                                    "KEY=VALUE; repeatable."),
    stratify: Optional[str] = typer.Option(None, "--stratify", help="Metadata KEY (e.g. "
                                           "category) whose values each split in the ratios."),
) -> None:
    """Write a train/val/test split in which no duplicate group spans two splits."""
    _check_folders(folders)
    if out_file.suffix.lower() not in (".csv", ".json"):
        raise _fail("--out must end in .csv or .json", USAGE)
    if copy_to and link_to:
        raise _fail("give --copy-to or --link-to, not both", USAGE)
    shares = _parse_ratios(ratios)
    chosen = [n.strip() for n in names.split(",")] if names else None
    conditions = _where(where)
    path = _index_for(folders, index)
    try:
        split_names(len(shares), chosen)  # a usage error before any scanning
        if do_scan:
            _scan_folders(folders, path, method)
        with open_index(path) as idx:
            result = plan_split(idx, shares, [str(f) for f in folders], chosen, seed, method,
                                linkage, conditions, stratify)
        written = 0
        if copy_to or link_to:
            written = materialise(result, copy_to or link_to,
                                  "hardlink" if copy_to else "symlink")
    except LookalikeError as exc:
        raise _translate(exc)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(split_json(result) if out_file.suffix.lower() == ".json"
                        else split_csv(result))
    _print_split(result, out_file, written)
    raise typer.Exit(OK)


def _print_split(result: Split, out_file: Path, written: int) -> None:
    targets = result.targets()
    for name, count in result.counts().items():
        out.print(f"{name}: {count:,} files (target {targets[name]:,.1f})")
    units = len({a.group for a in result.files})
    out.print(f"{len(result.files):,} files in {units:,} groups and singletons (largest "
              f"{result.largest_group}); wrote {escape(str(out_file))}"
              + (f", {written:,} files linked" if written else ""))


def split_csv(result: Split) -> str:
    return csv_text(SPLIT_COLUMNS, (a.to_dict() for a in result.files))


def split_json(result: Split) -> str:
    return json.dumps(result.to_dict(), indent=2)
