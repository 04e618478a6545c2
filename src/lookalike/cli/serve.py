"""`lookalike serve`: the HTTP API (service/app.py) under uvicorn. Registered on main.app."""

from __future__ import annotations

import socket
import threading
import time
import webbrowser
from pathlib import Path
from typing import Optional
from urllib.parse import quote

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
    open_browser: bool = typer.Option(False, "--open", help="Open the web UI in the default "
                                      "browser once the server answers."),
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
    if port == 0:  # any free port: chosen here, so that the printed link names it
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    link = ui_link(host, port, token)
    err.print(f"serving {index_path}; web UI: {link} (API schema at /openapi.json)",
              markup=False, soft_wrap=True)
    if open_browser:
        threading.Thread(target=_open_when_up, args=(host, port, link), daemon=True).start()
    uvicorn.run(service, host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def ui_link(host: str, port: int, token: str | None) -> str:
    """The web UI's address to print and open: a wildcard bind is reached on loopback, and a
    token rides after '#', which the page reads and the browser never sends (as Jupyter's
    link carries its token)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    link = f"http://{shown}:{port}/"
    return f"{link}#token={quote(token, safe='')}" if token else link


def _open_when_up(host: str, port: int, link: str, wait_s: float = 30.0) -> None:
    """Open `link` in the default browser ($BROWSER, as Python's webbrowser reads it) once
    the port takes connections; say so when it cannot be opened."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((target, port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    if not webbrowser.open(link):
        err.print("could not open a browser; open the link above", markup=False)


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
