"""Plain lists of paths, from a file or stdin (one per line, or NUL-separated)."""

from __future__ import annotations

import os
import stat
from typing import IO, Iterable, Iterator

from ..types import Failure, FileRef
from .remote import file_stat, is_remote


def read_path_list(stream: IO[bytes], *, null_separated: bool = False) -> Iterator[str]:
    data = stream.read()
    parts = data.split(b"\0") if null_separated else data.splitlines()
    for raw in parts:
        raw = raw if null_separated else raw.strip()
        if raw:
            yield os.fsdecode(raw)


def refs_from_paths(paths: Iterable[str]) -> Iterator[FileRef | Failure]:
    for path in paths:
        if is_remote(path):  # a URL (s3://...): its object's size and stamp
            try:
                yield FileRef(path, *file_stat(path))
            except OSError as exc:
                yield Failure(path, "walk", f"cannot stat: {exc.strerror or exc}")
            continue
        path = os.path.abspath(path)
        try:
            info = os.stat(path)
        except OSError as exc:
            yield Failure(path, "walk", f"cannot stat: {exc.strerror}")
            continue
        if stat.S_ISREG(info.st_mode):
            yield FileRef(path, info.st_size, info.st_mtime_ns)
        else:
            yield Failure(path, "walk", "not a regular file")
