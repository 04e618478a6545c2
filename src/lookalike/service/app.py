"""The HTTP API over one index: query new pictures, add pictures, page through groups, and
read indexed files by id. Routes call the library (query, scan, find_groups, thumbnails)
and translate its errors into HTTP codes; nothing here searches or decodes by itself.

Nothing takes a path that reaches the file system but the JSON form of /query and /index,
and those only under the allow-list (limits.AllowList). Files are served by their integer id
in the index, and only while the file is live and unchanged since it was indexed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import xxhash
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from ..decode import decode
from ..errors import (DecodeError, IndexBusyError, IndexError_, LookalikeError)
from ..index.store import ChangeCounter, FileRecord, Index, display_path, open_index
from ..report.thumbs import ThumbCache
from ..scan import scan
from ..search.dupes import find_groups
from ..search.query import PreparedQuery
from ..types import Group
from . import models
from .limits import (MAX_PIXELS, MAX_UPLOAD_BYTES, MULTIPART_SLACK, SUFFIXES, AllowList,
                     BodyLimit, Refused, check_picture, json_path)


T = TypeVar("T")
STATIC_DIR = Path(__file__).parent / "static"
UPLOADS_DIR = "uploads"  # next to the index: pictures added through POST /index
MAX_PAGE_SIZE = 500
CACHE_ENTRIES = 8  # (method, filter) combinations kept per cache
# Paths a client may read without the token: the placeholder page and the API's own docs
# (they describe the API, they hold no data).
PUBLIC_PATHS = ("/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
_ERRORS = {400: {"model": models.ErrorOut}, 401: {"model": models.ErrorOut},
           404: {"model": models.ErrorOut}, 413: {"model": models.ErrorOut},
           415: {"model": models.ErrorOut}, 422: {"model": models.ErrorOut}}
_UPLOAD_BODY = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "properties": {
        "path": {"type": "string", "description": "a file under the server's allow-list"}}}},
}}}


class ServeConfigError(LookalikeError):
    """The service cannot start as asked (a non-loopback address without a token, ...)."""


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a bearer token."""
    if not is_loopback(host) and not token:
        raise ServeConfigError(
            f"refusing to serve on {host or 'all addresses'} without a token: anyone who can "
            "reach it could read the indexed files. Give --token-file FILE (or set "
            "LOOKALIKE_TOKEN), or bind to 127.0.0.1")


