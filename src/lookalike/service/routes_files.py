"""The routes that read one indexed file by its id: its description, a thumbnail and its
bytes. A file is served only while it is live and unchanged since it was indexed (what is
served is what the index describes)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from ..decode import exif_date
from ..index.store import display_path
from ..report.thumbs import ThumbCache
from ..sources.remote import is_remote, read_bytes
from ..worker import MAX_FILE_BYTES
from . import models
from .limits import Refused
from .state import ERRORS, live, opened, unchanged

FileIdParam = PathParam(ge=1, le=models.MAX_ID, description="Id of an indexed file.")
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
         "TIFF": "image/tiff", "BMP": "image/bmp", "HEIF": "image/heif", "AVIF": "image/avif",
         "ICO": "image/x-icon", "PSD": "image/vnd.adobe.photoshop",
         "PPM": "image/x-portable-pixmap"}


def file_routes(index_path: Path) -> APIRouter:
    """GET /files/{id}, its thumbnail and its content, over the index at `index_path`."""
    router = APIRouter()

    @router.get("/files/{file_id}", response_model=models.FileOut, responses=ERRORS)
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

    @router.get("/files/{file_id}/thumbnail", responses={**ERRORS, 200: {
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

    @router.get("/files/{file_id}/content",
                responses={**ERRORS, 200: {"content": {"image/*": {}}}})
    def content_route(file_id: int = FileIdParam) -> Response:
        """The file's bytes, while it is unchanged since it was indexed."""
        with opened(index_path) as index:
            record = unchanged(live(index, file_id))
        media_type = _MIME.get(record.format, "application/octet-stream")
        if is_remote(record.path):  # an object (s3://...): read whole, as the scan read it
            try:
                data = read_bytes(record.path, MAX_FILE_BYTES)
            except OSError as exc:
                raise Refused(404, f"file {record.id} cannot be read: "
                                   f"{exc.strerror or exc}") from None
            return Response(data, media_type=media_type, headers=_cached(record.content_hash))
        return FileResponse(record.path, headers=_cached(record.content_hash),
                            media_type=media_type)

    return router


def _cached(content_hash: bytes | None) -> dict[str, str]:
    """Headers for a file's bytes or thumbnail: the same id may show other bytes after a
    scan, so the browser keeps them briefly and revalidates by the content hash."""
    return {"ETag": f'"{(content_hash or b"").hex()}"', "Cache-Control": "private, max-age=60"}
