"""Shards: the unit of work, retry and resume of a cluster scan, kept as Parquet files.

Shards are cut from the walk as it streams, in the walk's own order (sorted per folder, so the
same tree walks the same way), every `shard_files` walked files one shard: the driver holds
one shard's files at a time, never the whole list. A shard's id hashes its own files (path,
size, mtime: all of them, those the index already holds too), the methods and the shard size,
so a re-run of a killed job over the same files finds the same shards and skips those whose
file exists. A shard file is written (by the Ray task that computed it) under a temporary name
and renamed, so it is either whole or absent (a retried task never leaves half a shard).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from ..types import Failure, FileRef, Scanned, Signature
from . import store

SHARD_FILES = 512  # files per shard: ~0.6 s of work on one core at ~1.2 ms a picture
SHARDS_DIR = "shards"  # beside the index file: <index dir>/shards/<plan id>/shard-<id>.parquet
WALK_FILE = "walk.tsv"  # in a plan folder: its shards in the order of the last whole walk
WALK_HEADER = "# lookalike shards of one walk: file, files held, files walked\n"


@dataclass(frozen=True)
class Shard:
    number: int  # its place in this run's walk (for messages only: not part of its identity)
    shard_id: str
    refs: tuple[FileRef, ...]  # the files of the shard that this run must (re)compute
    path: str  # its Parquet file (a str: Python 3.11's Path interns its parts for good)
    walked: int = 0  # files of the walk in it (those the index held too)

    @property
    def held(self) -> bool:
        """Every file of it is in the index, unchanged: nothing to compute or merge."""
        return not self.refs


@dataclass(frozen=True)
class ShardReport:
    """What a shard's task hands the driver in place of its records: counts and failures."""

    rows: int
    other: int = 0  # not images
    failures: tuple[Failure, ...] = ()

    @property
    def scanned(self) -> int:
        return self.rows - self.other - len(self.failures)


def shard_folder(base: str | os.PathLike, names: Sequence[str],
                 shard_files: int = SHARD_FILES) -> str:
    """`base`/<plan id>: the plan id hashes the methods and the shard size, the two things
    besides the files that make a shard's records what they are."""
    plan = hashlib.sha256(f"{shard_files}\0{','.join(names)}".encode()).hexdigest()[:16]
    return store.join(store.resolved(base), plan)


def cut_shards(walked: Iterable[tuple[FileRef, bool]], names: Sequence[str],
               folder: str | os.PathLike, shard_files: int = SHARD_FILES) -> Iterator[Shard]:
    """Shards of `walked` ((file, whether this run must compute it), in walk order), every
    `shard_files` files one, each keeping only the files to compute (none: `held`). Lazy: it
    holds the files of one shard."""
    head = f"{shard_files}\0{','.join(names)}\0".encode()
    prefix = store.join(folder, "shard-")
    digest, todo, count, number = hashlib.sha256(head), [], 0, 0
    for ref, compute in walked:
        digest.update(f"{ref.path}\0{ref.size}\0{ref.mtime_ns}\n".encode("utf-8",
                                                                          "surrogateescape"))
        if compute:
            todo.append(ref)
        count += 1
        if count == shard_files:
            yield _shard(number, digest, todo, prefix, count)
            digest, todo, count, number = hashlib.sha256(head), [], 0, number + 1
    if count:
        yield _shard(number, digest, todo, prefix, count)


def _shard(number: int, digest, todo: list[FileRef], prefix: str, walked: int) -> Shard:
    shard_id = digest.hexdigest()[:24]
    return Shard(number, shard_id, tuple(todo), f"{prefix}{shard_id}.parquet", walked)


def recorded(shards: Iterable[Shard], folder: str | os.PathLike) -> Iterator[Shard]:
    """`shards` passed through, each listed in the folder's WALK_FILE in walk order (its file
    name, the files it holds, the files of the walk in it), the file replaced whole once the
    walk is: the shards of the last whole walk, for a search of them where they lie. The
    lines wait in a temporary file here (~60 B a shard), then go to the folder at once."""
    import shutil

    with tempfile.TemporaryFile() as lines:
        lines.write(WALK_HEADER.encode())
        for shard in shards:
            name = shard.path.rsplit("/", 1)[-1]
            lines.write(f"{name}\t{len(shard.refs)}\t{shard.walked}\n".encode("utf-8",
                                                                           "surrogateescape"))
            yield shard
        lines.seek(0)
        store.write_whole(store.join(folder, WALK_FILE),
                          lambda out: shutil.copyfileobj(lines, out))


