"""Concurrent downloads of image URLs (asyncio + httpx): a library, it logs and never prints.

Each job ends as one `Fetched`, success or failure with a reason, never an exception. What
it does for one URL: at most `per_host` requests to a host and `concurrency` in all;
redirects followed by hand (at most `max_redirects`, each hop's scheme checked, a loop
named as such); the body streamed to `DIR/.STEM.part`, refused as soon as it is over
`max_bytes` or its first bytes are not an image (an HTML error page sent as image/jpeg is a
failure, not a picture), then fsynced and renamed to `DIR/STEM.EXT` (EXT from the content),
so a file under its final name is always whole. 429, 5xx, timeouts, resets and truncated
bodies are retried with exponential backoff and jitter, honouring Retry-After (one that asks
for more than `max_retry_after` fails the row, for a later run to retry). Addresses that
are not public (loopback, private, link-local, ...) are refused, at every hop, unless
`allow_private` (guard.py).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import re
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..decode import describe_content, sniff
from .guard import AddressRefused
from .options import BOUNDS, DownloadOptions, check_bound  # noqa: F401  (re-exported)
from .urlcheck import url_problem

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
SNIFF_BYTES = 32  # what decode.sniff needs to recognise every format
SPOOL_BYTES = 1 << 20  # a body is held in memory up to this, then written to its .part
# File name extension of each format decode.sniff recognises.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tiff",
              "BMP": "bmp", "HEIF": "heic", "AVIF": "avif", "ICO": "ico", "PSD": "psd",
              "PPM": "ppm", "QOI": "qoi"}
_RECEIVED = re.compile(r"received (\d+) bytes, expected (\d+)")  # h11's truncation message
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}  # and every other 5xx


@dataclass(frozen=True)
class Job:
    key: int  # the caller's name for it (ingest: the row number)
    url: str
    stem: str  # file name without extension; unique among the jobs of one call


@dataclass(frozen=True)
class Fetched:
    key: int
    url: str
    ok: bool
    reason: str  # "downloaded", or why not
    path: str | None = None
    http_status: int | None = None
    bytes: int = 0
    attempts: int = 0
    permanent: bool = False  # retrying later will not help (404, not an image, too large)
    started: float = 0.0
    finished: float = 0.0


@dataclass(frozen=True)
class _Outcome:
    """One attempt: a saved file, or a failure that may be worth retrying."""

    reason: str
    path: str | None = None
    http_status: int | None = None
    bytes: int = 0
    retry: bool = False
    retry_after: float | None = None
    resumable: bool = False  # not retried by this run, but a later run may succeed

    @property
    def ok(self) -> bool:
        return self.path is not None


OnResult = Callable[[Fetched], None]


def download(jobs: Iterable[Job], out_dir: str | os.PathLike,
             options: DownloadOptions = DownloadOptions(),
             on_result: OnResult | None = None) -> list[Fetched]:
    """Download every job into `out_dir`; results in the order the jobs were given.
    `on_result` is called with each result as it comes (in the calling thread)."""
    return asyncio.run(download_async(list(jobs), out_dir, options, on_result))


async def download_async(jobs: Sequence[Job], out_dir: str | os.PathLike,
                         options: DownloadOptions = DownloadOptions(),
                         on_result: OnResult | None = None) -> list[Fetched]:
    """download() for a caller that runs its own event loop."""
    import httpx  # only ingest needs it

    from .guarded import GuardedBackend, guarded_transport

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    limits = httpx.Limits(max_connections=options.concurrency,
                          max_keepalive_connections=options.concurrency)
    guard = None if options.allow_private else GuardedBackend(options.policy())
    everyone = asyncio.Semaphore(options.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}
    results: dict[int, Fetched] = {}
    # A window of tasks, not one per job at once: a million-row source stays cheap. Wide,
    # so that jobs queued for one slow host leave room for jobs to other hosts.
    window = max(16 * options.concurrency, 1024)
    transport = guarded_transport(limits, guard) if guard else None
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(options.timeout),
                                 follow_redirects=False, transport=transport,
                                 headers={"User-Agent": options.user_agent}) as client:
        # A proxy from the environment connects for us, past the guard's backend: then each
        # hop's host is resolved and checked before it is asked for (not pinned: the proxy
        # resolves it again, but it is the best a client behind a proxy can do).
        session = _Session(client, guard if guard and _env_proxies() else None)
        pending: set[asyncio.Task] = set()
        for position, job in enumerate(jobs):
            host = hosts.setdefault(_host(job.url), asyncio.Semaphore(options.per_host))
            pending.add(asyncio.create_task(
                _fetch(session, job, out, options, host, everyone), name=str(position)))
            if len(pending) >= window:
                pending = await _collect(pending, results, on_result)
        while pending:
            pending = await _collect(pending, results, on_result)
    return [results[position] for position in range(len(jobs))]


async def _collect(pending: set[asyncio.Task], results: dict[int, Fetched],
                   on_result: OnResult | None) -> set[asyncio.Task]:
    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        fetched = task.result()
        results[int(task.get_name())] = fetched
        if on_result is not None:
            on_result(fetched)
    return pending


@dataclass(frozen=True)
class _Session:
    client: Any  # httpx.AsyncClient
    precheck: Any = None  # a GuardedBackend checking each hop before it is sent (a proxy)


def _env_proxies() -> bool:
    proxies = urllib.request.getproxies()  # what httpx reads too
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


async def _fetch(session: _Session, job: Job, out: Path, options: DownloadOptions,
                 host: asyncio.Semaphore, everyone: asyncio.Semaphore) -> Fetched:
    """All attempts at one job. The host's slot is taken before the global one, so jobs
    waiting for a busy host do not hold slots other hosts could use; neither is held
    while backing off."""
    started = time.time()
    problem = url_problem(job.url)
    if problem:
        return Fetched(job.key, job.url, False, problem, permanent=True, started=started,
                       finished=time.time())
    attempts = 0
    while True:
        attempts += 1
        async with host, everyone:
            try:
                outcome = await _attempt(session, job, out, options)
            except Exception as exc:  # noqa: BLE001  (one row's surprise must not end the run)
                outcome = _unexpected(job, exc)
        if outcome.ok or not outcome.retry or attempts > options.retries:
            break
        if outcome.retry_after is not None and outcome.retry_after > options.max_retry_after:
            outcome = replace(outcome, retry=False, resumable=True, reason=(
                f"{outcome.reason}: the server asked to wait {outcome.retry_after:,.0f} s, "
                f"longer than the {options.max_retry_after:,g} s allowed (--max-retry-wait); "
                "a re-run will try again"))
            break
        delay = _delay(options, attempts, outcome.retry_after)
        log.debug("retrying %s in %.2f s: %s", job.url, delay, outcome.reason)
        await asyncio.sleep(delay)
    if not outcome.ok:
        log.info("failed: %s: %s", job.url, outcome.reason)
    return Fetched(job.key, job.url, outcome.ok, outcome.reason, outcome.path,
                   outcome.http_status, outcome.bytes, attempts,
                   permanent=not (outcome.ok or outcome.retry or outcome.resumable),
                   started=started, finished=time.time())


def _unexpected(job: Job, exc: BaseException) -> _Outcome:
    """A failure nothing above names: the row records it in one line (the innermost error
    of an exception group), the traceback goes to the debug log only."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    log.warning("unexpected error downloading %s: %s: %s", job.url, type(exc).__name__, exc)
    log.debug("traceback of the unexpected error", exc_info=exc)
    return _Outcome(f"unexpected error: {type(exc).__name__}: {exc}")


