"""Scan sources into the index: incremental, multi-core, resumable."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .arguments import MAX_WORKERS, as_paths, in_range
from .errors import RunnerError, SourceError
from .index.store import Index, KnownFile, default_index_path, open_index
from .methods.registry import CASCADE_HASHES, get_spec
from .runners import check_runner
from .runners.local import chunks
from .runners.local import make_pool as _executor
from .runners.actors import MAX_GPUS
from .runners.ray import run_shards
from .runners.shards import SHARD_FILES, SHARDS_DIR, ShardReport, cut_shards, read_shard
from .runners.shards import recorded, shard_folder
from .settings import setting
from .sources.folders import WalkOptions, walk
from .sources.files import refs_from_paths
from .sources.remote import as_root, is_remote
from .types import Failure, FileRef, Scanned, Skipped
from .worker import process_chunk
from .methods.embedding import NAME, active_model, method_name, register_model, split_name

log = logging.getLogger(__name__)

# The default signature set: cheap and, together, the best measured precision/recall
# (docs/methods.md, "Choosing a method"). "pixels" (exact) is always added. "health" is no matching
# method: the numbers `stats` checks (report/health.py), 0.1 ms a picture on its grey image.
DEFAULT_METHODS = (*CASCADE_HASHES, "colour", "health")
# The two modes a user chooses in one word (README, "Fast or thorough"): the default, and a
# copy-detection descriptor with local features, judged by one rule (search/decide.py).
THOROUGH_MODEL = "sscd-distilled"
MODES = {"fast": DEFAULT_METHODS,
         "thorough": (*DEFAULT_METHODS, "local", f"embed@{THOROUGH_MODEL}")}
BATCH = 1024  # paths looked up in the index at once
# Results are written in transactions of at least WRITE_ROWS files, or after WRITE_SECONDS
# (the first chunk at once): a commit per 48-file chunk took 15% more CPU and 20-40% more
# time in the main process's writes (bench/README.md, "Where the default scan's time goes").
WRITE_ROWS, WRITE_SECONDS = 512, 1.0
MAX_SKIPPED_LISTED = 1000  # skipped names kept for the summary (all are counted)

Progress = Callable[[int, int | None], None]


@dataclass
class ScanSummary:
    run_id: int
    index_path: Path
    seen: int = 0
    scanned: int = 0  # read and (where needed) signed this run
    unchanged: int = 0
    moved: int = 0
    other: int = 0  # not images
    vanished: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # at most MAX_SKIPPED_LISTED ...
    skipped_count: int = 0  # ... of this many

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict:
        return {"scanned": self.scanned, "unchanged": self.unchanged, "moved": self.moved,
                "failed": self.failed, "not_images": self.other, "vanished": self.vanished,
                "skipped": self.skipped_count, "seen": self.seen}

    def to_dict(self) -> dict:
        """As `scan --format json` prints it: the counts (as_dict, which the index's run
        record keeps) and the files that failed or were skipped."""
        return self.as_dict() | {
            "index": str(self.index_path.resolve()),
            "failures": [f.to_dict() for f in self.failures],
            "skipped_files": [f.to_dict() for f in self.skipped]}

    def note_skipped(self, items: list[Skipped]) -> None:
        self.skipped_count += len(items)
        self.skipped.extend(items[:max(0, MAX_SKIPPED_LISTED - len(self.skipped))])


def resolve_methods(names: Iterable[str] | None) -> tuple[str, ...]:
    """The method names a scan computes; a plain "embed" is checked once the index is open
    (it means the index's active model, see _with_active_model)."""
    chosen = list(names) if names else list(DEFAULT_METHODS)
    for name in chosen:
        if name != "embed":
            get_spec(name)  # raises UnknownMethodError with the known names
    return tuple(dict.fromkeys(["pixels", *chosen]))


def with_mode(methods: Iterable[str] | None, mode: str | None) -> list[str] | None:
    """`methods` with those of `mode` (MODES) in front; None stays None without a mode."""
    if mode is None:
        return None if methods is None else list(methods)
    if mode not in MODES:
        raise SourceError(f"unknown mode {mode!r}: choose {' or '.join(MODES)}")
    return list(dict.fromkeys([*MODES[mode], *(methods or ())]))


def _with_active_model(index: Index, names: tuple[str, ...]) -> tuple[str, ...]:
    """A plain "embed" becomes the index's active model (one `lookalike train` registered,
    or the last one scanned with); with none, the shipped default."""
    if "embed" not in names:
        return names
    named = tuple(method_name(active_model(index)) if n == "embed" else n for n in names)
    for name in named:
        get_spec(name)  # the model must be found before any work starts
    return named


def scan(roots: Sequence[str | os.PathLike] = (), *, paths: Iterable[str] = (),
         index_path: str | os.PathLike | None = None, methods: Iterable[str] | None = None,
         options: WalkOptions = WalkOptions(), workers: int | None = None,
         progress: Progress | None = None, count_first: bool = False,
         mode: str | None = None, runner: str = "local", ray_address: str | None = None,
         shard_files: int = SHARD_FILES, ray_gpus: int | None = None,
         shard_dir: str | os.PathLike | None = None, shards_only: bool = False) -> ScanSummary:
    """Index the images under `roots` (folders or files) and in `paths`. `mode`: "fast"
    (the default methods) or "thorough" (MODES), added to any `methods`. `runner`: "local"
    (a process pool of `workers`) or "ray" (a Ray cluster at `ray_address`: None starts or
    joins a local instance, "auto" joins RAY_ADDRESS), in shards of `shard_files` files;
    a model method (the thorough mode's descriptor) runs there on `ray_gpus` GPUs, one actor
    each, beside the CPU tasks (None: every GPU the cluster has; 0: only in the CPU tasks).
    The tasks write their shards into
    `shard_dir` (default: `shards/` beside the index; a folder every node sees, or a URL such
    as s3://bucket/shards, with the credentials in every node's environment), which the
    driver merges into the index, unless `shards_only`: then they stay in their files (and no
    file is marked vanished, the index not being brought up to date)."""
    roots = [as_root(r) for r in as_paths(roots, "roots")]  # URLs stay URLs
    paths = as_paths(paths, "paths")
    in_range(workers, 1, MAX_WORKERS, "workers")
    in_range(shard_files, 1, 1 << 20, "shard_files")
    in_range(ray_gpus, 0, MAX_GPUS, "ray_gpus")
    if shards_only and runner != "ray":
        raise SourceError("shards only (--shards-only) is for --runner ray")
    if shard_dir is not None and is_remote(os.fspath(shard_dir)):
        as_root(os.fspath(shard_dir))  # a URL's package must be here (and no password in it)
    check_runner(runner)
    names = resolve_methods(with_mode(methods, mode))
    if index_path is None:
        if not roots:
            raise SourceError("give an index path when scanning only a list of paths")
        if is_remote(roots[0]):
            raise SourceError(f"give an index path (--index) to scan {roots[0]}: "
                              "the index is a local file")
        first = roots[0] if os.path.isdir(roots[0]) else os.path.dirname(roots[0])
        index_path = default_index_path(first)
    index = open_index(index_path, create=True)
    try:
        index.acquire()
        names = _with_active_model(index, names)
        _register_models(index, names)
        run_id = index.begin_run(roots, names)
        summary = ScanSummary(run_id, Path(index_path))
        total = _count(roots, paths, options) if count_first else None
        sources = _sources(roots, paths, options)
        workers = workers or os.cpu_count() or 1
        if runner == "ray":
            _run_sharded(index, run_id, names, sources, summary, progress, total,
                         ray_address, shard_files, ray_gpus, shard_dir, not shards_only)
        else:
            with _executor(workers, index.lock_fd) as pool:
                _run(index, run_id, names, sources, pool, workers, summary, progress, total)
        folder_roots = [r for r in roots if os.path.isdir(r)] + _listed_urls(roots, summary)
        if folder_roots and not shards_only:
            summary.vanished = index.mark_vanished(run_id, folder_roots)
        summary.moved = index.count_moved(run_id)
        index.copy_ingest_meta()  # files downloaded by `lookalike ingest` get their metadata
        index.finish_run(run_id, summary.as_dict())
        return summary
    finally:
        index.close()


def _register_models(index: Index, names: Sequence[str]) -> None:
    """Record the embedding model a scan uses, so later queries embed with the same one."""
    for name in names:
        base, model = split_name(name)
        if base == NAME:
            register_model(index, model)


def _sources(roots, paths, options) -> Iterator[FileRef | Failure | Skipped]:
    yield from walk(roots, options)
    yield from refs_from_paths(paths)


def _count(roots, paths, options) -> int:
    return sum(1 for item in _sources(roots, paths, options) if isinstance(item, FileRef))


def _run(index: Index, run_id: int, names, sources, pool: Executor, workers: int,
         summary: ScanSummary, progress: Progress | None, total: int | None) -> None:
    specs = [get_spec(n) for n in names]
    in_flight: deque[Future] = deque()
    done = _Done(progress, total)
    unwritten: list[Scanned] = []
    written = float("-inf")  # time.monotonic() of the last write (none: write at once)
    # Fork the workers before the walk lists a folder: forked later, each copied the listing
    # (the garbage collector writes to every object it tracks): 16 MB each at 50k files.
    gc.freeze()  # ... and its objects: then the workers' collections leave them shared
    try:
        pool.submit(int).result()
    finally:
        gc.unfreeze()

    def drain(limit: int) -> None:
        nonlocal written
        while len(in_flight) > limit:
            unwritten.extend(in_flight.popleft().result())
            if (len(unwritten) >= WRITE_ROWS or not in_flight
                    or time.monotonic() - written >= WRITE_SECONDS):
                _write(index, run_id, unwritten, summary)
                done.add(len(unwritten))
                unwritten.clear()
                written = time.monotonic()

    for _, todo in _admitted(index, run_id, sources, specs, summary, done.add):
        for chunk in chunks(todo):
            in_flight.append(pool.submit(process_chunk, chunk, names, str(index.path)))
            drain(2 * workers + 2)
    drain(0)


def _admitted(index: Index, run_id: int, sources: Iterator, specs, summary: ScanSummary,
              skipped: Callable[[int], None]) -> Iterator[tuple[list[FileRef], list[FileRef]]]:
    """The walk a batch at a time through _admit: (its files, those to process); `skipped`
    is told how many of a batch need no work (for the progress count)."""
    while batch := list(islice(sources, BATCH)):
        refs, todo = _admit(index, run_id, batch, specs, summary)
        if len(todo) < len(refs):
            skipped(len(refs) - len(todo))
        yield refs, todo


def _admit(index: Index, run_id: int, batch: list, specs,
           summary: ScanSummary) -> tuple[list[FileRef], list[FileRef]]:
    """A batch of the walk: failures written, unchanged files marked seen; returns its
    files and those of them to (re)process."""
    refs = [item for item in batch if isinstance(item, FileRef)]
    walk_failures = [item for item in batch if isinstance(item, Failure)]
    summary.note_skipped([item for item in batch if isinstance(item, Skipped)])
    if walk_failures:
        _write(index, run_id, [Scanned(FileRef(f.path, 0, 0), b"", "image", failure=f)
                               for f in walk_failures], summary)
    summary.seen += len(refs)
    todo, unchanged = _split(index, refs, specs)
    if unchanged:
        with index.transaction() as conn:
            index.mark_seen(conn, run_id, [row.id for _, row in unchanged])
        for path, row in unchanged:
            if row.status == "failed":  # still failing: report it again
                summary.failures.append(Failure(path, row.stage or "", row.error or ""))
            elif row.status == "other":
                summary.other += 1
            else:
                summary.unchanged += 1
    return refs, todo


def _run_sharded(index: Index, run_id: int, names, sources, summary: ScanSummary,
                 progress: Progress | None, total: int | None, address: str | None,
                 shard_files: int, gpus: int | None = None,
                 shard_dir: str | os.PathLike | None = None, merge: bool = True) -> None:
    """The Ray runner's scan: shards cut from the walk as it streams (never the whole list in
    memory), each computed by a task that writes its own file into the shard folder; the
    driver merges each file into the index as its task reports it, or with `merge` False only
    counts it (the index then holds the run and the unchanged files, the shards the rest)."""
    specs = [get_spec(n) for n in names]
    folder = shard_folder(shard_dir or index.path.parent / SHARDS_DIR, names, shard_files)
    done = _Done(progress, total)

    def walked() -> Iterator[tuple[FileRef, bool]]:
        for refs, todo in _admitted(index, run_id, sources, specs, summary, done.add):
            wanted = {ref.path for ref in todo}
            for ref in refs:
                yield ref, ref.path in wanted

    shards = recorded(cut_shards(walked(), names, folder, shard_files), folder)
    kill_marker = setting("LOOKALIKE_TEST_KILL_SHARD")
    for shard, report in run_shards(shards, names, address, kill_marker=kill_marker, gpus=gpus):
        if merge:
            records = read_shard(shard.path, shard.refs)
            if records is None:
                raise RunnerError(f"shard {shard.path} was written on the cluster but cannot be "
                                  "read here: give a shard folder every node and this machine "
                                  "share (--shard-dir)")
            _write(index, run_id, records, summary)
        else:
            _note_report(report, summary)
        done.add(report.rows)


class _Done:
    """The files finished so far, told to the progress callback as they add up."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.count, self.progress, self.total = 0, progress, total

    def add(self, count: int) -> None:
        self.count += count
        if self.progress:
            self.progress(self.count, self.total)


def _note_report(report: ShardReport, summary: ScanSummary) -> None:
    """A shard left unmerged (scan --shards-only) counted as _write counts its records."""
    summary.failures.extend(report.failures)
    summary.other += report.other
    summary.scanned += report.scanned


def _split(index: Index, refs: list[FileRef],
           specs) -> tuple[list[FileRef], list[tuple[str, KnownFile]]]:
    """Files to (re)process, and those unchanged since they were last scanned."""
    known = index.lookup_files([r.path for r in refs])
    same: dict[str, KnownFile] = {}
    for ref in refs:
        row = known.get(ref.path)
        if (row and row.size == ref.size and row.mtime_ns == ref.mtime_ns
                and row.status in ("ok", "failed", "other")):
            same[ref.path] = row
    incomplete = index.contents_missing(
        [r.content_id for r in same.values() if r.status == "ok" and r.content_id], specs)
    todo, unchanged = [], []
    for ref in refs:
        row = same.get(ref.path)
        if row is None or (row.status == "ok" and row.content_id in incomplete):
            todo.append(ref)
        else:
            unchanged.append((ref.path, row))
    return todo, unchanged


def _write(index: Index, run_id: int, results: Sequence[Scanned], summary: ScanSummary) -> None:
    with index.transaction() as conn:
        index.write_scanned(conn, run_id, results)
    for item in results:
        if item.failure:
            summary.failures.append(item.failure)
            log.info("failed: %s (%s: %s)", item.ref.path, item.failure.stage,
                     item.failure.reason)
        elif item.kind == "other":
            summary.other += 1
        else:
            summary.scanned += 1


def _listed_urls(roots: Sequence[str], summary: ScanSummary) -> list[str]:
    """The URL roots whose listing worked: their files not seen this run are vanished (a
    root that could not be listed, say for want of credentials, marks nothing)."""
    failed = {f.path for f in summary.failures if f.stage == "walk"}
    return [r for r in roots if is_remote(r) and r not in failed]
