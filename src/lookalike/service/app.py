"""The HTTP API over one index: query new pictures, add pictures, page through groups, and
read indexed files by id. Routes call the library (query, scan, find_groups, thumbnails)
and translate its errors into HTTP codes; nothing here searches or decodes by itself.

Nothing takes a path that reaches the file system but the JSON form of /query and /index,
and those only under the allow-list (limits.AllowList). Files are served by their integer id
in the index, and only while the file is live and unchanged since it was indexed. Requests
that change something must come from the server's own pages or from non-browser clients
(guard.SameOrigin), and every number a client sends has a range.

The schema is at /openapi.json; the interactive docs (/docs, /redoc) are not served: they
would load their scripts from a CDN into this origin.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Sequence

import xxhash
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ..decode import decode, exif_date
from ..errors import DecodeError, LookalikeError, ServeConfigError
from ..index.store import ChangeCounter, Index, display_path
from ..report.thumbs import ThumbCache
from ..scan import scan
from ..search.evidence import Evidence
from ..search.query import PreparedQuery
from ..types import Group
from . import models
from .guard import BearerAuth, SameOrigin
from .limits import (MAX_DISTANCE, MAX_PIXELS, MAX_UPLOAD_BYTES, MULTIPART_SLACK, SUFFIXES,
                     AllowList, BodyLimit, LoopbackHost, Refused, check_picture, is_loopback,
                     json_path)
from .review import review_routes
from .state import (ERRORS, GroupCache, StateCache, WriteLock, live, opened, parse_where,
                    select_groups, unchanged)

STATIC_DIR = Path(__file__).parent / "static"
UPLOADS_DIR = "uploads"  # next to the index: pictures added through POST /index
MAX_PAGE_SIZE = 500
MAX_PAGE = 1_000_000  # pages of groups: far more than any index holds at page_size 1
META_VALUES = 50  # values of each metadata key listed by GET /info
FileIdParam = PathParam(ge=1, le=models.MAX_ID, description="Id of an indexed file.")
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "minLength": 1,
                 "description": "a file under the server's allow-list"}}}},
}}}


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
               max_pixels: int = MAX_PIXELS, warm: bool = False) -> FastAPI:
    """The FastAPI app serving the index at `index_path` (it may not exist yet: POST /index
    creates it). With `token`, every API route needs `Authorization: Bearer TOKEN`; without
    one, only requests addressed to a loopback name are served (no DNS rebinding). `warm`:
    start computing the default groups at once, in the background."""
    index_path = Path(index_path).absolute()
    allow = AllowList.of(allow_paths)
    counter = ChangeCounter(index_path)
    groups, queries = GroupCache(counter), _QueryCache(counter)
    writes = WriteLock()
    app = FastAPI(title="lookalike", summary="Find duplicate images in an indexed collection, "
                  "review them and act on them safely. The web UI is at /.",
                  dependencies=[Depends(HTTPBearer(auto_error=False))] if token else [],
                  docs_url=None, redoc_url=None)  # their scripts would come from a CDN
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_SLACK)
    # With a token, the browser's Sec-Fetch-Site only: a proxy may rewrite Host or scheme.
    app.add_middleware(SameOrigin, check_origin=not token)
    if token:
        app.add_middleware(BearerAuth, token=token)  # outermost: before any body is read
    else:
        app.add_middleware(LoopbackHost)
    def index_info(index: Index) -> models.InfoOut:
        return groups.get(("info",), lambda: _info(index, index_path, bool(token)))

    if warm and index_path.exists():
        groups.warm(index_path, index_info)

    @app.exception_handler(LookalikeError)
    async def _library_error(request: Request, exc: LookalikeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)  # errors.py sets it

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of one route of the path
            headers["Allow"] = _allowed_methods(app, request.url.path) or headers.get(
                "Allow", "")
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=headers)

    @app.post("/query", response_model=models.QueryOut, responses=ERRORS,
              openapi_extra=_UPLOAD_BODY)
    async def query_route(request: Request,
                          method: str = Query("auto", max_length=models.MAX_NAME),
                          max_distance: int | None = Query(None, ge=0, le=MAX_DISTANCE),
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

    @app.post("/index", response_model=models.IndexOut, responses={**ERRORS, 409: {
        "model": models.ErrorOut}}, openapi_extra=_UPLOAD_BODY)
    async def index_route(request: Request) -> models.IndexOut:
        """Add pictures: multipart fields `file` (one or more), stored in `uploads/` next to
        the index, or JSON `{"path": ...}` under the allow-list. Uploads to this server
        queue one behind the other; 409 while another process (a scan) holds the index,
        and then nothing of the request is kept."""
        if _is_json(request):
            real = await run_in_threadpool(allow.resolve, json_path(await request.body()))
            data = await run_in_threadpool(_read_capped, real, max_upload_bytes)
            check_picture(data, max_upload_bytes, max_pixels)
            return await writes.run(_add, index_path, [(str(real), real)])
        uploads = await _uploads(request, max_upload_bytes, many=True)
        formats = [check_picture(data, max_upload_bytes, max_pixels) for _, data in uploads]
        # decoded outside the queue: the slow part needs no lock
        await run_in_threadpool(_check_readable, uploads, max_pixels)
        return await writes.run(_store_and_add, index_path, uploads, formats)

    @app.get("/groups", response_model=models.GroupsPage, responses=ERRORS)
    def groups_route(page: int = Query(1, ge=1, le=MAX_PAGE),
                     page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
                     min_size: int = Query(2, ge=2, le=models.MAX_GROUP_SIZE),
                     max_size: int | None = Query(None, ge=2, le=models.MAX_GROUP_SIZE),
                     method: str = Query("auto", max_length=models.MAX_NAME),
                     where: list[models.Where] = Query(
                         [], max_length=models.MAX_WHERE, description="KEY:VALUE (or "
                         "KEY=VALUE) of the files' metadata; repeat: all must hold")
                     ) -> models.GroupsPage:
        """Duplicate groups, largest first, a page at a time, with how each file matched
        and the marks a person made. Pairs marked not-duplicate are left apart."""
        conditions = parse_where(where)
        with opened(index_path) as index:
            found = groups.groups(index, method, conditions)
            chosen = select_groups(found.groups, min_size, max_size)
            start = (page - 1) * page_size
            shown = chosen[start:start + page_size]
            ids = index.live_file_ids(f.path for g in shown for f in g.files)
            marks = {i: m.mark for i, m in index.marks(ids.values()).items()}
        return models.GroupsPage(
            groups=[_group_out(g, start + n, ids, marks, found.evidence)
                    for n, g in enumerate(shown, 1)],
            page=page, page_size=page_size, total=len(chosen),
            pages=-(-len(chosen) // page_size))

    @app.get("/files/{file_id}", response_model=models.FileOut, responses=ERRORS)
    def file_route(file_id: int = FileIdParam) -> models.FileOut:
        """An indexed file's description, metadata, EXIF date and mark."""
        with opened(index_path) as index:
            record = live(index, file_id)
            mark = index.marks([file_id]).get(file_id)
        try:
            taken = exif_date(unchanged(record).path)
        except Refused:
            taken = None  # gone or changed: the index's description still stands
        return models.FileOut(file_id=record.id, path=display_path(record.path),
                              bytes=record.size, mtime_ns=record.mtime_ns, width=record.width,
                              height=record.height, format=record.format, mode=record.mode,
                              meta=record.meta, taken=taken, mark=mark and mark.mark)

    @app.get("/info", response_model=models.InfoOut, responses=ERRORS)
    def info_route() -> models.InfoOut:
        """What the index holds: files, methods, metadata keys (for the UI's filters)."""
        with opened(index_path) as index:
            return index_info(index)

    @app.get("/files/{file_id}/thumbnail", responses={**ERRORS, 200: {
        "content": {"image/webp": {}, "image/jpeg": {}}}})
    def thumbnail_route(file_id: int = FileIdParam) -> Response:
        """A small WebP of the file (cached next to the index, shared with the report)."""
        with opened(index_path) as index:
            record = unchanged(live(index, file_id))
            cache = ThumbCache.for_index(index)
            data = cache.get(record.path, record.content_hash)
        if data is None:
            raise Refused(404, "no thumbnail: the file cannot be read any more")
        return Response(data, media_type=cache.mime, headers=_cached(record.content_hash))

    @app.get("/files/{file_id}/content", responses={**ERRORS, 200: {"content": {"image/*": {}}}})
    def content_route(file_id: int = FileIdParam) -> Response:
        """The file's bytes, while it is unchanged since it was indexed."""
        with opened(index_path) as index:
            record = unchanged(live(index, file_id))
        return FileResponse(record.path, headers=_cached(record.content_hash),
                            media_type=_MIME.get(record.format, "application/octet-stream"))

    app.include_router(review_routes(index_path, writes, groups, queries))

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