def _delay(options: DownloadOptions, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (so that many failed requests do not come back at
    the same moment), but never sooner than the server asked."""
    delay = min(options.max_backoff, options.backoff * 2 ** (attempt - 1))
    delay *= random.uniform(0.5, 1.5)
    if retry_after is not None:  # _fetch gave up on one over max_retry_after
        delay = max(delay, retry_after)
    return delay


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def _attempt(session: _Session, job: Job, out: Path,
                   options: DownloadOptions) -> _Outcome:
    import httpx

    try:
        async with asyncio.timeout(options.total_timeout):
            return await _follow(session, job, out, options)
    except AddressRefused as exc:  # a re-run with --allow-private may fetch it
        return _Outcome(exc.reason, resumable=True)
    except TimeoutError:
        return _Outcome(f"timed out: no complete answer in {options.total_timeout:g} s",
                        retry=True)
    except httpx.TimeoutException as exc:
        what = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
        return _Outcome(f"timed out {what} (after {options.timeout:g} s)", retry=True)
    except httpx.RemoteProtocolError as exc:
        text = str(exc)
        sizes = _RECEIVED.search(text)
        if sizes:
            got, expected = (int(n) for n in sizes.groups())
            return _Outcome(f"truncated: the connection closed after {got:,} of {expected:,} "
                            "bytes", retry=True)
        if "complete message body" in text:
            return _Outcome("truncated: the connection closed before the end of the body",
                            retry=True)
        return _Outcome(f"connection error: {_why(exc)}", retry=True)
    except httpx.ConnectError as exc:
        return _Outcome(f"cannot connect: {_why(exc)}", retry=True)
    except httpx.NetworkError as exc:
        why = _why(exc)
        return _Outcome("connection reset by the server" if "reset" in why.lower()
                        else f"connection error: {why}", retry=True)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError,
            UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        return _Outcome(f"bad URL: {exc}")
    except httpx.DecodingError as exc:
        return _Outcome(f"cannot decode the body: {exc}")
    except httpx.TransportError as exc:  # a proxy error, or another the above do not name
        return _Outcome(f"connection error: {_why(exc)}", retry=True)
    except OSError as exc:  # writing the file (a full disk may have room on a re-run)
        return _Outcome(f"cannot write the file: {exc.strerror or exc}", retry=True)


def _why(exc: BaseException) -> str:
    """The most telling message in an exception's chain: httpx wraps the socket's own error
    (connection refused, reset by peer) in errors with empty or vague messages."""
    seen = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):  # its errno is not one os.strerror knows
            return f"cannot resolve the host name ({seen.strerror or seen})".lower()
        if isinstance(seen, ssl.SSLCertVerificationError):  # errno 1 is not EPERM here
            return f"certificate verify failed: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {seen.reason or seen}"
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return (os.strerror(seen.errno) if seen.errno else seen.strerror).lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


async def _follow(session: _Session, job: Job, out: Path, options: DownloadOptions
                  ) -> _Outcome:
    import httpx

    client, url, seen = session.client, job.url, {job.url}
    for hop in range(options.max_redirects + 1):
        request = client.build_request("GET", url)
        try:
            if session.precheck is not None:
                await session.precheck.allowed_addresses(
                    request.url.raw_host.decode("ascii"), request.url.port
                    or (443 if request.url.scheme == "https" else 80), options.timeout)
            response = await client.send(request, stream=True)
        except AddressRefused as exc:
            if hop:  # say which hop: the URL in the row is not the one refused
                raise AddressRefused(f"redirect to {url}: {exc.reason}") from None
            raise
        except (httpx.InvalidURL, UnicodeError, httpx.RemoteProtocolError) as exc:
            # The request was built, so this is httpx parsing the answer's Location (it
            # does, even when not following redirects) and failing on it.
            if isinstance(exc, httpx.RemoteProtocolError) and "location" not in str(exc):
                raise
            return _Outcome(f"redirect to a malformed URL ({exc})")
        try:
            if response.is_redirect:
                location = response.headers["location"]
                try:
                    target = str(response.url.join(location))
                except Exception:  # noqa: BLE001  (httpx raises several kinds for a bad one)
                    return _Outcome(f"redirect to a malformed URL ({location[:200]!r})",
                                    http_status=response.status_code)
                problem = url_problem(target)
                if problem:
                    return _Outcome(f"redirect to a URL not fetched ({problem})",
                                    http_status=response.status_code)
                if target in seen:
                    return _Outcome(f"redirect loop (back to {target})",
                                    http_status=response.status_code)
                seen.add(target)
                url = target
                continue
            return await _answer(response, job, out, options)
        finally:
            await response.aclose()
    return _Outcome(f"too many redirects (more than {options.max_redirects})",
                    http_status=response.status_code)


async def _answer(response, job: Job, out: Path, options: DownloadOptions) -> _Outcome:
    code = response.status_code
    if not 200 <= code < 300 or code == 204:
        retry = code in RETRY_STATUS or code >= 500
        after = retry_after_seconds(response.headers.get("retry-after")) if retry else None
        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
        return _Outcome(f"HTTP {code}{phrase}", http_status=code, retry=retry,
                        retry_after=after)
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > options.max_bytes:
        return _Outcome(f"too large: {int(declared):,} bytes > {options.max_bytes:,}",
                        http_status=code)
    return await _save(response, job, out, options)


async def _save(response, job: Job, out: Path, options: DownloadOptions) -> _Outcome:
    """Stream the body: in memory up to SPOOL_BYTES (most pictures), beyond that into the
    .part file. Every file operation but small writes runs in a thread: creating and
    fsyncing files takes milliseconds, which the event loop would lose for all downloads."""
    code = response.status_code
    part = out / f".{job.stem}{PART_SUFFIX}"
    buffer, handle = bytearray(), None
    try:
        size, fmt = 0, None
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > options.max_bytes:
                return _Outcome(f"too large: more than {options.max_bytes:,} bytes",
                                http_status=code)
            if fmt is None and size >= SNIFF_BYTES:
                fmt = _format_of(bytes((buffer + chunk)[:SNIFF_BYTES]), response)
                if isinstance(fmt, _Outcome):
                    return fmt
            if handle is not None:
                handle.write(chunk)
                continue
            buffer += chunk
            if len(buffer) > SPOOL_BYTES:
                handle = await _in_thread(_spill, part, buffer)
                buffer = bytearray()
        if size == 0:
            return _Outcome("empty body", http_status=code, retry=True)
        if fmt is None:  # a body shorter than SNIFF_BYTES
            fmt = _format_of(bytes(buffer), response)
            if isinstance(fmt, _Outcome):
                return fmt
        final = out / f"{job.stem}.{EXTENSIONS.get(fmt, fmt.lower())}"
        await _in_thread(_finish, handle, bytes(buffer), part, final)
        return _Outcome("downloaded", str(final), code, size)
    finally:
        if handle is not None and not handle.closed:
            handle.close()
        if part.exists():  # any way out but the rename: nothing half-written stays
            part.unlink()


async def _in_thread(function, *args):
    """`function(*args)` in a thread. If this task is cancelled meanwhile (a timeout), it
    still waits for the thread, so the caller's clean-up never races a file operation."""
    future = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        if not future.cancelled() and future.exception() is None:
            result = future.result()
            if hasattr(result, "close"):
                result.close()
        raise


def _spill(part: Path, buffer: bytearray):
    handle = open(part, "wb")
    handle.write(buffer)
    return handle


def _format_of(head: bytes, response) -> str | _Outcome:
    fmt = sniff(head)
    if fmt is not None:
        return fmt
    declared = response.headers.get("content-type", "no Content-Type")
    return _Outcome(f"not an image: the content is {describe_content(head)} "
                    f"(Content-Type: {declared})", http_status=response.status_code)


def _finish(handle, rest: bytes, part: Path, final: Path) -> None:
    """Whole on disk before it gets its final name: a crash leaves a .part or a whole file."""
    handle = handle if handle is not None else open(part, "wb")
    try:
        handle.write(rest)
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        handle.close()
    os.replace(part, final)


def remove_parts(out_dir: str | os.PathLike) -> int:
    """Delete the .part files a killed download left in `out_dir`; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(out_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(PART_SUFFIX) and entry.is_file():
            os.unlink(entry.path)
            removed += 1
    return removed
