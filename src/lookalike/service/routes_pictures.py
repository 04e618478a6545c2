"""The routes that take pictures from a client: POST /query (is this picture already in the
index?) and POST /index (add pictures). Either form: multipart uploads, or JSON naming a file
under the server's allow-list; every picture is checked (bytes, declared pixels) before the
library sees it."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import xxhash
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..decode import decode
from ..errors import DecodeError
from ..report.words import pair_words
from ..scan import scan
from . import models
from .limits import MAX_DISTANCE, SUFFIXES, AllowList, Refused, check_picture, json_path
from .state import ERRORS, QueryCache, WriteLock, opened

UPLOADS_DIR = "uploads"  # next to the index: pictures added through POST /index
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "minLength": 1,
                 "description": "a file under the server's allow-list"}}}},
}}}


@dataclass(frozen=True)
class Uploads:
    """What the routes accept: JSON paths under `allow` only, pictures of at most `max_bytes`
    bytes and `max_pixels` declared pixels."""

    allow: AllowList
    max_bytes: int
    max_pixels: int


def picture_routes(index_path: Path, uploads: Uploads, writes: WriteLock,
                   queries: QueryCache) -> APIRouter:
    """POST /query and POST /index over the index at `index_path` (absolute); `writes` is the
    server's one write lock, `queries` its prepared queries."""
    router = APIRouter()
    allow, max_bytes, max_pixels = uploads.allow, uploads.max_bytes, uploads.max_pixels

    @router.post("/query", response_model=models.QueryOut, responses=ERRORS,
                 openapi_extra=_UPLOAD_BODY)
    async def query_route(request: Request,
                          method: str = Query("auto", max_length=models.MAX_NAME),
                          max_distance: int | None = Query(None, ge=0, le=MAX_DISTANCE),
                          limit: int = Query(20, ge=1, le=models.MAX_PAGE_SIZE)
                          ) -> models.QueryOut:
        """Is this picture already in the index? Send it as multipart field `file`, or as
        JSON `{"path": ...}` naming a file under the server's allow-list."""
        if _is_json(request):
            # file system work off the event loop: one slow disk must not stall every client
            real = await run_in_threadpool(allow.resolve, json_path(await request.body()))
            name, data = str(real), await run_in_threadpool(_read_capped, real, max_bytes)
        else:
            (name, data), = await _uploads(request, max_bytes, many=False)
        fmt = check_picture(data, max_bytes, max_pixels)
        return await run_in_threadpool(_query, index_path, queries, name, data, fmt, method,
                                       max_distance, limit)

    @router.post("/index", response_model=models.IndexOut, responses={**ERRORS, 409: {
        "model": models.ErrorOut}}, openapi_extra=_UPLOAD_BODY)
    async def index_route(request: Request) -> models.IndexOut:
        """Add pictures: multipart fields `file` (one or more), stored in `uploads/` next to
        the index, or JSON `{"path": ...}` under the allow-list. Uploads to this server
        queue one behind the other; 409 while another process (a scan) holds the index,
        and then nothing of the request is kept."""
        if _is_json(request):
            real = await run_in_threadpool(allow.resolve, json_path(await request.body()))
            data = await run_in_threadpool(_read_capped, real, max_bytes)
            check_picture(data, max_bytes, max_pixels)
            return await writes.run(_add, index_path, [(str(real), real)])
        sent = await _uploads(request, max_bytes, many=True)
        formats = [check_picture(data, max_bytes, max_pixels) for _, data in sent]
        # decoded outside the queue: the slow part needs no lock
        await run_in_threadpool(_check_readable, sent, max_pixels)
        return await writes.run(_store_and_add, index_path, sent, formats)

    return router


# --- the work of the routes (in the thread pool: SQLite and decoding block) -----------------

def _query(index_path: Path, queries: QueryCache, name: str, data: bytes, fmt: str,
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
    # QueryResult.to_dict names the fields; the API adds the file's id
    matches = [models.MatchOut(file_id=ids[m.b], words=pair_words(m), **shown)
               for m, shown in zip(result.matches, result.to_dict()["matches"])
               if m.b in ids]  # a file that vanished meanwhile
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
    return models.IndexOut(files=files, **summary.as_dict())  # scanned, unchanged, failed


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


# --- reading what the client sent ------------------------------------------------------------

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
