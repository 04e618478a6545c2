"""What the service lets in: request size, picture size, and the paths a client may name.

Uploads are checked here, at the edge, before the library sees them: a body over the byte
limit is cut off while it streams (BodyLimit), and a picture's declared dimensions are read
from its header (no pixels decoded) so that a small file declaring a huge canvas is refused
before anything decodes it.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from starlette.exceptions import HTTPException

from ..decode import describe_content, sniff
from ..errors import Refused

MAX_UPLOAD_BYTES = 50 << 20
MAX_PIXELS = 64_000_000  # a 8000 x 8000 picture; the library's own cap (decode.py) is larger
# Multipart framing (boundaries, part headers) on top of the picture's own bytes.
MULTIPART_SLACK = 64 << 10
# Bits of the longest code (PDQ): a larger Hamming radius means nothing more, and an
# unbounded one once kept the multi-index search looping.
MAX_DISTANCE = 256


def check_picture(data: bytes, max_bytes: int, max_pixels: int) -> str:
    """The format of an uploaded picture, or Refused with why it cannot be one."""
    if not data:
        raise Refused(400, "empty upload (0 bytes)")
    if len(data) > max_bytes:
        raise Refused(413, f"upload over the limit of {max_bytes:,} bytes")
    fmt = sniff(data[:32])
    if fmt is None:
        raise Refused(415, f"not an image: the content is {describe_content(data[:512])}")
    width, height = _declared_size(data)
    if width * height > max_pixels:
        raise Refused(413, f"picture too large: {width}x{height} pixels declared, the limit is "
                      f"{max_pixels:,} pixels")
    return fmt


def _declared_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header, or (0, 0) when Pillow cannot read one (decoding
    then fails with its own reason, which the query reports)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our limit is checked by the caller; Pillow's would raise
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001  (any header fault: the decoder reports it properly)
        return 0, 0


SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tiff",
            "BMP": ".bmp", "HEIF": ".heic", "AVIF": ".avif", "ICO": ".ico", "PSD": ".psd",
            "PPM": ".ppm", "QOI": ".qoi"}


@dataclass(frozen=True)
class AllowList:
    """Folders (resolved, symlinks followed) a JSON request may name files under."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, paths: Sequence[str | os.PathLike]) -> "AllowList":
        return cls(tuple(Path(os.path.realpath(p)) for p in paths))

    def resolve(self, path: object) -> Path:
        """The real path of `path` if it is a file under one of the roots; else Refused.

        The check is on the fully resolved path, so `..`, symlinks that lead out and
        absolute paths elsewhere are all refused the same way. Relative paths are refused:
        relative to what, on a server?
        """
        if not isinstance(path, str) or not path:
            raise Refused(422, "'path' must be a non-empty string")
        if "\x00" in path:
            raise Refused(400, "path contains a NUL byte")
        if not self.roots:
            raise Refused(403, "this server has no allow-list: upload the file instead")
        if not os.path.isabs(path):
            raise Refused(403, "path must be absolute and under an allowed folder")
        real = Path(os.path.realpath(path))
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            raise Refused(403, "path is outside the allowed folders")
        if not real.is_file():
            raise Refused(404, "no such file under the allowed folders")
        return real


def json_path(body: bytes) -> object:
    """The "path" member of a JSON request body."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(value, dict) or "path" not in value:
        raise Refused(422, 'expected a JSON object {"path": "/absolute/path"}')
    return value["path"]


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 as soon as it is seen to
    be too large (by its Content-Length, or while it streams), never after it is all read."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(413, f"request body over the limit of {self.limit:,} bytes")
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body over the limit of {self.limit:,} bytes"}
                          ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on as a 413 (it turns any
    other exception met while reading a form into a 400)."""


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def host_name(header: bytes) -> str:
    """The name part of a Host header: "127.0.0.1:8765" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class LoopbackHost:
    """ASGI middleware for a server without a token: only requests addressed to a loopback
    name (Host: 127.0.0.1, localhost, [::1]) are served. A web page elsewhere that points a
    name of its own at 127.0.0.1 (DNS rebinding) reaches nothing."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or ()).get(b"host", b"")
            if not is_loopback(host_name(host)):
                body = json.dumps({"detail": "this server answers to loopback names only "
                                   "(127.0.0.1, localhost); serve with a token to be reached "
                                   "by other names"}).encode()
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
