"""Helpers for the tests of `lookalike serve`: uvicorn on a free loopback port in a thread,
and a small collection with known duplicate groups for the review and UI tests."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .conftest import dihedral, jpeg, picture, png

BASE_MTIME = 1_600_000_000_000_000_000


@contextmanager
def running(app):
    """uvicorn serving `app` on a free loopback port, in a thread; yields the base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def raw_get(base: str, target: str, headers: str = "", host: str | None = None
            ) -> tuple[int, bytes]:
    """GET `target` byte for byte as given (no normalisation of `..` or %-escapes), naming
    `host` in the Host header (default: the server's address)."""
    address, port = base.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {address if host is None else host}\r\n"
                     f"{headers}Connection: close\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@dataclass
class Review:
    root: Path  # lib/ and ref/ below it
    index: Path
    groups: dict[str, set[str]]  # name -> the relative paths of the group


def exif_jpeg(image: Image.Image, taken: str) -> bytes:
    """A JPEG with an EXIF DateTimeOriginal ("YYYY:MM:DD HH:MM:SS")."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def build_review(root: Path) -> Review:
    """Three groups and two loners, scanned:

    big:   lib/a.jpg (240x180, EXIF date), lib/a_copy.png (the same pixels), lib/a_small.jpg
    ref:   ref/b.jpg (a reference file) and lib/b_q70.jpg
    turned: lib/c.jpg and lib/c_turned.png (turned a quarter)
    and lib/d.jpg, lib/e.png alone."""
    from lookalike.scan import scan

    a = picture(7001)
    a_bytes = exif_jpeg(a, "2021:05:06 07:08:09")
    with_pixels = Image.open(io.BytesIO(a_bytes)).convert("RGB")
    files = {
        "lib/a.jpg": a_bytes, "lib/a_copy.png": png(with_pixels),
        "lib/a_small.jpg": jpeg(a.resize((120, 90), Image.LANCZOS), 85),
        "ref/b.jpg": jpeg(picture(7002)), "lib/b_q70.jpg": jpeg(picture(7002), 70),
        "lib/c.jpg": jpeg(picture(7003)), "lib/c_turned.png": png(dihedral(picture(7003), "rot90")),
        "lib/d.jpg": jpeg(picture(7004)), "lib/e.png": png(picture(7005)),
    }
    for n, (name, data) in enumerate(sorted(files.items())):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(BASE_MTIME + n * 10**9, BASE_MTIME + n * 10**9))
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, workers=1)
    return Review(root, index, {"big": {"lib/a.jpg", "lib/a_copy.png", "lib/a_small.jpg"},
                                "ref": {"ref/b.jpg", "lib/b_q70.jpg"},
                                "turned": {"lib/c.jpg", "lib/c_turned.png"}})


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """relative path -> (sha256, mtime_ns) of every file, the index's folder aside."""
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".lookalike"]
        for name in names:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                path.stat().st_mtime_ns)
    return out


def group_names(groups, root: Path) -> list[set[str]]:
    """The groups (of find_groups, or of GET /groups as JSON) as sets of relative paths."""
    out = []
    for g in groups:
        files = g["files"] if isinstance(g, dict) else g.files
        out.append({os.path.relpath(f["path"] if isinstance(f, dict) else f.path, root)
                    for f in files})
    return out
