"""Duplicates of a scan's shards searched where they lie: the groups and pairs of `dupes` over
the Parquet shards of `scan --runner ray` (with `--shards-only`, nothing merged), without an
index, the same as merging the shards into an empty index and searching that.

The stages run as Ray tasks (runner "ray"), or one after another in this process ("local":
the same functions, for a reference and for shards copied to one machine):

1. load: one task per run of LOAD_SHARDS shards reads their files and keeps, for each
   picture (an image that decoded), its fixed-size codes (every Hamming method, `pixels`,
   `colour`), its file (path, size, width, height) and its byte hash. The result stays in
   the object store of the node that read it; the driver gets counts and the methods
   present.
2. keys and exact: one task per group of neighbouring shards (about one group per cluster
   CPU) cuts its pictures' exact keys (the `pixels` hash, or the byte hash where a picture
   has none) in one partition per CPU; one exact task per partition takes it from every
   group: files with the same bytes are one content, the first in walk order its row, the
   others its copies (as the index stores them); contents with the same pixels are
   `pixels` pairs.
3. pack and join: one task per group packs its contents' primary codes (copies and codes
   under the method's least quality left out) and counts their block values; one task
   concatenates the packs into one object, which every join task of the probed-block
   self-join of search/distributed.py (planned from the summed counts) reads in place; each
   join task applies the orientation rule, which needs only the two codes.
4. gather: one task per load holding a picture that a pair touches returns those pictures'
   confirm codes, colour thumbnails and files.
5. Here: the confirming hash and the colour check on the pairs (rule.confirmed,
   dupes.thumbnails_hold, the same functions as over an index), then the groups
   (dupes.groups_of) over the contents the pairs touch only.

Rows are numbered in walk order (the shards as the walk file lists them, each in its own
order), the order in which a local scan numbers contents, so ties fall the same way.

The driver holds the counts, the pairs and the files of the pictures in them; never the codes
or the file table. Each node running join tasks holds one copy of every content's primary
codes (80 bytes each with 8 variants of 64 bits, the identity code and the row: 8 GB at
100M), as the index's Ray join does (distributed.py).
Not built here: the thorough mode's descriptors, `--verify` and `--where` (they need the
index: merge the shards with a scan without --shards-only).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ..errors import LookalikeError, RunnerError
from ..index.records import Codes
from ..methods.registry import get_spec
from ..runners import check_runner
from ..runners import store
from ..runners.shards import WALK_FILE, read_columns, walk_of
from ..types import FileInfo, Group, Match
from . import distributed
from .binary import Hits, concat
from .dupes import ContentPairs, groups_of, matches_of, thumbnails_hold
from .options import DEFAULT_LINKAGE, SearchOptions
from .rule import EMBED, Rule, confirmed, orientation_rule, rule_of

COLOUR = "colour"
FAN_IN = 8  # block counts added up by one task
LOAD_SHARDS = 16  # shards one load task reads (8,192 pictures at 512 a shard)
PIXELS = "pixels"
_COLUMNS = ["path", "size", "content", "kind", "width", "height", "stage", "signatures"]


@dataclass
class ShardPart:
    """One shard's pictures as the search needs them; kept in the object store."""

    shard: int  # its place in the walk
    paths: list[str]
    sizes: np.ndarray  # (n,) int64
    widths: np.ndarray  # (n,) int32
    heights: np.ndarray
    digests: list[bytes]  # the byte hash of each
    codes: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> codes (n, V, nbytes) uint8
    # and quality (n,) float32, NaN where a picture has no signature of that method

    def info(self, row: int) -> FileInfo:
        return FileInfo(self.paths[row], int(self.widths[row]), int(self.heights[row]),
                        int(self.sizes[row]))