def create_app(index_path: str | os.PathLike, *, token: str | None = None,
               allow_paths: Sequence[str | os.PathLike] = (),
               max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_pixels: int = MAX_PIXELS) -> FastAPI:
    """The FastAPI app serving the index at `index_path` (it may not exist yet: POST /index
    creates it). With `token`, every API route needs `Authorization: Bearer TOKEN`."""
    index_path = Path(index_path).absolute()
    allow = AllowList.of(allow_paths)
    counter = ChangeCounter(index_path)
    groups, queries = _GroupCache(counter), _QueryCache(counter)
    app = FastAPI(title="lookalike", summary="Find duplicate images in an indexed collection.",
                  dependencies=[Depends(HTTPBearer(auto_error=False))] if token else [])
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_SLACK)
    if token:
        app.add_middleware(BearerAuth, token=token)  # outermost: before any body is read

    @app.exception_handler(LookalikeError)
    async def _library_error(request: Request, exc: LookalikeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

    @app.post("/query", response_model=models.QueryOut, responses=_ERRORS,
              openapi_extra=_UPLOAD_BODY)
    async def query_route(request: Request, method: str = "auto",
                          max_distance: int | None = Query(None, ge=0),
                          limit: int = Query(20, ge=1, le=MAX_PAGE_SIZE)) -> models.QueryOut:
        """Is this picture already in the index? Send it as multipart field `file`, or as
        JSON `{"path": ...}` naming a file under the server's allow-list."""
        if _is_json(request):
            # file system work off the event loop: one slow disk must not stall every client
            real = await run_in_threadpool(allow.resolve, json_path(await request.body()))
            name, data = str(real), await run_in_threadpool(_read_capped, real,
                                                            max_upload_bytes)
        else:
            (name, data), = await _uploads(request, max_upload_bytes, many=False)
        fmt = check_picture(data, max_upload_bytes, max_pixels)
        return await run_in_threadpool(_query, index_path, queries, name, data, fmt, method,
                                       max_distance, limit)

    @app.post("/index", response_model=models.IndexOut, responses={**_ERRORS, 409: {
        "model": models.ErrorOut}}, openapi_extra=_UPLOAD_BODY)
    async def index_route(request: Request) -> models.IndexOut:
        """Add pictures: multipart fields `file` (one or more), stored in `uploads/` next to
        the index, or JSON `{"path": ...}` under the allow-list. 409 while another writer
        holds the index."""
        if _is_json(request):
            real = await run_in_threadpool(allow.resolve, json_path(await request.body()))
            data = await run_in_threadpool(_read_capped, real, max_upload_bytes)
            check_picture(data, max_upload_bytes, max_pixels)
            targets = [(str(real), real)]
        else:
            uploads = await _uploads(request, max_upload_bytes, many=True)
            folder = index_path.parent / UPLOADS_DIR
            formats = [check_picture(data, max_upload_bytes, max_pixels) for _, data in uploads]
            targets = await run_in_threadpool(_store_uploads, folder, uploads, formats,
                                              max_pixels)
        return await run_in_threadpool(_add, index_path, targets)

    @app.get("/groups", response_model=models.GroupsPage, responses=_ERRORS)
    def groups_route(page: int = Query(1, ge=1),
                     page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
                     min_size: int = Query(2, ge=2), method: str = "auto",
                     where: list[str] = Query([], description="KEY:VALUE (or KEY=VALUE) of "
                                              "the files' metadata; repeat: all must hold")
                     ) -> models.GroupsPage:
        """Duplicate groups, largest first, a page at a time."""
        conditions = _where(where)
        with _opened(index_path) as index:
            found = groups.get(index, method, conditions)
            chosen = [g for g in found if len(g.files) >= min_size]
            start = (page - 1) * page_size
            shown = chosen[start:start + page_size]
            ids = index.live_file_ids(f.path for g in shown for f in g.files)
        return models.GroupsPage(groups=[_group_out(g, ids) for g in shown], page=page,
                                 page_size=page_size, total=len(chosen),
                                 pages=-(-len(chosen) // page_size))

    @app.get("/files/{file_id}", response_model=models.FileOut, responses=_ERRORS)
    def file_route(file_id: int) -> models.FileOut:
        """An indexed file's description and metadata."""
        with _opened(index_path) as index:
            record = _live(index, file_id)
        return models.FileOut(file_id=record.id, path=display_path(record.path),
                              bytes=record.size, mtime_ns=record.mtime_ns, width=record.width,
                              height=record.height, format=record.format, mode=record.mode,
                              meta=record.meta)

    @app.get("/files/{file_id}/thumbnail", responses={**_ERRORS, 200: {
        "content": {"image/webp": {}, "image/jpeg": {}}}})
    def thumbnail_route(file_id: int) -> Response:
        """A small WebP of the file (cached next to the index, shared with the report)."""
        with _opened(index_path) as index:
            record = _unchanged(_live(index, file_id))
            cache = ThumbCache.for_index(index)
            data = cache.get(record.path, record.content_hash)
        if data is None:
            raise Refused(404, "no thumbnail: the file cannot be read any more")
        return Response(data, media_type=cache.mime)

    @app.get("/files/{file_id}/content", responses={**_ERRORS, 200: {"content": {"image/*": {}}}})
    def content_route(file_id: int) -> Response:
        """The file's bytes, while it is unchanged since it was indexed."""
        with _opened(index_path) as index:
            record = _unchanged(_live(index, file_id))
        return FileResponse(record.path, media_type=_MIME.get(record.format,
                                                              "application/octet-stream"))

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class BearerAuth:
    """ASGI middleware: API requests need `Authorization: Bearer TOKEN`, compared in constant
    time; checked before the body is read, so a stranger cannot make the server spool one."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or \
                scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected):
            await self.app(scope, receive, send)
            return
        reason = b"wrong bearer token" if scheme.lower() == b"bearer" else \
            b"this server needs Authorization: Bearer TOKEN"
        body = b'{"detail": "' + reason + b'"}'
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


# --- the work of the routes (in the thread pool: SQLite and decoding block) -----------------

@contextmanager
def _opened(index_path: Path) -> Iterator[Index]:
    """One connection per request: SQLite in WAL mode reads concurrently, and a connection
    never crosses threads."""
    index = open_index(index_path)
    try:
        yield index
    finally:
        index.close()


def _query(index_path: Path, queries: "_QueryCache", name: str, data: bytes, fmt: str,
           method: str, max_distance: int | None, limit: int) -> models.QueryOut:
    with tempfile.TemporaryDirectory(prefix="lookalike-query-") as folder:
        picture = Path(folder) / f"query{SUFFIXES.get(fmt, '')}"
        picture.write_bytes(data)
        with _opened(index_path) as index:
            prepared = queries.get(index, method, max_distance)
            result, = prepared.run(index, [str(picture)], limit)
            if result.failure is not None:
                raise Refused(422, f"cannot read the picture: {result.failure.reason}")
            ids = index.live_file_ids(m.b for m in result.matches)
    matches = [models.MatchOut(file_id=ids[m.b], path=display_path(m.b), method=m.method,
                               distance=m.distance, score=round(m.score, 4),
                               transform=m.transform)
               for m in result.matches if m.b in ids]  # a file that vanished meanwhile
    return models.QueryOut(name=name, matches=matches, method=method,
                           max_distance=max_distance)


def _add(index_path: Path, targets: list[tuple[str, Path]]) -> models.IndexOut:
    methods = None
    if index_path.exists():
        with _opened(index_path) as index:
            methods = [m for m in index.methods_present() if m != "pixels"] or None
    # One worker: the scan runs inside the server process, which already has its threads.
    summary = scan(paths=[str(p) for _, p in targets], index_path=index_path, methods=methods,
                   workers=1)
    with _opened(index_path) as index:
        ids = index.live_file_ids(str(p) for _, p in targets)
        failed = {path: reason for path, _, reason in index.failures()}
    files = [models.IndexedOut(name=name, file_id=ids.get(str(p)),
                               error=None if str(p) in ids else failed.get(str(p), "not indexed"))
             for name, p in targets]
    return models.IndexOut(files=files, scanned=summary.scanned, unchanged=summary.unchanged,
                           failed=summary.failed)


def _store_uploads(folder: Path, uploads: list[tuple[str, bytes]], formats: list[str],
                   max_pixels: int) -> list[tuple[str, Path]]:
    """Every upload decoded first: one that cannot be read is refused (422) before anything
    is stored, rather than kept in uploads/ and recorded as a failed file of the index."""
    for name, data in uploads:
        try:
            decode(data, max_pixels=max_pixels)
        except DecodeError as exc:
            raise Refused(422, f"cannot read the picture {name}: {exc}") from None
    return [(name, _store_upload(folder, data, fmt))
            for (name, data), fmt in zip(uploads, formats)]


def _store_upload(folder: Path, data: bytes, fmt: str) -> Path:
    """`folder`/<xxh3 of the bytes><ext>, written to a temporary name and renamed, so the
    folder never holds half a file and the same upload twice is one file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{xxhash.xxh3_128_hexdigest(data)}{SUFFIXES.get(fmt, '')}"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


def _live(index: Index, file_id: int) -> FileRecord:
    record = index.file_record(file_id)
    if record is None or record.status != "ok" or record.content_hash is None:
        raise Refused(404, f"no indexed file with id {file_id}")
    return record


def _unchanged(record: FileRecord) -> FileRecord:
    """The record, if its file is still the one indexed (same size and modification time):
    what is served is what the index describes, not whatever the path holds now."""
    try:
        stat = os.stat(record.path)
    except OSError:
        raise Refused(404, f"file {record.id} is gone from disk; scan again") from None
    if stat.st_size != record.size or stat.st_mtime_ns != record.mtime_ns:
        raise Refused(409, f"file {record.id} changed since it was indexed; scan again")
    return record


class _StateCache:
    """Values computed from the index, kept while nothing is committed to it (by this server
    or by a scan elsewhere), a few keys at a time."""

    def __init__(self, counter: ChangeCounter, entries: int = CACHE_ENTRIES) -> None:
        self._counter = counter
        self._lock = threading.Lock()
        self._entries: dict[tuple, object] = {}
        self._size = entries

    def get(self, index: Index, key: tuple, make: Callable[[], T]) -> T:
        key = (self._counter.value(), *key)
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            found = make()  # outside the lock: two first requests may both compute it
            with self._lock:
                if len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = found
        return found


class _GroupCache(_StateCache):
    """find_groups for (method, filter), so paging does not search the collection again for
    every page."""

    def get(self, index: Index, method: str, where: dict[str, str]) -> list[Group]:
        return super().get(index, (method, tuple(sorted(where.items()))),
                           lambda: find_groups(index, method, where=where or None))


class _QueryCache(_StateCache):
    """A PreparedQuery per (method, radius): the codes and search structures are read once,
    not at every request (about 0.4 s of a query on 20,000 pictures)."""

    def get(self, index: Index, method: str, max_distance: int | None) -> PreparedQuery:
        return super().get(index, (method, max_distance),
                           lambda: PreparedQuery(index, method, max_distance))


# --- small translations ----------------------------------------------------------------------

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
         "TIFF": "image/tiff", "BMP": "image/bmp", "HEIF": "image/heif", "AVIF": "image/avif",
         "ICO": "image/x-icon", "PSD": "image/vnd.adobe.photoshop",
         "PPM": "image/x-portable-pixmap"}


def _status_of(exc: LookalikeError) -> int:
    if isinstance(exc, Refused):
        return exc.status
    if isinstance(exc, IndexBusyError):
        return 409  # another writer: try again later
    if isinstance(exc, IndexError_):
        return 503  # no index yet, or one that cannot be read: the server's side
    return 400  # an unknown method, a bad filter: the request's side


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return True
    if kind != "multipart/form-data":
        raise Refused(415, "send the picture as multipart/form-data (field 'file'), or "
                      'JSON {"path": "/absolute/path"} under the allow-list')
    return False


async def _uploads(request: Request, max_bytes: int, many: bool) -> list[tuple[str, bytes]]:
    form = await request.form()
    files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
    if not files:
        raise Refused(422, "no file: send the picture in the multipart field 'file'")
    if not many and len(files) > 1:
        raise Refused(422, "one picture per query")
    out = []
    for upload in files:
        data = await upload.read(max_bytes + 1)
        out.append((os.path.basename(upload.filename or "upload"), data))
    return out


def _read_capped(path: Path, max_bytes: int) -> bytes:
    with open(path, "rb") as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Refused(413, f"file over the limit of {max_bytes:,} bytes")
    return data


def _where(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, wanted = value.partition(":") if ":" in value else value.partition("=")
        if not sep or not key:
            raise Refused(422, f"where={value!r}: expected KEY:VALUE")
        out[key] = wanted
    return out


def _group_out(group: Group, ids: dict[str, int]) -> models.GroupOut:
    return models.GroupOut(
        files=[models.GroupFileOut(file_id=ids[f.path], path=display_path(f.path),
                                   width=f.width, height=f.height, bytes=f.bytes)
               for f in group.files if f.path in ids],
        method=group.method, max_distance=group.max_distance, linkage=group.linkage,
        diameter=group.diameter, fully_linked=group.fully_linked)
