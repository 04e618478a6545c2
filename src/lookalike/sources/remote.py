"""Pictures on other file systems: s3://, gs://, memory:// and any URL that fsspec knows.

A URL root (`s3://bucket/prefix`) is listed with one recursive listing (fsspec's `find`: for
S3 a paginated ListObjectsV2, not one request per "folder"); each object becomes a FileRef
whose path is its full URL, which the index keeps as the file's path. Its `mtime_ns` is the
object's modification time where the file system gives one (S3 LastModified, GCS updated, a
local mtime); where it gives none, a stable number made from the object's version tag (ETag,
generation, checksum), so a changed object is still seen as changed; 0 where there is neither.

Local paths never come here: `read_bytes` and `file_stat` open and stat them as before, so a
local scan costs what it did. fsspec and the package of each protocol (s3fs, gcsfs, ...) are
optional: the `remote` extra installs fsspec and s3fs. Credentials come from where those
packages look (AWS_* variables and ~/.aws for S3, AWS_ENDPOINT_URL for another endpoint,
fsspec's config files and FSSPEC_* variables); this module never logs them, and refuses a URL
that carries a password.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from datetime import datetime
from typing import Iterator, Sequence
from urllib.parse import unquote, urlsplit

from ..errors import SourceError
from ..types import Failure

EXTRA = "pip install 'lookalike[remote]'"
# The package fsspec imports for a protocol (its own message names it too, not the extra).
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
            "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub", "sftp": "paramiko",
            "http": "aiohttp", "https": "aiohttp"}
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]+)://")
# Keys of an fsspec `info` holding a modification time, most specific first ...
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created",
              "creation_time", "ctime")
# ... and, where none is there, a tag that changes whenever the object does.
_TAG_KEYS = ("ETag", "etag", "generation", "md5Hash", "crc32c", "version_id", "VersionId")


def is_remote(path: str) -> bool:
    """Whether `path` is a URL of another file system ("s3://b/k"), not a local path; a
    file:// URL is local (see as_root)."""
    if "://" not in path:  # the common case, a local path: the cheapest test first
        return False
    match = _URL.match(path)
    return match is not None and match.group(1).lower() != "file"


def as_root(path: str) -> str:
    """A scan root as the index keeps it: a plain path or file:// URL as an absolute local
    path, another URL as given less trailing slashes. Raises SourceError for a URL whose
    file system is not installed, or that carries a password."""
    if path[:7].lower() == "file://":
        return os.path.abspath(unquote(urlsplit(path).path) or "/")
    if not is_remote(path):
        return os.path.abspath(path)
    if urlsplit(path).password:
        raise SourceError("a URL must not carry a password: give credentials in the "
                          "environment (AWS_* variables, fsspec's configuration)")
    _filesystem(path)  # a missing package is an error now, before any work starts
    scheme, rest = path.split("://", 1)
    return f"{scheme}://{rest.rstrip('/')}" if rest.rstrip("/") else path


def _filesystem(url: str):
    """(fsspec file system, path inside it) for `url`; SourceError naming what to install."""
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError:
        raise SourceError(f"{scheme}:// paths need fsspec: {EXTRA}") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        package = PACKAGES.get(scheme, f"the fsspec package for {scheme}://")
        hint = EXTRA if package == "s3fs" else f"pip install {package}"
        raise SourceError(f"{scheme}:// paths need {package}: {hint}") from None
    except ValueError as exc:
        raise SourceError(f"{scheme}:// is not a file system fsspec knows: {exc}") from None


def list_files(root: str) -> Iterator[tuple[str, str, int, int] | Failure]:
    """(URL, path relative to `root`, size, mtime_ns) of every file under the URL `root`
    (or `root` itself, when it names one object), sorted by URL; a root that cannot be listed
    is one Failure. Holds the whole listing: ~300 B a file."""
    fs, base = _filesystem(root)
    try:
        found = fs.find(base, detail=True, withdirs=False)
        if not found and fs.isfile(base):
            found = {base: fs.info(base)}
    except Exception as exc:  # noqa: BLE001  (any listing fault is the root's failure)
        yield Failure(root, "walk", f"cannot list: {_reason(exc)}")
        return
    prefix = base.rstrip("/") + "/"
    for path in sorted(found):
        info = found[path]
        if info.get("type", "file") != "file":
            continue
        relative = path[len(prefix):] if path.startswith(prefix) else path.rsplit("/", 1)[-1]
        yield (fs.unstrip_protocol(path), relative, int(info.get("size") or 0), _stamp(info))