@dataclass
class ShardSearch:
    """What search_shards found, in the form dupes.groups_of and matches_of take: `files`
    and `ids` cover only the contents the pairs touch and those with byte copies."""

    files: dict[int, list[FileInfo]]
    ids: np.ndarray
    parts: list[ContentPairs]
    shards: int = 0
    pictures: int = 0  # pictures in the shards (copies included)
    contents: int = 0  # ... of distinct bytes
    outside: int = 0  # files of the walk the shards do not hold (the index held them)
    tasks: dict[str, int] = field(default_factory=dict)  # stage -> tasks run
    loaders: set[tuple[str, int]] = field(default_factory=set)  # (host, pid) that read shards

    def groups(self, linkage: str = DEFAULT_LINKAGE) -> list[Group]:
        return groups_of(self.files, self.ids, self.parts, linkage)

    def pairs(self) -> list[Match]:
        return matches_of(self.files, self.ids, self.parts)


def walked_shards(folder: str | os.PathLike) -> tuple[list[str], int]:
    """The shard files of the last whole walk under `folder` (a plan folder, or a shard folder
    holding plan folders: the one walked last; a local path or a URL), in walk order, and the
    files of that walk that they do not hold. LookalikeError when there is no walk or a
    shard is missing."""
    folder = store.resolved(folder)
    if not store.is_folder(folder):
        raise LookalikeError(f"{folder} is not a folder of shards")
    plans = [folder] if store.exists(store.join(folder, WALK_FILE)) else [
        store.parent(path) for path, _ in sorted(store.files_named(folder, f"*/{WALK_FILE}"),
                                                 key=lambda found: found[1])]
    if not plans:
        raise LookalikeError(f"{folder} holds no {WALK_FILE}: give the shard folder of a scan "
                             "with --runner ray (its --shard-dir, or shards/ beside its index)")
    try:
        walk = walk_of(plans[-1])
    except ValueError as exc:
        raise LookalikeError(str(exc)) from None
    paths, outside = [], 0
    for path, held, walked in walk or []:
        outside += walked - held
        if held == 0:
            continue
        if not store.exists(path):
            raise LookalikeError(f"shard {path} of the last walk is missing: run the same scan "
                                 "again (it computes only missing shards)")
        paths.append(path)
    return paths, outside


def search_shards(folder: str | os.PathLike, options: SearchOptions = SearchOptions(),
                  runner: str = "ray", ray_address: str | None = None) -> ShardSearch:
    """The content pairs of dupes (`options`: method, radii; linkage is for .groups()) over
    the shards of the last walk under `folder`, searched where they lie. `runner` "ray": on
    the cluster at `ray_address` (None: start or join a local instance); "local": here."""
    check_runner(runner)
    if options.verify or options.where or options.method == EMBED:
        raise LookalikeError("--verify, --where and --method embed need the index: merge the "
                             "shards (scan without --shards-only), then search it")
    paths, outside = walked_shards(folder)
    if runner != "ray":
        return _search(paths, options, _Here(), 1, outside)
    from ..runners.ray import ray_session

    with ray_session(ray_address) as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        try:
            return _search(paths, options, _OnRay(ray), cpus, outside)
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, LookalikeError):  # a task's own clear error
                raise type(cause)(str(cause)) from None
            raise RunnerError(f"the shard search failed on the Ray cluster: {exc}") from None


