"""Fixtures for the integration tests: the real `lookalike` command on real files and a real
SQLite index.

Every test here runs the installed console script in a subprocess (the one next to the
interpreter running pytest), so argument parsing, exit codes, stdout/stderr and the process
pool are the ones a user gets.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike.evaluation.transforms import EDITS, apply, encode
from lookalike.sample import synthetic_picture

from .ray_cluster import cluster  # noqa: F401  (the two-node Ray cluster fixture)

LOOKALIKE = Path(sys.executable).parent / "lookalike"
SIZE = (240, 180)  # small pictures keep the suite fast


# --- running the command ---------------------------------------------------------------------

@dataclass
class Result:
    args: list
    code: int
    stdout: str
    stderr: str

    def json(self):
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not JSON ({exc}) from {self}") from None

    def __str__(self) -> str:
        return (f"lookalike {' '.join(map(os.fsdecode, self.args))} -> exit {self.code}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}")


def cli_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_INDEX"}
    env.update(extra)
    return env


def run_cli(*args, cwd=None, stdin: bytes | None = None, timeout: float = 120,
            env: dict | None = None, **popen) -> Result:
    """`lookalike ARGS...` in a subprocess; paths may be str, bytes or Path.

    The command runs in its own session: on timeout the whole process group (its worker
    processes too) is killed before subprocess.TimeoutExpired is raised.
    """
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in args]
    proc = subprocess.Popen([os.fspath(LOOKALIKE), *argv], cwd=cwd, env=env or cli_env(),
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **popen)
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        raise
    return Result(argv, proc.returncode, stdout.decode("utf-8", "replace"),
                  stderr.decode("utf-8", "replace"))


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def cli():
    assert LOOKALIKE.exists(), f"console script not installed at {LOOKALIKE}"
    return run_cli


# --- pictures --------------------------------------------------------------------------------

def picture(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    return synthetic_picture(seed, size)


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    return encode(image, "JPEG", quality=quality)


def png(image: Image.Image) -> bytes:
    return encode(image, "PNG")


def layout(variant: str = "base", size: tuple[int, int] = SIZE) -> Image.Image:
    """A gradient with three shapes; variants move or recolour one shape (different pictures
    that look alike)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([60 + x * 0.3, 90 + y * 0.4, np.full_like(x, 150)], axis=-1)
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    sx, sy = width / 240, height / 180
    draw.rectangle([20 * sx, 20 * sy, 90 * sx, 80 * sy], fill=(200, 40, 40))
    draw.ellipse([140 * sx, 100 * sy, 200 * sx, 160 * sy], fill=(30, 160, 60))
    if variant == "moved":
        draw.rectangle([150 * sx, 20 * sy, 220 * sx, 80 * sy], fill=(230, 210, 40))
    elif variant == "recoloured":
        draw.rectangle([30 * sx, 100 * sy, 100 * sx, 160 * sy], fill=(20, 20, 120))
    else:
        draw.rectangle([30 * sx, 100 * sy, 100 * sx, 160 * sy], fill=(230, 210, 40))
    return image