# --- the work of the routes (in the thread pool: SQLite and decoding block) -----------------

def _query(index_path: Path, queries: "_QueryCache", name: str, data: bytes, fmt: str,
           method: str, max_distance: int | None, limit: int) -> models.QueryOut:
    with tempfile.TemporaryDirectory(prefix="lookalike-query-") as folder:
        picture = Path(folder) / f"query{SUFFIXES.get(fmt, '')}"
        picture.write_bytes(data)
        with opened(index_path) as index:
            prepared = queries.prepared(index, method, max_distance)
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
        with opened(index_path) as index:
            methods = [m for m in index.methods_present() if m != "pixels"] or None
    # One worker: the scan runs inside the server process, which already has its threads.
    summary = scan(paths=[str(p) for _, p in targets], index_path=index_path, methods=methods,
                   workers=1)
    with opened(index_path) as index:
        ids = index.live_file_ids(str(p) for _, p in targets)
        failed = {path: reason for path, _, reason in index.failures()} \
            if len(ids) < len(targets) else {}  # the reasons only when something failed
    files = [models.IndexedOut(name=name, file_id=ids.get(str(p)),
                               error=None if str(p) in ids else failed.get(str(p), "not indexed"))
             for name, p in targets]
    return models.IndexOut(files=files, scanned=summary.scanned, unchanged=summary.unchanged,
                           failed=summary.failed)


