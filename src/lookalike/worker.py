"""What a worker process does with a chunk of files: read, hash, decode, sign."""

from __future__ import annotations

import os
import threading
from typing import Sequence

import xxhash

from .decode import decode, describe_content, sniff
from .errors import DecodeError
from .index.store import Index, open_index
from .methods.registry import Picture, draft_size, get_spec, shared_method
from .sources.remote import read_bytes, read_many
from .types import Decoded, Failure, FileRef, Scanned, Signature

MAX_FILE_BYTES = 1 << 30
# Decoded pixels held before signing a part of a chunk: each costs about 8 bytes (Pillow's
# RGBX raster, the RGB array, grey), so 24 M held 200 MB in a worker on 1-MP PNGs, and at
# 1 M a worker's peak RSS on 256-px JPEGs fell from 92 to 81 MB. A batch only saves a
# method's per-call overhead, which is small already at 20 pictures of 256 x 200 px.
MAX_PENDING_PIXELS = 1_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp",
                  ".heic", ".heif", ".avif", ".ico", ".psd", ".ppm", ".pgm", ".pbm", ".jfif"}

# One read-only connection per index and thread: a worker process has one thread, but an
# in-process scan (workers=1) may run in any thread of a server, and a SQLite connection
# must stay in the thread that opened it.
_readers = threading.local()


def _reader(index_path: str) -> Index:
    readers: dict[str, Index] = _readers.__dict__.setdefault("by_path", {})
    if index_path not in readers:
        readers[index_path] = open_index(index_path, read_only=True)
    return readers[index_path]


def _known(index_path: str | None, contents: Sequence[bytes], names: Sequence[str]):
    """bytes hash -> (width, height, format, mode, names already signed), for known bytes."""
    if index_path is None or not contents:
        return {}
    return _reader(index_path).known_contents(contents, [get_spec(n) for n in names], names)


def read_file(ref: FileRef) -> bytes:
    """The whole file (a local path, or a URL: sources/remote.py), or OSError/DecodeError
    with a reason."""
    if ref.size > MAX_FILE_BYTES:
        raise DecodeError(f"file too large ({ref.size:,} bytes > {MAX_FILE_BYTES:,})")
    return read_bytes(ref.path, MAX_FILE_BYTES + 1)


def process_chunk(refs: Sequence[FileRef], names: Sequence[str],
                  index_path: str | None = None) -> list[Scanned]:
    """Scan files; every problem becomes a Failure in the result, never an exception."""
    results: list[Scanned | None] = [None] * len(refs)
    images: list[tuple[int, bytes, bytes]] = []  # (position, data, content hash)
    fetched = _fetch_remote(refs)
    for i, ref in enumerate(refs):
        try:
            data = _take(fetched, ref) if fetched else read_file(ref)
        except OSError as exc:
            results[i] = _failed(ref, b"", "read", f"cannot read: {exc.strerror or exc}")
            continue
        except DecodeError as exc:
            results[i] = _failed(ref, b"", "read", str(exc))
            continue
        content = xxhash.xxh3_128_digest(data)
        if sniff(data[:32]) is not None:
            images.append((i, data, content))
        elif not data:
            results[i] = _failed(ref, content, "type", "empty file (0 bytes)")
        elif os.path.splitext(ref.path)[1].lower() in IMAGE_SUFFIXES:
            results[i] = _failed(ref, content, "type", _not_image_reason(data, ref.path))
        else:
            results[i] = Scanned(ref, content, "other")
    known = _known(index_path, [content for _, _, content in images], names)
    pending: list[tuple[int, bytes, Decoded, list[str]]] = []
    pending_pixels = 0
    for position in range(len(images)):
        i, data, content = images[position]
        images[position] = (i, b"", content)  # let the bytes go once decoded
        ref = refs[i]
        width, height, fmt, mode, signed = known.get(content, (0, 0, "", "", set()))
        todo = [n for n in names if n not in signed]
        if not todo:
            results[i] = Scanned(ref, content, "image", width, height, fmt, mode)
            continue
        try:
            # The largest draft its methods need (local features: 1024 px, hashes: 256 px).
            decoded = decode(data, draft_size=draft_size(todo))
        except DecodeError as exc:
            results[i] = _failed(ref, content, "decode", str(exc))
            continue
        del data
        pending.append((i, content, decoded, todo))
        pending_pixels += decoded.size[0] * decoded.size[1]
        if pending_pixels > MAX_PENDING_PIXELS:
            _finish(refs, pending, results)
            pending, pending_pixels = [], 0
    _finish(refs, pending, results)
    return [r for r in results if r is not None]


def _fetch_remote(refs: Sequence[FileRef]) -> dict[str, bytes | OSError]:
    """The chunk's URLs (s3://...) read at once, concurrently; {} when all are local."""
    return read_many([r.path for r in refs if r.size <= MAX_FILE_BYTES], MAX_FILE_BYTES + 1)


def _take(fetched: dict[str, bytes | OSError], ref: FileRef) -> bytes:
    if ref.path not in fetched:
        return read_file(ref)
    data = fetched.pop(ref.path)  # let the bytes go with the chunk's other copies
    if isinstance(data, OSError):
        raise data
    return data


def _finish(refs, pending, results) -> None:
    for i, signatures, failure in _sign([(d, todo) for _, _, d, todo in pending]):
        index, content, decoded, _ = pending[i]
        ref = refs[index]
        if failure:
            results[index] = _failed(ref, content, "signature", failure)
        else:
            results[index] = Scanned(ref, content, "image", decoded.width, decoded.height,
                                     decoded.format, decoded.mode, tuple(signatures),
                                     frames=decoded.frames)


def compute_signatures(decoded: Decoded, names: Sequence[str]) -> list[Signature]:
    """Signatures of one decoded picture (raises on failure; for queries)."""
    (_, signatures, failure), = _sign([(decoded, list(names))])
    if failure:
        raise DecodeError(failure)
    return signatures


def _sign(items: list[tuple[Decoded, list[str]]]):
    """Batch each method over the pictures that need it; isolate a failing picture."""
    pictures = [Picture(decoded) for decoded, _ in items]
    out: list[list[Signature]] = [[] for _ in items]
    errors: list[str] = ["" for _ in items]
    names = sorted({n for _, todo in items for n in todo})
    for name in names:
        members = [i for i, (_, todo) in enumerate(items) if name in todo]
        method = shared_method(name)
        try:
            for i, sig in zip(members, method.compute([pictures[i] for i in members])):
                out[i].append(sig)
        except Exception:  # one bad picture must not sink the batch: redo one by one
            for i in members:
                try:
                    out[i].extend(method.compute([pictures[i]]))
                except Exception as exc:  # noqa: BLE001  (reported as data)
                    errors[i] = errors[i] or f"{name}: {exc}"
    return [(i, out[i], errors[i]) for i in range(len(items))]


def _failed(ref: FileRef, content: bytes, stage: str, reason: str) -> Scanned:
    return Scanned(ref, content, "image", failure=Failure(ref.path, stage, reason))


def _not_image_reason(data: bytes, path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    return f"not an image: named {suffix} but the content is {describe_content(data[:512])}"
