"""`lookalike` commands: the entry point, the scan/dupes/query family, and the registration
of every other command module (which import only cli/common.py, never this file). Library
errors become messages and exit codes in common.py, nowhere else; exit codes are listed there.
"""

from __future__ import annotations

import json
import logging
import sys
from shlex import quote
import time
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..actions.follow import catch_up
from ..actions.keeper import keepers
from ..errors import LookalikeError
from ..settings import setting
from ..index.store import display_path, open_index
from ..methods.embedding import method_name as embed_method_name
from ..methods.registry import list_methods, method_origin
from ..plugins import BUILTIN
from ..report import output
from ..runners import check_runner
from ..runners.shards import SHARDS_DIR
from ..scan import DEFAULT_METHODS, MODES, with_mode
from ..search.options import SearchOptions
from ..search.dupes import (DEFAULT_LINKAGE, find_groups, find_pairs, groups_across,
                            groups_of, pairs_across, searched)
from ..search.evidence import evidence_of
from ..search.partial import containment_pairs
from ..search.in_shards import search_shards
from ..report.words import pair_words
from ..search.query import query as run_query
from ..sources.files import read_path_list
from ..sources.folders import WalkOptions
from ..sources.remote import is_remote
from . import options, tables
from .common import (DUPES_FOUND, OK, PARTIAL, USAGE, Format, _emit, _fail,
                     _index_path, _peak_mb, _scan_with_progress, _split_methods, _translate,
                     _where, app, err, out)

Mode = Enum("Mode", {name: name for name in MODES}, type=str)


def _with_model(methods: Optional[list[str]], model: Optional[str]) -> Optional[list[str]]:
    """`--model` turns "embed" into that model's method name (and asks for it)."""
    if model is None:
        return methods
    chosen = list(methods or DEFAULT_METHODS)
    if "embed" not in chosen:
        chosen.append("embed")
    return [embed_method_name(model) if m == "embed" else m for m in chosen]


