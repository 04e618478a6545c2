"""`lookalike serve`: the HTTP API (service/app.py) under uvicorn. Registered on main.app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..actions.follow import catch_up
from ..errors import LookalikeError
from ..settings import setting
from .common import USAGE, _fail, _index_path, app, err

TOKEN_ENV = "LOOKALIKE_TOKEN"
# Seconds a stop (SIGTERM, Ctrl-C) waits for requests in progress before cutting them off:
# without a limit, one client sending its body slowly kept the server up for ever.
SHUTDOWN_GRACE_S = 3


@app.command("serve")
def serve_command(
    index: Optional[Path] = typer.Option(None, "--index", help="Index database (default: "
                                         "found from the current folder, or $LOOKALIKE_INDEX)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but "
                             "loopback needs a token."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help="File holding the "
                                              "bearer token clients must send (else "
                                              f"${TOKEN_ENV})."),
    allow_path: list[Path] = typer.Option([], "--allow-path", help="Folder whose files "
                                           "clients may name by path in JSON requests "
                                           "(repeatable). Default: none, uploads only."),
    max_upload_mb: float = typer.Option(50, "--max-upload-mb", min=0.001,
                                        help="Largest upload accepted."),
    max_pixels: int = typer.Option(64_000_000, "--max-pixels", min=1,
                                   help="Largest picture accepted, in pixels (by its header)."),
    warm: bool = typer.Option(True, "--warm/--no-warm", help="Compute the duplicate groups "
                              "as the server starts, so the web UI's first page is quick."),
) -> None:
    """Serve the index over HTTP: the web UI at /, the API's schema (OpenAPI) at
    /openapi.json. Requests that change something are refused from other sites' pages."""
    try:
        import uvicorn

        from ..service.app import check_bind, create_app
    except ImportError as exc:
        raise _fail(f"lookalike serve needs the serve extra: pip install 'lookalike[serve]' "
                    f"({exc})", USAGE) from None
    token = _read_token(token_file)
    try:
        check_bind(host, token)
        index_path = index if index is not None else _index_path(None)
        if warning := catch_up(index_path):  # a killed apply or undo: learn what it did first
            err.print(f"warning: {warning}", markup=False)
        service = create_app(index_path, token=token, allow_paths=allow_path,
                             max_upload_bytes=int(max_upload_mb * (1 << 20)),
                             max_pixels=max_pixels, warm=warm)
    except LookalikeError as exc:
        raise _fail(str(exc), USAGE) from None
    err.print(f"serving {index_path} on http://{host}:{port} (web UI at /, API schema at "
              "/openapi.json)")
    uvicorn.run(service, host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def _read_token(token_file: Optional[Path]) -> str | None:
    if token_file is None:
        return setting(TOKEN_ENV) or None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read the token file {token_file}: {exc}", USAGE) from None
    if not token:
        raise _fail(f"the token file {token_file} is empty", USAGE)
    return token