def file_stat(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a local path or a URL (see the module's note on mtime_ns);
    OSError when it cannot be read."""
    if not is_remote(path):
        info = os.stat(path)
        return info.st_size, info.st_mtime_ns
    fs, inner = _opened(path)
    try:
        info = fs.info(inner)
    except Exception as exc:  # noqa: BLE001
        raise _as_os_error(exc) from None
    if info.get("type", "file") != "file":
        raise OSError(errno.EISDIR, "not a file")
    return int(info.get("size") or 0), _stamp(info)


def read_bytes(path: str, limit: int) -> bytes:
    """At most `limit` bytes of a local file or of the object at a URL (one ranged GET on
    S3); OSError with a reason when it cannot be read."""
    if not is_remote(path):
        with open(path, "rb") as handle:
            # read(n) allocates n bytes first: ask for the size fstat gives (and one more, to
            # see a file that grew), not `limit` (1 GiB cost 0.1 ms more a 330-kB file).
            want = min(os.fstat(handle.fileno()).st_size + 1, limit)
            data = handle.read(want)
            if len(data) == want < limit:  # it grew since: the rest, up to the limit
                data += handle.read(limit - want)
            return data
    fs, inner = _opened(path)
    try:
        return fs.cat_file(inner, start=0, end=limit)
    except Exception as exc:  # noqa: BLE001  (every fault is the file's, reported as data)
        raise _as_os_error(exc) from None


def read_many(paths: Sequence[str], limit: int) -> dict[str, bytes | OSError]:
    """The URLs among `paths` read together, each to its first `limit` bytes or to the
    OSError of its failure; local paths are left out (an empty dict when all are local).
    fsspec's async file systems keep the GETs in flight at once: on S3, one request's latency
    for a chunk instead of one for each of its files."""
    out: dict[str, bytes | OSError] = {}
    by_system: dict = {}
    for url in paths:
        if not is_remote(url):
            continue
        try:
            fs, inner = _opened(url)
        except OSError as exc:
            out[url] = exc
            continue
        by_system.setdefault(fs, []).append((url, inner))
    for fs, items in by_system.items():
        inner = [path for _, path in items]
        try:
            found = fs.cat_ranges(inner, [0] * len(inner), [limit] * len(inner),
                                  on_error="return")
        except Exception as exc:  # noqa: BLE001  (the whole batch failed: each file says why)
            found = [exc] * len(inner)
        for (url, _), data in zip(items, found):
            out[url] = _as_os_error(data) if isinstance(data, BaseException) else data
    return out


def _opened(url: str):
    try:
        return _filesystem(url)
    except SourceError as exc:  # on a worker without the extra: that file's failure
        raise OSError(str(exc)) from None


def _as_os_error(exc: Exception) -> OSError:
    if isinstance(exc, FileNotFoundError):
        return OSError(errno.ENOENT, "no such object")
    if isinstance(exc, PermissionError):
        return OSError(errno.EACCES, f"access denied: {_reason(exc)}")
    return OSError(getattr(exc, "errno", None) or errno.EIO, _reason(exc))


def _reason(exc: Exception) -> str:
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return text if isinstance(exc, OSError) else f"{type(exc).__name__}: {text}"


def _stamp(info: dict) -> int:
    """mtime_ns from an fsspec `info`: its modification time, else a number from its version
    tag (the low 62 bits of a hash: positive, and no time it could be mistaken for), else 0."""
    for key in _TIME_KEYS:
        value = info.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                continue
        if isinstance(value, datetime):
            return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
        if isinstance(value, (int, float)):
            return int(value * 1_000_000_000) if value < 1e11 else int(value)
    for key in _TAG_KEYS:
        if info.get(key):
            digest = hashlib.blake2b(str(info[key]).encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big") >> 2
    return 0