def _check_readable(uploads: list[tuple[str, bytes]], max_pixels: int) -> None:
    """Every upload decoded first: one that cannot be read is refused (422) before anything
    is stored, rather than kept in uploads/ and recorded as a failed file of the index."""
    for name, data in uploads:
        try:
            decode(data, max_pixels=max_pixels, texture_draft=None)  # readable is enough
        except DecodeError as exc:
            raise Refused(422, f"cannot read the picture {name}: {exc}") from None


def _store_and_add(index_path: Path, uploads: list[tuple[str, bytes]], formats: list[str]
                   ) -> models.IndexOut:
    """Store the uploads in uploads/ and scan them (under the server's write lock). What
    this request stored and did not get indexed is deleted again: a refused request (the
    index busy in another process) or a failed file leaves nothing behind."""
    folder = index_path.parent / UPLOADS_DIR
    created: list[Path] = []
    try:
        targets = [(name, _store_upload(folder, data, fmt, created))
                   for (name, data), fmt in zip(uploads, formats)]
        out = _add(index_path, targets)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    failed = {str(p) for (_, p), f in zip(targets, out.files) if f.file_id is None}
    for path in created:
        if str(path) in failed:
            path.unlink(missing_ok=True)
    return out


def _store_upload(folder: Path, data: bytes, fmt: str, created: list[Path]) -> Path:
    """`folder`/<xxh3 of the bytes><ext>, written to a temporary name and renamed, so the
    folder never holds half a file and the same upload twice is one file; a file this call
    wrote is added to `created` (one that was there already is not this request's)."""
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
        created.append(target)
    return target


class _QueryCache(StateCache):
    """A PreparedQuery per (method, radius): the codes and search structures are read once,
    not at every request (about 0.4 s of a query on 20,000 pictures)."""

    def prepared(self, index: Index, method: str, max_distance: int | None) -> PreparedQuery:
        return self.get(("query", method, max_distance),
                        lambda: PreparedQuery(index, method, max_distance))


# --- small translations ----------------------------------------------------------------------

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
         "TIFF": "image/tiff", "BMP": "image/bmp", "HEIF": "image/heif", "AVIF": "image/avif",
         "ICO": "image/x-icon", "PSD": "image/vnd.adobe.photoshop",
         "PPM": "image/x-portable-pixmap"}


def _allowed_methods(app: FastAPI, path: str) -> str | None:
    """The methods the schema documents at `path` ("GET, POST"), None for a path it lacks."""
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


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


def _group_out(group: Group, number: int, ids: dict[str, int], marks: dict[int, str],
               evidence: dict[str, Evidence]) -> models.GroupOut:
    files = []
    for f in group.files:
        if f.path not in ids:
            continue  # gone from the index since the groups were computed
        ev = evidence.get(f.path)
        files.append(models.GroupFileOut(
            file_id=ids[f.path], path=display_path(f.path), width=f.width, height=f.height,
            bytes=f.bytes, method=ev and ev.method, distance=ev and ev.distance,
            transform=ev and ev.transform, from_first=ev and ev.from_first,
            mark=marks.get(ids[f.path]),
            present=os.path.isfile(f.path)))
    return models.GroupOut(number=number, files=files, method=group.method,
                           max_distance=group.max_distance, linkage=group.linkage,
                           diameter=group.diameter, fully_linked=group.fully_linked)


def _info(index: Index, index_path: Path, token: bool) -> models.InfoOut:
    values: dict[str, Counter] = {}
    for meta in index.file_meta().values():
        for key, value in meta.items():
            if value is not None and value != "":
                values.setdefault(key, Counter())[str(value).lower() if isinstance(
                    value, bool) else str(value)] += 1
    files = sum(len(v) for v in index.live_files().values())
    return models.InfoOut(index=display_path(str(index_path)), files=files,
                          methods=["auto", *index.methods_present()], token=token,
                          meta={k: [v for v, _ in c.most_common(META_VALUES)]
                                for k, c in sorted(values.items())})


def _cached(content_hash: bytes | None) -> dict[str, str]:
    """Headers for a file's bytes or thumbnail: the same id may show other bytes after a
    scan, so the browser keeps them briefly and revalidates by the content hash."""
    return {"ETag": f'"{(content_hash or b"").hex()}"', "Cache-Control": "private, max-age=60"}