def sky_gradient(size: tuple[int, int] = SIZE) -> Image.Image:
    width, height = size
    y = np.mgrid[0:height, 0:width][0].astype(np.float32) / height
    rgb = np.stack([80 + y * 150, 140 + y * 100, np.full_like(y, 230)], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def radial_gradient(size: tuple[int, int] = SIZE) -> Image.Image:
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot(x - width / 2, y - height / 2)
    r /= r.max()
    rgb = np.stack([250 - r * 180, 180 - r * 120, 60 + r * 100], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def noise(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def dihedral(image: Image.Image, name: str) -> Image.Image:
    """The picture seen through one of methods/dihedral.py NAMES, built with NumPy so the test
    does not trust the code under test: k < 4 is rot90(x, k) (counter-clockwise), k >= 4 is
    rot90(fliplr(x), k - 4)."""
    names = ("identity", "rot90", "rot180", "rot270",
             "mirror", "mirror+rot90", "mirror+rot180", "mirror+rot270")
    k = names.index(name)
    array = np.asarray(image)
    if k >= 4:
        array = array[:, ::-1]
    return Image.fromarray(np.ascontiguousarray(np.rot90(array, k % 4, axes=(0, 1))))


@pytest.fixture(scope="session")
def pics():
    """The picture helpers, for tests that build their own folders."""
    class Pics:
        pass

    p = Pics()
    for fn in (picture, jpeg, png, layout, sky_gradient, radial_gradient, noise, dihedral,
               png_bomb):
        setattr(p, fn.__name__, staticmethod(fn))
    p.SIZE = SIZE
    return p


# --- the index -------------------------------------------------------------------------------

def db_rows(index: Path, sql: str, params: Sequence = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def db():
    return db_rows


# --- a collection with one planted duplicate of each kind and hard negatives -----------------

@dataclass
class Collection:
    root: Path
    index: Path
    source_of: dict[str, str]  # file name -> the picture it shows
    planted: dict[str, tuple[str, str]]  # edit kind -> (original, edited copy)
    negatives: list[str] = field(default_factory=list)  # distinct pictures, no copies


def build_planted(root: Path) -> Collection:
    root.mkdir(parents=True, exist_ok=True)
    source_of: dict[str, str] = {}
    planted: dict[str, tuple[str, str]] = {}
    for number, kind in enumerate(EDITS):
        image = picture(100 + number)
        data = jpeg(image)
        edited, suffix = apply(kind, image, data)
        original, copy = f"src_{kind}.jpg", f"dup_{kind}{suffix}"
        (root / original).write_bytes(data)
        (root / copy).write_bytes(edited)
        source_of[original] = source_of[copy] = kind
        planted[kind] = (original, copy)
    negatives: dict[str, bytes] = {}
    for seed in range(8):  # same generator, different seeds
        negatives[f"neg_seed{seed}.jpg"] = jpeg(picture(500 + seed))
    negatives["neg_layout.jpg"] = jpeg(layout("base"))
    negatives["neg_layout_moved.jpg"] = jpeg(layout("moved"))
    negatives["neg_layout_recoloured.jpg"] = jpeg(layout("recoloured"))
    negatives["neg_sky.jpg"] = jpeg(sky_gradient())
    negatives["neg_radial.jpg"] = jpeg(radial_gradient())
    for seed in range(3):
        negatives[f"neg_noise{seed}.png"] = png(noise(900 + seed))
    for name, data in negatives.items():
        (root / name).write_bytes(data)
        source_of[name] = name
    return Collection(root, root / ".lookalike" / "index.db", source_of, planted,
                      sorted(negatives))


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> Collection:
    """Built and scanned once; tests only read it."""
    collection = build_planted(tmp_path_factory.mktemp("planted") / "photos")
    result = run_cli("scan", collection.root, "--format", "json")
    assert result.code == 0, str(result)
    summary = result.json()
    assert summary["failed"] == 0 and summary["scanned"] == len(collection.source_of), summary
    return collection


# --- a corpus of bad and awkward inputs ------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid, tiny PNG whose header claims width x height 8-bit RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + _png_chunk(b"IEND", b""))


NON_UTF8_NAME = b"caf\xe9.jpg"


@dataclass
class BadCorpus:
    root: Path
    bad: dict[str, str]  # file name -> a word the failure reason must contain
    good: dict[str, str]  # file name -> picture id (files sharing an id are duplicates)
    heic: bool  # whether a HEIC file could be written


def build_bad_corpus(root: Path) -> BadCorpus:
    root.mkdir(parents=True, exist_ok=True)
    bad: dict[str, str] = {}
    good: dict[str, str] = {}
    base = picture(1)

    def put(name, data, group=None, reason=None):
        (root / name).write_bytes(data)
        if group is not None:
            good[name] = group
        if reason is not None:
            bad[name] = reason

    put("original.jpg", jpeg(base), group="base")
    put("copy_of_original.jpg", jpeg(base), group="base")
    put("empty.jpg", b"", reason="empty")
    longer = jpeg(picture(2, (320, 240)))
    put("truncated.jpg", longer[: len(longer) // 2], reason="truncated")
    put("notes.jpg", b"This is a shopping list, not a picture.\n", reason="not an image")
    put("page.jpg", b"<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n",
        reason="html")
    put("bomb.png", png_bomb(), reason="too many pixels")
    # A non-UTF-8 file name holding a valid JPEG, a byte copy of another file.
    other = jpeg(picture(3))
    (root / os.fsdecode(NON_UTF8_NAME)).write_bytes(other)
    good[os.fsdecode(NON_UTF8_NAME)] = "cafe"
    put("cafe_twin.jpg", other, group="cafe")
    # Awkward but valid formats, all showing `base`.
    sixteen = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    buffer = io.BytesIO()
    Image.fromarray(sixteen).save(buffer, "PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I;16")
    put("grey16.png", buffer.getvalue(), group="base")
    buffer = io.BytesIO()
    base.convert("CMYK").save(buffer, "JPEG", quality=92)
    put("cmyk.jpg", buffer.getvalue(), group="base")
    heic = False
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        buffer = io.BytesIO()
        base.save(buffer, "HEIF", quality=90)
        put("photo.heic", buffer.getvalue(), group="base")
        heic = True
    except Exception:  # noqa: BLE001  (no HEIC encoder: the HEIC test skips)
        pass
    first, second = picture(4), picture(5)
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    put("animated.gif", buffer.getvalue(), group="frames")
    buffer = io.BytesIO()
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    put("pages.tif", buffer.getvalue(), group="frames")
    # Wrong or missing extension, valid content.
    put("really_a_png.jpg", png(picture(6)), group="png-named-jpg")
    put("no_extension", jpeg(picture(7)), group="jpeg-no-ext")
    # Symbolic link loops: a folder linking to its parent, a link to itself.
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")
    os.symlink("self.jpg", root / "self.jpg")
    bad["sub/up"] = "loop"
    bad["self.jpg"] = "loop"
    return BadCorpus(root, bad, good, heic)


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> BadCorpus:
    return build_bad_corpus(tmp_path_factory.mktemp("bad") / "corpus")
