"""Where shard files live: a local (or shared) folder, or a URL (s3://, gs://, any fsspec file
system: `--shard-dir s3://bucket/shards`), behind the few operations the shards need.

A file is written whole or not at all: in a folder under a temporary name, then renamed; at a
URL as one object, which an object store shows only once its upload is complete (S3, GCS and
Azure have no rename: a copy would show a half-copied object to no one either, but costs a
second transfer).
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Callable, IO, Iterator

from ..sources.remote import _filesystem, is_remote


def join(folder: str | os.PathLike, name: str) -> str:
    folder = os.fspath(folder)
    return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if is_remote(path) else os.path.dirname(path)


def resolved(folder: str | os.PathLike) -> str:
    """An absolute path, or the URL as it is (without a trailing slash)."""
    folder = os.fspath(folder)
    return folder.rstrip("/") if is_remote(folder) else os.path.abspath(folder)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    fs, inner = _filesystem(path)
    try:
        return bool(fs.exists(inner))
    except Exception:  # noqa: BLE001  (unreachable or forbidden: not there for us)
        return False


def is_folder(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(path)
    fs, inner = _filesystem(path)
    return bool(fs.isdir(inner))


def make_folder(folder: str) -> None:
    if not is_remote(folder):
        os.makedirs(folder, exist_ok=True)  # an object store has no folders to make


def write_whole(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """`write(handle)` into `path`, which then holds all of it or is as it was."""
    if is_remote(path):
        fs, inner = _filesystem(path)
        with fs.open(inner, "wb") as handle:
            write(handle)
        return
    make_folder(os.path.dirname(path))
    temporary = os.path.join(os.path.dirname(path),
                             f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def opened(path: str) -> Iterator[IO[bytes]]:
    """The file for reading; OSError (FileNotFoundError when absent) otherwise."""
    if not is_remote(path):
        with open(path, "rb") as handle:
            yield handle
        return
    fs, inner = _filesystem(path)
    try:
        handle = fs.open(inner, "rb")
    except OSError:  # FileNotFoundError among them: as a local open raises it
        raise
    except Exception as exc:  # noqa: BLE001  (fsspec's own errors: one kind for callers)
        raise OSError(str(exc)) from None
    with handle:
        yield handle


def remove(path: str) -> None:
    """Remove a file; nothing when it is not there."""
    try:
        if is_remote(path):
            fs, inner = _filesystem(path)
            fs.rm(inner)
        else:
            os.unlink(path)
    except OSError:
        pass


def files_named(folder: str, pattern: str) -> list[tuple[str, float]]:
    """(path, modification time) of the files under `folder` matching the glob `pattern`
    (relative to it)."""
    if not is_remote(folder):
        import glob

        return [(p, os.path.getmtime(p)) for p in glob.glob(os.path.join(folder, pattern))]
    fs, inner = _filesystem(folder)
    found = []
    for path in fs.glob(f"{inner.rstrip('/')}/{pattern}"):
        info = fs.info(path)
        stamp = info.get("LastModified") or info.get("mtime") or info.get("updated") or 0
        found.append((fs.unstrip_protocol(path), getattr(stamp, "timestamp", lambda: stamp)()))
    return found