def walk_of(folder: str | os.PathLike) -> list[tuple[str, int, int]] | None:
    """(shard file path, files it holds, files of the walk in it) of the folder's last whole
    walk (recorded), or None when it has no walk file."""
    path = store.join(folder, WALK_FILE)
    try:
        with store.opened(path) as handle:
            lines = handle.read().decode("utf-8", "surrogateescape").splitlines()
    except FileNotFoundError:
        return None
    if not lines or lines[0] + "\n" != WALK_HEADER:
        raise ValueError(f"{path} is not a walk file of lookalike's shards")
    out = []
    for number, line in enumerate(lines[1:], 2):
        name, held, walked = line.split("\t")
        if os.path.basename(name) != name or not name.endswith(".parquet"):
            raise ValueError(f"{path}, line {number}: {name!r} is not a shard file name")
        out.append((store.join(folder, name), int(held), int(walked)))
    return out


def _schema():
    import pyarrow as pa

    signature = pa.struct([("method", pa.string()), ("version", pa.int32()),
                           ("params", pa.string()), ("value", pa.binary()),
                           ("quality", pa.float64())])
    return pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                      ("content", pa.binary()), ("kind", pa.string()), ("width", pa.int32()),
                      ("height", pa.int32()), ("format", pa.string()), ("mode", pa.string()),
                      ("frames", pa.int32()), ("stage", pa.string()), ("reason", pa.string()),
                      ("signatures", pa.list_(signature))])


def to_table(items: Sequence[Scanned]):
    """Scanned records as an Arrow table (one row a file), losslessly."""
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in _schema().names}
    for item in items:
        failure = item.failure
        for name, value in (
                ("path", item.ref.path), ("size", item.ref.size),
                ("mtime_ns", item.ref.mtime_ns), ("content", item.content),
                ("kind", item.kind), ("width", item.width), ("height", item.height),
                ("format", item.format), ("mode", item.mode), ("frames", item.frames),
                ("stage", failure.stage if failure else None),
                ("reason", failure.reason if failure else None),
                ("signatures", [{"method": s.method, "version": s.version, "params": s.params,
                                 "value": s.value, "quality": s.quality}
                                for s in item.signatures])):
            columns[name].append(value)
    return pa.table(columns, schema=_schema())


def from_table(table) -> list[Scanned]:
    """The records of `to_table`, back."""
    out = []
    for row in table.to_pylist():
        ref = FileRef(row["path"], row["size"], row["mtime_ns"])
        failure = (Failure(row["path"], row["stage"], row["reason"] or "")
                   if row["stage"] is not None else None)
        signatures = tuple(Signature(s["method"], s["version"], s["params"], s["value"],
                                     s["quality"]) for s in row["signatures"])
        out.append(Scanned(ref, row["content"], row["kind"], row["width"], row["height"],
                           row["format"], row["mode"], signatures, failure, row["frames"]))
    return out


def write_shard(table, path: str | os.PathLike) -> None:
    """Write a shard whole or not at all (store.write_whole: a folder's temporary name and
    rename, or one object at a URL); a second writer of the same shard replaces it with the
    same rows."""
    import pyarrow.parquet as pq

    store.write_whole(os.fspath(path), lambda out: pq.write_table(table, out))


def read_columns(path: str, columns: Sequence[str] | None = None, schema=None):
    """The Arrow table of a shard file (local or at a URL); OSError or ArrowException when
    it cannot be read (FileNotFoundError when absent)."""
    import pyarrow.parquet as pq

    with store.opened(path) as handle:
        return pq.read_table(handle, columns=columns, schema=schema)


def read_shard(path: str | os.PathLike, wanted: Iterable[FileRef]) -> list[Scanned] | None:
    """The records of a finished shard for the files `wanted`, or None when the file is
    missing, unreadable, or lacks one of them (then the shard is computed again)."""
    import pyarrow as pa

    try:
        table = read_columns(os.fspath(path), schema=_schema())
    except (OSError, pa.ArrowException):
        return None
    records = {item.ref.path: item for item in from_table(table)}
    try:
        return [records[ref.path] for ref in wanted]
    except KeyError:
        return None


def report_of(records: Sequence[Scanned]) -> ShardReport:
    """The counts a scan's summary takes from these records (as scan._write counts them)."""
    failures = tuple(item.failure for item in records if item.failure)
    other = sum(1 for item in records if not item.failure and item.kind == "other")
    return ShardReport(len(records), other, failures)


def shard_report(path: str | os.PathLike, wanted: Iterable[FileRef]) -> ShardReport | None:
    """The report of a finished shard for the files `wanted`, read from its file's small
    columns (no signatures), or None as read_shard says None."""
    import pyarrow as pa

    try:
        table = read_columns(os.fspath(path), ["path", "kind", "stage", "reason"])
    except (OSError, pa.ArrowException):
        return None
    rows = {path: (kind, stage, reason) for path, kind, stage, reason
            in zip(*(table[name].to_pylist() for name in table.column_names))}
    count, other, failures = 0, 0, []
    for ref in wanted:
        if ref.path not in rows:
            return None
        kind, stage, reason = rows[ref.path]
        count += 1
        if stage is not None:
            failures.append(Failure(ref.path, stage, reason or ""))
        elif kind == "other":
            other += 1
    return ShardReport(count, other, tuple(failures))
