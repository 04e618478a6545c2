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
from pathlib import Path
from typing import Sequence

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ..errors import LookalikeError, ServeConfigError
from ..index.store import ChangeCounter
from .guard import BearerAuth, SameOrigin
from .limits import (MAX_PIXELS, MAX_UPLOAD_BYTES, MULTIPART_SLACK, AllowList, BodyLimit,
                     LoopbackHost, is_loopback)
from .review import review_routes
from .routes_files import file_routes
from .routes_groups import group_routes, index_info
from .routes_health import health_routes
from .routes_partial import partial_routes
from .routes_pictures import Uploads, picture_routes
from .state import GroupCache, QueryCache, WriteLock

STATIC_DIR = Path(__file__).parent / "static"


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
    counter = ChangeCounter(index_path)
    # shared by the routes: computed values valid until the index changes, one write lock
    groups, queries, writes = GroupCache(counter), QueryCache(counter), WriteLock()
    info = index_info(groups, index_path, bool(token))
    if warm and index_path.exists():
        groups.warm(index_path, info, groups.health)
    app = FastAPI(title="lookalike", summary="Find duplicate images in an indexed collection, "
                  "review them and act on them safely. The web UI is at /.",
                  dependencies=[Depends(HTTPBearer(auto_error=False))] if token else [],
                  docs_url=None, redoc_url=None)  # their scripts would come from a CDN
    _guard(app, token, max_upload_bytes)
    _translate_errors(app)
    uploads = Uploads(AllowList.of(allow_paths), max_upload_bytes, max_pixels)
    app.include_router(picture_routes(index_path, uploads, writes, queries))
    app.include_router(group_routes(index_path, groups, info))
    app.include_router(health_routes(index_path, groups))
    app.include_router(partial_routes(index_path, groups))
    app.include_router(file_routes(index_path))
    app.include_router(review_routes(index_path, writes, groups, queries))
    _web_ui(app)
    return app


def _guard(app: FastAPI, token: str | None, max_upload_bytes: int) -> None:
    """The checks before any route: body size, same origin, then (outermost, before any
    body is read) the bearer token, or without one a loopback Host."""
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_SLACK)
    # With a token, the browser's Sec-Fetch-Site only: a proxy may rewrite Host or scheme.
    app.add_middleware(SameOrigin, check_origin=not token)
    if token:
        app.add_middleware(BearerAuth, token=token)
    else:
        app.add_middleware(LoopbackHost)


def _translate_errors(app: FastAPI) -> None:
    """Library errors as their HTTP status (errors.py sets it); HTTP errors as JSON, a 405
    naming every method of the path."""
    @app.exception_handler(LookalikeError)
    async def _library_error(request: Request, exc: LookalikeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

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


def _web_ui(app: FastAPI) -> None:
    """The page at / and its static files (no schema: they are no API)."""
    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _allowed_methods(app: FastAPI, path: str) -> str | None:
    """The methods the schema documents at `path` ("GET, POST"), None for a path it lacks."""
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None
