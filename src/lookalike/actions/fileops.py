"""File moves that never lose a file: rename where possible, else copy, fsync, verify the
hash, and only then unlink the source."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import xxhash

from .journal import fsync_dir

CHUNK = 1 << 20


def file_hash(path: str | os.PathLike) -> str:
    """xxh3-128 of the file's bytes, hex: the same value as the index's contents.hash."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _copy_verified(src: str, dst: str, expected: str | None) -> None:
    """Copy with metadata (mtime in ns) to a temp name, fsync, check the hash, rename."""
    tmp = f"{dst}.lookalike-tmp"
    _free(tmp)
    shutil.copy2(src, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    got = file_hash(tmp)
    if got != (expected or file_hash(src)):
        os.unlink(tmp)
        raise OSError(errno.EIO, f"the copy of {src} does not match its bytes")
    try:
        os.link(tmp, dst)  # fails, where a rename would replace, if dst appeared meanwhile
        os.unlink(tmp)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            os.unlink(tmp)
            raise
        os.rename(tmp, dst)
    fsync_dir(os.path.dirname(dst) or ".")


def _free(dst: str) -> None:
    """Refuse a destination that exists; make its folder."""
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", dst)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)


# Errors of os.link that mean "no hard links here", not "something is wrong".
_NO_LINKS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP)


def move_file(src: str, dst: str, expected_hash: str | None = None) -> None:
    """Move `src` to `dst`, which must not exist, across file systems too. A hard link then
    an unlink never replaces a file that appears at `dst` meanwhile (a rename would)."""
    _free(dst)
    try:
        os.link(src, dst)
        os.unlink(src)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            _copy_verified(src, dst, expected_hash)
            os.unlink(src)
        elif exc.errno in _NO_LINKS:
            os.rename(src, dst)
        else:
            raise
    fsync_dir(os.path.dirname(dst))
    fsync_dir(os.path.dirname(src) or ".")


def save_file(src: str, dst: str, expected_hash: str | None = None) -> None:
    """Keep a second name (a hardlink, else a verified copy) of `src` at `dst`; `src` stays."""
    _free(dst)
    try:
        os.link(src, dst)
        fsync_dir(os.path.dirname(dst))
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _copy_verified(src, dst, expected_hash)


def make_link(kind: str, target: str, at: str) -> None:
    if kind == "symlink":
        os.symlink(target, at)
    else:
        os.link(target, at)


def is_our_link(kind: str, path: str, target: str) -> bool:
    """Whether `path` is the link apply made to `target`."""
    try:
        if kind == "symlink":
            return os.path.islink(path) and os.readlink(path) == target
        return not os.path.islink(path) and os.path.samefile(path, target)
    except OSError:
        return False
