"""Thumbnails for the HTML report, made once and cached next to the index.

The cache is keyed by the hash of a file's bytes (contents.hash), so byte copies share one
thumbnail, a moved file keeps its own, and an edited file gets a new one. A file that cannot be
thumbnailed (gone, unreadable) gets no thumbnail and the report shows a placeholder: a report
never fails for one picture.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..decode import decode
from ..index.store import Index
from ..sources.remote import read_bytes

log = logging.getLogger(__name__)

THUMB_SIZE = 160  # longest side, px
THUMB_QUALITY = 75
THUMB_DIR = "thumbs"
# The largest file read for a thumbnail: the scan's own cap on pixels keeps decoding bounded,
# this keeps a stray multi-GB file from being read into memory only to be shown at 160 px.
MAX_SOURCE_BYTES = 512 << 20


@dataclass
class ThumbStats:
    made: int = 0
    cached: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


class ThumbCache:
    """`folder`/<hash hex>-<size>.webp (JPEG where Pillow lacks WebP)."""

    def __init__(self, folder: str | os.PathLike, size: int = THUMB_SIZE) -> None:
        self.folder = Path(folder)
        self.size = int(size)
        self.stats = ThumbStats()
        self._lock = threading.Lock()  # many() updates the stats from several threads
        self.format, self.mime, self.suffix = _encoding()

    @classmethod
    def for_index(cls, index: Index, size: int = THUMB_SIZE) -> "ThumbCache":
        return cls(index.path.parent / THUMB_DIR, size)

    def path_for(self, content_hash: bytes) -> Path:
        return self.folder / f"{content_hash.hex()}-{self.size}{self.suffix}"

    def get(self, paths: str | Sequence[str], content_hash: bytes) -> bytes | None:
        """The thumbnail of the file(s) `paths` whose bytes hash to `content_hash`: from the
        cache, or made now (from the first of `paths` that can be read: byte copies share a
        hash, and one of them may have vanished) and stored; None when none can be read."""
        cached = self.path_for(content_hash)
        try:
            data = cached.read_bytes()
            with self._lock:
                self.stats.cached += 1
            return data
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read cached thumbnail %s: %s", cached, exc)
        paths = [paths] if isinstance(paths, str) else list(paths)
        reason = "no file"
        for path in paths:
            try:
                data = self._make(path)
            except Exception as exc:  # noqa: BLE001  (one bad picture must not stop the report)
                reason = str(exc) or type(exc).__name__
                log.info("no thumbnail from %s: %s", path, reason)
                continue
            self._store(cached, data)
            with self._lock:
                self.stats.made += 1
            return data
        with self._lock:
            self.stats.failed += 1
            self.stats.failures.append((paths[0] if paths else "", reason))
        return None

    def many(self, items: Sequence[tuple[str, bytes]], workers: int | None = None
             ) -> dict[bytes, bytes | None]:
        """content hash -> thumbnail (or None) for (path, hash) items, one per hash. Decoding
        and resizing release the GIL in Pillow, so threads share the cores."""
        paths: dict[bytes, list[str]] = {}
        for path, content_hash in items:
            paths.setdefault(content_hash, []).append(path)
        workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(lambda kv: (kv[0], self.get(kv[1], kv[0])), paths.items()))

    def _make(self, path: str) -> bytes:
        data = read_bytes(path, MAX_SOURCE_BYTES + 1)  # a local file, or a URL (s3://...)
        if len(data) > MAX_SOURCE_BYTES:
            raise ValueError(f"file over {MAX_SOURCE_BYTES >> 20} MB")
        # upright RGB, draft-reduced JPEG (a thumbnail needs no fine-texture re-decode)
        picture = decode(data, draft_size=self.size, texture_draft=None).image
        picture.thumbnail((self.size, self.size))
        buffer = io.BytesIO()
        picture.save(buffer, self.format, quality=THUMB_QUALITY)
        return buffer.getvalue()

    def _store(self, target: Path, data: bytes) -> None:
        """Atomically (a temporary file renamed), so a killed report leaves no half file;
        a cache that cannot be written only costs the next report the same work."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("cannot cache thumbnail in %s: %s", self.folder, exc)


def _encoding() -> tuple[str, str, str]:
    """WebP is about half the size of JPEG at the same quality; JPEG where Pillow lacks it."""
    from PIL import features

    if features.check("webp"):
        return "WEBP", "image/webp", ".webp"
    return "JPEG", "image/jpeg", ".jpg"
