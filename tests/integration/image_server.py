"""A real HTTP server on 127.0.0.1 serving generated images and every way a download can go
wrong; used by test_ingest.py and bench/bench_ingest.py.

Routes (the query string is ignored, so `?copy=2` gives another URL for the same bytes):
  /img/SEED.jpg, /img/SEED.png   a generated picture (the same bytes for the same seed)
  /status/CODE                   that status, always
  /flaky/N/SEED.jpg              503 for the first N requests of this path, then the picture
  /ratelimit/SECONDS/SEED.jpg    429 with Retry-After: SECONDS the first time, then the picture
  /redirect/K/SEED.jpg           K redirects (302), then the picture
  /loop                          302 to itself
  /redirect-ftp                  302 to an ftp:// URL
  /redirect-host/HOST/SEED.jpg   302 to http://HOST:PORT/img/SEED.jpg (this server's port)
  /location/TEXT                 302 with Location: TEXT, percent-decoded (any target)
  /html                          an HTML error page sent as Content-Type: image/jpeg
  /truncated/SEED.jpg            Content-Length 1000 more than the body, then hang up
  /big/BYTES                     a JPEG padded to BYTES with a Content-Length
  /big-unsized/BYTES             the same without Content-Length (ends when it hangs up)
  /slow/SECONDS/SEED.jpg         waits SECONDS before answering
  /trickle/SECONDS/SEED.jpg      headers at once, the body after SECONDS
  /drip/BYTES                    BYTES at once but for the last 100, sent one each 0.05 s
  /reset                         the connection is reset (TCP RST) before any answer
  /delay/SECONDS/SEED.jpg        the picture after SECONDS (slow but within any timeout)
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


@lru_cache(maxsize=None)
def image_bytes(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small picture with some structure (blocks of colour), distinct for each seed."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, fmt, **({"quality": 90} if fmt == "JPEG"
                                                       else {}))
    return buffer.getvalue()


def padded(size: int) -> bytes:
    """A JPEG followed by zero bytes up to `size` (still a JPEG to a magic-byte check)."""
    return image_bytes(1) + b"\0" * max(0, size - len(image_bytes(1)))


HTML = (b"<!DOCTYPE html>\n<html><head><title>Not Found</title></head>"
        b"<body><h1>Sorry, this product image is gone</h1></body></html>\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real image hosts

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server: ImageServer = self.server.owner
        path = self.path.split("?", 1)[0]
        server.record(self.path)
        parts = path.strip("/").split("/")
        kind = parts[0]
        try:
            getattr(self, "route_" + kind.replace("-", "_"))(server, path, *parts[1:])
        except AttributeError:
            self.answer(404, b"no such route\n", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer(self, code: int, body: bytes, content_type: str = "image/jpeg",
               length: int | None = None, headers: dict | None = None,
               close: bool = False, sized: bool = True) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if sized:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    @staticmethod
    def picture(name: str) -> bytes:
        stem, _, suffix = name.partition(".")
        return image_bytes(int(stem), "PNG" if suffix == "png" else "JPEG")

    def route_img(self, server, path, name):
        self.answer(200, self.picture(name), "image/png" if name.endswith(".png")
                    else "image/jpeg")

    def route_status(self, server, path, code):
        self.answer(int(code), f"status {code}\n".encode(), "text/plain")

    def route_flaky(self, server, path, failures, name):
        if server.hits[path] <= int(failures):
            self.answer(503, b"try later\n", "text/plain")
        else:
            self.route_img(server, path, name)

    def route_ratelimit(self, server, path, seconds, name):
        if server.hits[path] == 1:
            self.answer(429, b"slow down\n", "text/plain", headers={"Retry-After": seconds})
        else:
            self.route_img(server, path, name)

    def route_redirect(self, server, path, hops, name):
        target = f"/img/{name}" if int(hops) <= 1 else f"/redirect/{int(hops) - 1}/{name}"
        self.answer(302, b"", "text/plain", headers={"Location": target})

    def route_loop(self, server, path):
        self.answer(302, b"", "text/plain", headers={"Location": "/loop"})

    def route_redirect_ftp(self, server, path):
        self.answer(302, b"", "text/plain", headers={"Location": "ftp://127.0.0.1/x.jpg"})

    def route_redirect_host(self, server, path, host, name):
        target = f"http://{host}:{server.port}/img/{name}"
        self.answer(302, b"", "text/plain", headers={"Location": target})

    def route_location(self, server, path, *encoded):
        target = urllib.parse.unquote("/".join(encoded))
        self.answer(302, b"", "text/plain", headers={"Location": target})

    def route_html(self, server, path):
        self.answer(200, HTML, "image/jpeg")

    def route_truncated(self, server, path, name):
        body = self.picture(name)
        self.answer(200, body, length=len(body) + 1000, close=True)

    def route_big(self, server, path, size):
        self.answer(200, padded(int(size)))

    def route_big_unsized(self, server, path, size):
        self.answer(200, padded(int(size)), sized=False, close=True)

    def route_drip(self, server, path, size):
        body = padded(int(size))
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:-100])
        for offset in range(len(body) - 100, len(body)):  # never idle long, never done soon
            self.wfile.write(body[offset:offset + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def route_slow(self, server, path, seconds, name):
        time.sleep(float(seconds))
        self.route_img(server, path, name)

    def route_delay(self, server, path, seconds, name):
        self.route_slow(server, path, seconds, name)

    def route_trickle(self, server, path, seconds, name):
        body = self.picture(name)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:10])
        self.wfile.flush()
        time.sleep(float(seconds))
        self.wfile.write(body[10:])

    def route_reset(self, server, path):
        # SO_LINGER 0: close() sends a TCP RST instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        pass  # resets and clients that gave up are part of the tests


class ImageServer:
    """Start with `with ImageServer() as server:`; `server.url("/img/1.jpg")`."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self.hits: Counter[str] = Counter()  # requests per path (no query)
        self.times: dict[str, list[float]] = defaultdict(list)  # when each request came
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.owner = self
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def record(self, raw_path: str) -> None:
        path = raw_path.split("?", 1)[0]
        with self._lock:
            self.hits[path] += 1
            self.times[path].append(time.monotonic())

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "ImageServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