def _search(paths: list[str], options: SearchOptions, on, cpus: int,
            outside: int) -> ShardSearch:
    runs = [(start, paths[start:start + LOAD_SHARDS])
            for start in range(0, len(paths), LOAD_SHARDS)]
    loaded = [on.call(load_parts, run, start, returns=2) for start, run in runs]
    loads = [refs[0] for refs in loaded]  # each: a list of ShardPart, in the object store
    summaries = [summary for got in on.get([refs[1] for refs in loaded]) for summary in got]
    groups = _groups(loads, cpus)
    counts = np.asarray([s[0] for s in summaries], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    present = set().union(*(s[1] for s in summaries)) if summaries else set()
    loaders = {s[3] for s in summaries}
    if options.method == "auto" and any(s[2] for s in summaries):
        raise LookalikeError("these shards hold descriptors (the thorough mode): searching "
                             "them where they lie is not built; merge them (scan without "
                             "--shards-only), then run dupes on the index")
    rule = rule_of(present, options.method, options.max_distance, options.confirm_distance)
    tasks = {"load": len(loads), "keys": len(groups), "exact": cpus}
    copies, pixel_pairs = _exact_pairs(groups, offsets, on, cpus)
    if options.method not in ("auto", PIXELS):
        pixel_pairs = pixel_pairs[:0]
    copy_rows = np.unique(copies[:, 1])
    hits = _hash_hits(rule, groups, offsets, copy_rows, on, cpus, tasks) \
        if rule is not None else None
    rows = np.unique(np.concatenate([copies.ravel(), pixel_pairs.ravel()]
                                    + ([hits.query, hits.item] if hits is not None else [])))
    picked = _gather(rows, loads, offsets, rule, on, tasks)
    files = _files(rows, copies, picked.infos)
    ids = np.asarray(sorted(files), dtype=np.int64)
    out = [] if options.method not in ("auto", PIXELS) else [ContentPairs(
        np.searchsorted(ids, pixel_pairs[:, 0]), np.searchsorted(ids, pixel_pairs[:, 1]),
        np.zeros(len(pixel_pairs), np.int32), np.zeros(len(pixel_pairs), np.int8), PIXELS)]
    if hits is not None:
        if picked.confirm is not None:  # else no pair has confirm codes on both sides: kept
            hits = hits.take(confirmed(rule, None, hits.query, hits.item, hits.variant,
                                       codes=picked.confirm))
        if picked.colour is not None:
            hits = hits.take(thumbnails_hold(None, hits.query, hits.item, hits.variant,
                                             codes=picked.colour))
        out.append(ContentPairs(np.searchsorted(ids, hits.query),
                                np.searchsorted(ids, hits.item), hits.distance, hits.variant,
                                rule.primary.name))
    return ShardSearch(files, ids, out, len(paths), int(offsets[-1]),
                       int(offsets[-1]) - copy_rows.size, outside, tasks, loaders)


def _exact_pairs(groups: list[list], offsets: np.ndarray, on,
                 cpus: int) -> tuple[np.ndarray, np.ndarray]:
    """(content row, copy row) of byte copies and (row, row) pixels pairs, each (K, 2).
    Each group's task cuts its keys in `cpus` partitions, and one exact task takes one
    partition of every group (groups x cpus objects in all, each of many pictures)."""
    keyed = [on.call(key_partitions, cpus, offsets, *group, returns=cpus) for group in groups]
    exact = on.get([on.call(exact_keys, offsets, *(refs[p] for refs in keyed))
                    for p in range(cpus)])
    return _pairs_of([e[0] for e in exact]), _pairs_of([e[1] for e in exact])


def _files(rows: np.ndarray, copies: np.ndarray,
           infos: dict[int, FileInfo]) -> dict[int, list[FileInfo]]:
    """content row -> its files (a copy's file under its content's row), paths sorted."""
    canonical = dict(zip(copies[:, 1].tolist(), copies[:, 0].tolist()))
    files: dict[int, list[FileInfo]] = {}
    for row in rows.tolist():
        files.setdefault(canonical.get(row, row), []).append(infos[row])
    for listed in files.values():
        listed.sort(key=lambda f: f.path)
    return files


def _groups(parts: list, cpus: int) -> list[list]:
    """The parts cut in about `cpus` runs of neighbours (one task each)."""
    size = max(1, -(-len(parts) // cpus))
    return [parts[s:s + size] for s in range(0, len(parts), size)]


def _hash_hits(rule: Rule, groups: list[list], offsets: np.ndarray, copy_rows: np.ndarray,
               on, cpus: int, tasks: dict[str, int]) -> Hits:
    """The rule's primary self-join over the contents, under the orientation rule; rows are
    global (walk order). Each group's task packs its contents' primary codes into one object
    (all a join task takes of them) and counts their block values for the plan."""
    spec = rule.primary
    n = int(offsets[-1])
    plan = distributed.make_plan(max(1, n) * spec.variants, -(-spec.bits // 64) * 64,
                                 rule.radius)
    packed = [on.call(pack_codes, spec.name, plan, offsets, copy_rows, *group, returns=2)
              for group in groups]
    # The block counts (2^width values a block: 2 x 4 x 8 MB at 1M pictures, more at 100M)
    # are added up by tasks, FAN_IN at a time, and planned by a task: the driver gets the
    # join's task list only.
    level = [refs[1] for refs in packed]
    while len(level) > 1:
        level = [on.call(add_counts, *level[s:s + FAN_IN])
                 for s in range(0, len(level), FAN_IN)]
    planned = on.get(on.call(plan_join, plan, distributed.TASKS_PER_CPU * cpus,
                             level[0])) if level else []
    tasks["pack"], tasks["join"] = len(groups), len(planned)
    # One object of all the packed codes, made by a task: each node's join tasks then read
    # one copy in its object store (no copy of their own), as the index's Ray join does.
    codes = on.call(concat_packed, *(refs[0] for refs in packed))
    found = on.get([on.call(join_task, rule, plan, task, codes) for task in planned])
    return distributed.sorted_hits(concat(found))


@dataclass
class _Picked:
    infos: dict[int, FileInfo]
    confirm: Codes | None
    colour: Codes | None


def _gather(rows: np.ndarray, loads: list, offsets: np.ndarray, rule: Rule | None, on,
            tasks: dict[str, int]) -> _Picked:
    """The files, confirm codes and colour thumbnails of global `rows`, from the load tasks'
    objects that hold them (one task each)."""
    load_of = (np.searchsorted(offsets, rows, side="right") - 1) // LOAD_SHARDS
    names = [n for n in ((rule.confirm.name if rule and rule.confirm else None), COLOUR) if n]
    wanted = np.unique(load_of).tolist()
    got = on.get([on.call(pick_rows, names, rows[load_of == k], offsets, loads[k])
                  for k in wanted])
    tasks["gather"] = len(wanted)
    infos: dict[int, FileInfo] = {}
    codes: dict[str, list] = {name: [] for name in names}
    for k, (files, picked) in zip(wanted, got):
        local = rows[load_of == k]
        infos.update(zip(local.tolist(), files))
        for name, (values, quality) in picked.items():
            codes[name].append((local, values, quality))
    confirm = _codes(codes[names[0]]) if rule and rule.confirm else None
    colour = _codes(codes.get(COLOUR, []))
    return _Picked(infos, confirm, colour)


def _codes(pieces: list) -> Codes | None:
    """Codes of the rows that have the method (quality not NaN), sorted by row."""
    if not pieces:
        return None
    rows = np.concatenate([p[0] for p in pieces])
    values = np.concatenate([p[1] for p in pieces])
    quality = np.concatenate([p[2] for p in pieces])
    has = ~np.isnan(quality)
    if not has.any():
        return None
    order = np.argsort(rows[has], kind="stable")
    return Codes(rows[has][order], values[has][order], quality[has][order])


def _pairs_of(pieces: list) -> np.ndarray:
    """(K, 2) int64 pairs from the exact tasks' pieces, sorted."""
    pairs = [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in pieces]
    pairs = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs


# The tasks' bodies (plain functions: Ray runs them on the nodes, the local runner here).

def load_parts(paths: list[str], first: int) -> tuple[list, list]:
    """load_part of a run of shards (numbered from `first`): their parts, their summaries.
    A run, not one shard, a task: fewer tasks (and less of Ray's bookkeeping of each in the
    driver, ~10 KB a task) and larger objects."""
    loaded = [load_part(path, first + k) for k, path in enumerate(paths)]
    return [part for part, _ in loaded], [summary for _, summary in loaded]


def load_part(path: str, shard: int) -> tuple:
    """(ShardPart, (pictures, methods present, holds descriptors, (host, pid) of this
    process))."""
    import pyarrow as pa

    try:
        table = read_columns(path, _COLUMNS)
    except (OSError, pa.ArrowException) as exc:
        raise RunnerError(f"shard {path} cannot be read on {socket.gethostname()}: {exc} (the "
                          "shard folder must be one every node sees: --shard-dir)") from None
    rows = [r for r in table.to_pylist() if r["kind"] == "image" and r["stage"] is None]
    n = len(rows)
    values: dict[str, list] = {}
    present, vectors = set(), False
    for k, row in enumerate(rows):
        for s in row["signatures"]:
            present.add(s["method"])
            try:
                spec = get_spec(s["method"])
            except LookalikeError:  # a method this version does not know
                continue
            vectors |= spec.kind == "vector"
            if (s["method"], s["version"], s["params"]) == spec.key and (
                    spec.kind == "hamming" or spec.name in (PIXELS, COLOUR)):
                values.setdefault(spec.name, []).append((k, s["value"], s["quality"]))
    codes = {}
    for name, found in values.items():
        spec = get_spec(name)
        size = spec.variants * spec.nbytes
        array = np.zeros((n, spec.variants, spec.nbytes), np.uint8)
        quality = np.full(n, np.nan, np.float32)
        for k, value, q in found:
            array[k] = np.frombuffer(value[:size], np.uint8).reshape(spec.variants, spec.nbytes)
            quality[k] = q
        codes[name] = (array, quality)
    part = ShardPart(shard, [r["path"] for r in rows],
                     np.asarray([r["size"] for r in rows], np.int64),
                     np.asarray([r["width"] or 0 for r in rows], np.int32),
                     np.asarray([r["height"] or 0 for r in rows], np.int32),
                     [r["content"] for r in rows], codes)
    return part, (n, present, vectors, (socket.gethostname(), os.getpid()))


def key_partitions(n_keys: int, offsets: np.ndarray, *loads: list):
    """n_keys partitions of (key, byte hash, global row) of the loads' pictures: the key is
    the pixels hash, or the byte hash where a picture has none."""
    partitions: list[list] = [[] for _ in range(n_keys)]
    for part in (part for load in loads for part in load):
        pixels = part.codes.get(PIXELS)
        for k, digest in enumerate(part.digests):
            has_pixels = pixels is not None and not np.isnan(pixels[1][k])
            key = b"p" + pixels[0][k].tobytes() if has_pixels else b"d" + digest
            partitions[int.from_bytes(key[1:9], "little") % n_keys].append(
                (key, digest, int(offsets[part.shard]) + k))
    return tuple(partitions)


def exact_keys(offsets: np.ndarray, *partitions: list) -> tuple[list, list]:
    """Of one key partition of every shard: (content row, copy row) for files with the same
    bytes, and (row, row) pixel pairs between contents with the same pixels; rows global."""
    by_key: dict[bytes, list[tuple[int, bytes]]] = {}
    for partition in partitions:
        for key, digest, row in partition:
            by_key.setdefault(key, []).append((row, digest))
    copies, pixel_pairs = [], []
    for key, members in by_key.items():
        if len(members) < 2:
            continue
        first: dict[bytes, int] = {}
        for row, digest in sorted(members):
            if digest in first:
                copies.append((first[digest], row))
            else:
                first[digest] = row
        if key[:1] == b"p":
            pixel_pairs += combinations(sorted(first.values()), 2)
    return copies, pixel_pairs


def _words(name: str, offsets: np.ndarray, copy_rows: np.ndarray, parts) -> tuple:
    """(words of as_words, their uint8 identity codes, their global rows) of method `name`'s
    usable contents in `parts` (quality at least the method's least, copies left out)."""
    spec = get_spec(name)
    words, identity, rows = [], [], []
    for part in parts:
        if name not in part.codes:
            continue
        codes, quality = part.codes[name]
        global_rows = offsets[part.shard] + np.arange(len(quality))
        keep = (quality >= spec.min_quality) & ~np.isin(global_rows, copy_rows)
        words.append(distributed.as_words(codes[keep]))
        identity.append(codes[keep, 0])
        rows.append(global_rows[keep])
    if not words:
        return (np.zeros((0, spec.variants, -(-spec.bits // 64)), np.uint64),
                np.zeros((0, spec.nbytes), np.uint8), np.zeros(0, np.int64))
    return np.concatenate(words), np.concatenate(identity), np.concatenate(rows)


def pack_codes(name: str, plan, offsets: np.ndarray, copy_rows: np.ndarray,
               *loads: list) -> tuple:
    """(words, identity codes, global rows) of these loads' usable contents, and their
    distributed.block_counts."""
    packed = _words(name, offsets, copy_rows, [part for load in loads for part in load])
    return packed, distributed.block_counts(packed[0], plan)


def add_counts(*counts: list) -> list:
    """The sum of block counts (distributed.block_counts) of several groups."""
    return [(sum(c[j][0] for c in counts), sum(c[j][1] for c in counts))
            for j in range(len(counts[0]))]


def plan_join(plan, n_tasks: int, counts: list) -> list:
    """The join's tasks (distributed.tasks_of_counts) from the summed block counts."""
    return distributed.tasks_of_counts(counts, plan, n_tasks)


def concat_packed(*packed: tuple) -> tuple:
    """The packed codes of every group as one (words, identity codes, global rows)."""
    return tuple(np.concatenate([p[i] for p in packed]) for i in range(3))


def join_task(rule: Rule, plan, task, codes: tuple) -> Hits:
    """One join task's pairs (concat_packed's codes), under the orientation rule, in global
    rows."""
    words, identity, rows = codes
    hits = distributed.run_task(words, plan, rule.radius, task)
    hits = orientation_rule(rule, hits, identity[hits.query], identity[hits.item])
    return Hits(rows[hits.query], rows[hits.item], hits.distance, hits.variant)


def pick_rows(names: list[str], rows: np.ndarray, offsets: np.ndarray, load: list) -> tuple:
    """The files of global `rows` (all in this load's shards), and each of `names`' (codes,
    quality) for them, in the order of `rows`."""
    by_shard = {part.shard: part for part in load}
    shard_of = np.searchsorted(offsets, rows, side="right") - 1
    local = rows - offsets[shard_of]
    files = [by_shard[s].info(int(r)) for s, r in zip(shard_of.tolist(), local.tolist())]
    picked = {}
    for name in names:
        spec = get_spec(name)
        codes = np.zeros((len(rows), spec.variants, spec.nbytes), np.uint8)
        quality = np.full(len(rows), np.nan, np.float32)
        for shard in np.unique(shard_of).tolist():
            if name in by_shard[shard].codes:
                here = shard_of == shard
                values, known = by_shard[shard].codes[name]
                codes[here], quality[here] = values[local[here]], known[local[here]]
        picked[name] = (codes, quality)
    return files, picked


class _Here:
    """The stages in this process, one after another."""

    def call(self, function, *args, returns: int | None = None):
        """function(*args); with `returns`, its tuple of that many results as a list."""
        result = function(*args)
        return result if returns is None else list(result)

    def get(self, values):
        return values


class _OnRay:
    """The stages as Ray tasks (one CPU each, retried when their worker dies); the parts
    stay in the object store, passed by reference."""

    def __init__(self, ray) -> None:
        from ..runners.ray import one_cpu_task

        self.ray, self.remote, self.make = ray, {}, one_cpu_task

    def call(self, function, *args, returns: int | None = None):
        """A reference to function(*args); with `returns`, a list of that many references,
        one to each of its results (one even when `returns` is 1)."""
        key = (function, returns)
        if key not in self.remote:
            self.remote[key] = self.make(self.ray, function).options(num_returns=returns or 1)
        refs = self.remote[key].remote(*args)
        return [refs] if returns == 1 else refs

    def get(self, refs):
        return self.ray.get(refs)