@app.command()
def scan(
    # parser=str: the values stay strings (help still says PATH), so that a URL root
    # (s3://b/p) keeps the "//" that Path would fold
    roots: list[Path] = typer.Argument(None, parser=str, help="Folders or files to scan."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: "
                                         "FIRST_FOLDER/.lookalike/index.db)."),
    method: Optional[list[str]] = typer.Option(
        None, "--method", "-m", help=f"Signatures to compute, comma-separated "
        f"(default: {','.join(DEFAULT_METHODS)}; exact hashes always)."),
    include: list[str] = typer.Option([], "--include", help="Only files matching this glob."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files/folders matching."),
    hidden: bool = typer.Option(False, "--hidden", help="Also scan names starting with '.'."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                         help="Follow symbolic links (loop-safe)."),
    from_file: Optional[str] = typer.Option(
        None, "--from-file", help="Read paths from FILE, one per line ('-': stdin)."),
    null: bool = typer.Option(False, "--null", "-0", help="Paths in --from-file end with NUL."),
    workers: Optional[int] = options.WORKERS,
    fmt: Format = typer.Option(Format.table, "--format", help="Summary as table or json."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model for --method "
                                        "embed: a registered name or an .onnx file with its "
                                        "sidecar (default: the shipped lookalike-copy-v1)."),
    mode: Optional[Mode] = typer.Option(None, "--mode", help="fast (the default: hashes) or "
                                        "thorough (adds the SSCD copy descriptor and local "
                                        "features; finds heavy edits, 3-5x slower)."),
    runner: str = options.RUNNER,
    ray_address: Optional[str] = options.RAY_ADDRESS,
    shard_files: int = options.SHARD_FILES,
    ray_gpus: Optional[int] = options.RAY_GPUS,
    shard_dir: Optional[str] = options.SHARD_DIR,  # str: a URL keeps its "//"
    shards_only: bool = options.SHARDS_ONLY,
    strict: bool = options.STRICT,
) -> None:
    """Index images: incremental, a re-run only looks at what changed. Files that cannot be
    read are listed with their reason; the exit code is 0 unless --strict."""
    roots = roots or []
    try:
        check_runner(runner)
        methods_asked = _with_model(with_mode(_split_methods(method),
                                              mode.value if mode else None), model)
    except LookalikeError as exc:
        raise _translate(exc)
    paths: list[str] = []
    if from_file:
        stream = sys.stdin.buffer if from_file == "-" else open(from_file, "rb")
        with stream:
            paths = list(read_path_list(stream, null_separated=null))
    if not roots and not paths:
        raise _fail("give at least one folder, or --from-file", USAGE)
    for root in roots:
        if not is_remote(root) and not Path(root).exists():  # a URL is listed by the scan
            raise _fail(f"no such file or folder: {root}", USAGE)
    if index is None and not roots:
        raise _fail("with only --from-file, give --index PATH", USAGE)
    options = WalkOptions(tuple(include), tuple(exclude), hidden, follow_symlinks)
    try:
        summary = _scan_with_progress(roots, paths, index, methods_asked, options, workers,
                                      runner=runner, ray_address=ray_address,
                                      shard_files=shard_files, ray_gpus=ray_gpus,
                                      shard_dir=shard_dir, shards_only=shards_only)
    except LookalikeError as exc:
        raise _translate(exc)
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume", 130)
    if fmt is Format.json:
        _emit(json.dumps(summary.to_dict(), indent=2))
    else:
        _print_summary(summary)
        if shards_only:
            folder = shard_dir or str(Path(summary.index_path).parent / SHARDS_DIR)
            err.print(f"the shards stay unmerged; search them where they lie with: lookalike "
                      f"dupes --shards {escape(quote(folder))} --runner ray"
                      + (f" --ray-address {escape(ray_address)}" if ray_address else ""))
    raise typer.Exit(PARTIAL if strict and summary.failures else OK)


def _print_summary(summary) -> None:
    s = summary
    out.print(f"scanned {s.scanned:,}  unchanged {s.unchanged:,}  moved {s.moved:,}  "
              f"failed {s.failed:,}  not images {s.other:,}  vanished {s.vanished:,}"
              + (f"  skipped {s.skipped_count:,}" if s.skipped_count else ""))
    out.print(f"index: {display_path(str(s.index_path))}", markup=False)
    for f in s.failures[:20]:
        err.print(f"  failed: {escape(display_path(f.path))}: {escape(f.reason)}")
    for reason, n in Counter(f.reason for f in s.skipped).most_common():
        err.print(f"  skipped {n:,}: {escape(reason)}")
    if len(s.failures) > 20:
        err.print(f"  ... and {len(s.failures) - 20:,} more (lookalike dupes --format json "
                  "lists them all)")


@app.command()
def dupes(
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    method: str = typer.Option("auto", "--method", "-m",
                               help="auto, bytes, pixels, embed, or a hash (phash, pdq, ...)."),
    max_distance: Optional[int] = options.MAX_DISTANCE,
    fmt: Format = typer.Option(Format.table, "--format", help="Output as table, json or csv."),
    pairs: bool = typer.Option(False, "--pairs", help="List pairs instead of groups."),
    linkage: str = typer.Option(DEFAULT_LINKAGE, "--linkage", "-l",
                                help="How pairs make groups: connected (any chain), complete "
                                "(every two members match) or star (all match one member)."),
    fail_on_dupes: bool = typer.Option(False, "--fail-on-dupes",
                                       help="Exit with 1 when duplicates are found."),
    verify: bool = typer.Option(False, "--verify", help="Keep only hash pairs that local "
                                "features confirm (needs 'scan --method local')."),
    partial: bool = typer.Option(False, "--partial", help="List pictures that appear inside "
                                 "others (crops, collages), from local features."),
    no_calibration: bool = typer.Option(False, "--no-calibration",
                                        help="Ignore radii stored by 'lookalike calibrate'."),
    min_similarity: Optional[float] = typer.Option(
        None, "--min-similarity", "-s", min=-1.0, max=1.0,
        help="Least cosine similarity of embedding pairs (default: calibrated, or the "
        "model's)."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model (default: the "
                                        "one the index was scanned with)."),
    where: list[str] = typer.Option([], "--where", help="Only files whose metadata has "
                                    "KEY=VALUE (from 'ingest --keep-columns'); repeatable, "
                                    "all must hold."),
    across: Optional[str] = typer.Option(None, "--across", help="Only groups (pairs) whose "
                                         "files differ in metadata KEY (e.g. duplicates "
                                         "across categories)."),
    keep: str = options.KEEP,
    prefer_path: list[Path] = options.PREFER_PATH,
    reference: list[Path] = options.REFERENCE,
    no_marks: bool = options.NO_MARKS,
    runner: str = options.SEARCH_RUNNER,
    ray_address: Optional[str] = options.RAY_ADDRESS,
    shards: Optional[str] = typer.Option(
        None, "--shards", metavar="DIR", help="Search the shards of a 'scan --runner ray' "
        "(its --shard-dir, e.g. with --shards-only) where they lie, without an index: on "
        "the cluster with --runner ray, else here. Same groups as after merging them."),
) -> None:
    """Duplicate groups (or pairs) in the index. The default, auto, is a cascade: exact
    copies, then perceptual hashes, then embeddings where the index holds them."""
    start = time.perf_counter()
    conditions = _where(where)
    if partial and (conditions or across):
        raise _fail("--where and --across do not apply to --partial", USAGE)
    if shards is not None and (partial or across or conditions or verify):
        raise _fail("--partial, --across, --where and --verify need the index, not --shards",
                    USAGE)
    try:
        check_runner(runner)
        settings = SearchOptions(method, max_distance, linkage=linkage, verify=verify,
                                 calibrated=not no_calibration, similarity=min_similarity,
                                 model=model, where=conditions)
        if shards is not None:
            found = _dupes_in_shards(shards, settings, runner, ray_address, fmt, pairs)
            raise typer.Exit(DUPES_FOUND if (fail_on_dupes and found) else OK)
        index = _index_path(index)
        if warning := catch_up(index):  # a killed apply or undo: learn what it did first
            err.print(f"[yellow]warning[/]: {escape(warning)}")
        with open_index(index) as idx:
            failures = idx.failures()
            meta = idx.file_meta() if across else {}
            if partial:
                found = containment_pairs(idx)
                _print_partial(found, fmt)
            elif pairs:
                found = find_pairs(idx, options=settings, runner=runner,
                                   ray_address=ray_address)
                found = pairs_across(found, meta, across) if across else found
                _print_pairs(found, fmt)
            elif fmt is not Format.table:
                found = find_groups(idx, options=settings, runner=runner,
                                    ray_address=ray_address)
                found = groups_across(found, meta, across) if across else found
                _print_groups(found, failures, fmt)
            else:  # the table shows each group's keeper and how each file matched
                files, ids, parts = searched(idx, settings, runner, ray_address)
                found = groups_of(files, ids, parts, settings.linkage)
                evidence = evidence_of(found, files, ids, parts)
                found = groups_across(found, meta, across) if across else found
                chosen = keepers(idx, found, keep.split(","), [str(p) for p in prefer_path],
                                 [str(p) for p in reference], not no_marks)
                paths = [f.path for g in found for f in g.files]
                formats = {p: state[4] for p, state in idx.file_states(paths).items()}
                tables.print_groups(found, evidence, chosen, formats, failures)
    except LookalikeError as exc:
        raise _translate(exc)
    if fmt is Format.table:
        err.print(f"[dim]searched in {time.perf_counter() - start:.1f} s, "
                  f"peak memory {_peak_mb():,.0f} MB[/]")
    raise typer.Exit(DUPES_FOUND if (fail_on_dupes and found) else OK)


def _dupes_in_shards(folder: str, settings: SearchOptions, runner: str,
                     ray_address: str | None, fmt: Format, pairs: bool) -> list:
    """dupes --shards: the groups (or pairs) of the shards under `folder`, printed."""
    start = time.perf_counter()
    found = search_shards(folder, settings, runner, ray_address)
    if found.outside:
        err.print(f"[yellow]warning[/]: {found.outside:,} files of the walk were in the index "
                  "when it ran, not in the shards: they were not searched (dupes --index)")
    if pairs:
        listed = found.pairs()
        _print_pairs(listed, fmt)
        return listed
    groups = found.groups(settings.linkage)
    if fmt is not Format.table:
        _print_groups(groups, [], fmt)
        return groups
    evidence = evidence_of(groups, found.files, found.ids, found.parts)
    tables.print_groups(groups, evidence, [None] * len(groups), {}, [])
    err.print(f"[dim]searched {found.shards:,} shards ({found.pictures:,} pictures) "
              f"{'on the Ray cluster' if runner == 'ray' else 'here'} in "
              f"{time.perf_counter() - start:.1f} s, peak memory {_peak_mb():,.0f} MB[/]")
    return groups


def _print_groups(groups, failures, fmt: Format) -> None:
    if fmt is Format.json:
        _emit(output.groups_json(groups, failures))
    else:
        _emit(output.groups_csv(groups))


def _emitted(items, fmt: Format, to_json, to_csv) -> bool:
    """Write `items` as JSON or CSV when `fmt` asks for it; False for the terminal table."""
    if fmt is Format.table:
        return False
    _emit(to_json(items) if fmt is Format.json else to_csv(items))
    return True


def _print_listed(items, fmt: Format, to_json, to_csv, line) -> None:
    """A list of pairs as JSON, CSV, or one `line` each on the terminal and a count."""
    if not _emitted(items, fmt, to_json, to_csv):
        for item in items:
            out.print(line(item))
        out.print(f"{len(items):,} pairs")


def _print_pairs(pairs, fmt: Format) -> None:
    _print_listed(pairs, fmt, output.pairs_json, output.pairs_csv,
                  lambda m: f"{escape(display_path(m.a))}  ~  {escape(display_path(m.b))}  "
                            f"[dim]{escape(pair_words(m))}[/]")


RELATION_WORDS = {"same": "same picture as", "inside": "appears inside", "overlap": "overlaps"}


def _print_partial(found, fmt: Format) -> None:
    _print_listed(found, fmt, output.partial_json, output.partial_csv,
                  lambda p: f"{escape(display_path(p.inner))}  {RELATION_WORDS[p.relation]}  "
                            f"{escape(display_path(p.outer))}  [dim]{p.describe()}"
                            f", box {_box(p.box)}[/]")


def _box(box) -> str:
    return "-" if box is None else ",".join(f"{c:.0f}" for c in box)


def _print_lookups(results, fmt: Format, to_json, to_csv, lines) -> None:
    """Per looked-up file: JSON, CSV, or its `lines` on the terminal; then exit with
    PARTIAL if some file could not be read."""
    if not _emitted(results, fmt, to_json, to_csv):
        for r in results:
            name = escape(display_path(r.path))
            if r.failure:
                out.print(f"{name}: [red]cannot read[/]: {escape(r.failure.reason)}")
                continue
            first, *rest = lines(r)
            out.print(f"{name}: {first}")
            for line in rest:
                out.print(line)
    raise typer.Exit(PARTIAL if any(r.failure for r in results) else OK)


@app.command("find-in")
def find_in(
    files: list[Path] = typer.Argument(..., help="Pictures to look inside (collages, pages, "
                                       "screenshots)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    limit: int = options.limit("Matches per picture at most."),
    fmt: Format = typer.Option(Format.table, "--format", help="Output as table, json or csv."),
) -> None:
    """Which indexed pictures appear inside these pictures, where, and how transformed."""
    from ..search.find_in import find_in as run_find_in

    try:
        with open_index(_index_path(index)) as idx:
            results = run_find_in(idx, [str(f) for f in files], limit=limit)
    except LookalikeError as exc:
        raise _translate(exc)
    def lines(r) -> list[str]:
        return [f"{len(r.matches)} indexed picture(s) inside"] + [
            f"  {escape(display_path(m.path))}  [dim]at {_box(m.verification.box_in_b)}, "
            f"{m.describe()}[/]" for m in r.matches]

    _print_lookups(results, fmt, output.find_in_json, output.find_in_csv, lines)


@app.command()
def query(
    files: list[Path] = typer.Argument(..., help="Images to look up."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    method: str = typer.Option("auto", "--method", "-m",
                               help="auto, bytes, pixels, embed, or a hash (phash, pdq, ...)."),
    max_distance: Optional[int] = options.MAX_DISTANCE,
    limit: int = options.limit("Matches per picture at most."),
    nearest: Optional[int] = typer.Option(
        None, "--nearest", min=1, max=options.MAX_LIMIT,
        help="List the K closest pictures by the hash whatever their distance (no radius, no "
        "confirming hash)."),
    fmt: Format = typer.Option(Format.table, "--format", help="Output as table, json or csv."),
    no_calibration: bool = typer.Option(False, "--no-calibration",
                                        help="Ignore radii stored by 'lookalike calibrate'."),
    min_similarity: Optional[float] = typer.Option(
        None, "--min-similarity", "-s", min=-1.0, max=1.0,
        help="Least cosine similarity of embedding matches."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model (default: the "
                                        "one the index was scanned with)."),
) -> None:
    """Is this image already in the index? Which file, how close, which orientation."""
    try:
        with open_index(_index_path(index)) as idx:
            settings = SearchOptions(method, max_distance, calibrated=not no_calibration,
                                     similarity=min_similarity, model=model)
            results = run_query(idx, [str(f) for f in files], limit=max(limit, nearest or 0),
                                nearest=nearest, options=settings)
    except LookalikeError as exc:
        raise _translate(exc)
    def lines(r) -> list[str]:
        if not r.matches:
            return ["no match"]
        return [f"{len(r.matches)} match(es)"] + [
            f"  {escape(display_path(m.b))}  [dim]{escape(pair_words(m))}[/]"
            for m in r.matches]

    _print_lookups(results, fmt, output.query_json, output.query_csv, lines)


@app.command()
def methods() -> None:
    """The signature methods lookalike knows, with their default match radius."""
    for spec in list_methods():
        if spec.kind == "vector":
            match = f"{spec.bits // 16:4} dims  similarity >= {spec.similarity:.2f}"
        else:
            match = f"{spec.bits:4} bits  radius {spec.default_radius:3}"
        origin = method_origin(spec.name)  # "lookalike", or the plugin that added it
        plugin = "" if origin == BUILTIN else f"  [dim](plugin {escape(origin)})[/]"
        out.print(f"{spec.name:10} {match}  {escape(spec.description)}{plugin}")


@app.command()
def sample(dest: Path = typer.Argument(..., help="Folder to create."),
           count: int = typer.Option(40, "--count", min=2, max=2000,
                                      help="Distinct source pictures (2 to 2,000).")) -> None:
    """Build a small sample collection with planted duplicates (for trying lookalike)."""
    from ..sample import build_sample

    manifest = build_sample(dest, count)
    out.print(f"wrote {len(manifest)} images to {escape(str(dest))} "
              f"(manifest: {escape(str(dest / 'manifest.json'))})")


from . import evaluate  # noqa: E402,F401  (registers calibrate and eval on app)
from . import models  # noqa: E402,F401  (registers the models commands on app)
from . import train  # noqa: E402,F401  (registers the train command on app)
from . import report  # noqa: E402,F401  (registers the stats and report commands on app)
from . import ingest  # noqa: E402,F401  (registers the ingest command on app)
from . import leakage  # noqa: E402,F401  (registers the cross and split commands on app)
from . import serve  # noqa: E402,F401  (registers the serve command on app)
from . import actions  # noqa: E402,F401  (registers plan, apply, undo, decide on app)
from . import config  # noqa: E402  (registers config; its apply_file gives commands defaults)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"lookalike {__version__}", markup=False)
        raise typer.Exit(OK)


@app.callback()
def _options(ctx: typer.Context,
             version: bool = typer.Option(False, "--version", is_eager=True,
                                          callback=_print_version,
                                          help="Print the version and exit.")) -> None:
    """Find duplicate and near-duplicate images."""
    config.apply_file(ctx)  # lookalike.toml's defaults, before the command reads its options


def main() -> None:
    try:
        level = setting("LOOKALIKE_LOG")
    except LookalikeError:  # a bad configuration file: the app's callback says what is wrong
        level = "WARNING"
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    app()
