"""Plain values passed between the stages of a scan and a search."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@dataclass(frozen=True)
class FileRef:
    """A file found by a source, with what `stat` said about it."""

    path: str
    size: int
    mtime_ns: int


class Decoded:
    """A decoded picture: upright RGB pixels, alpha composited, possibly draft-reduced.

    Held as a Pillow image, or as an H x W x 3 uint8 array where a JPEG or PNG was decoded
    straight into one (decode_jpeg.py, decode_png.py): `image` then makes the Pillow image on
    first use, and `Picture.rgb` takes the array as it is. Treat both as read-only.
    """

    __slots__ = ("_image", "pixels", "width", "height", "format", "mode", "frames")

    def __init__(self, image: Image.Image | None = None, width: int = 0, height: int = 0,
                 format: str = "", mode: str = "", frames: int = 1, *,
                 pixels: np.ndarray | None = None) -> None:
        if image is None and pixels is None:
            raise ValueError("Decoded needs an image or pixels")
        self._image = image
        self.pixels = pixels
        self.width = width  # upright size of the full picture, before any draft reduction
        self.height = height
        self.format = format
        self.mode = mode  # colour mode of the file, e.g. "P", "CMYK", "I;16"
        self.frames = frames

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            from PIL import Image

            self._image = Image.fromarray(self.pixels)  # H x W x 3 uint8: RGB
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the pixels as decoded (after any draft reduction)."""
        if self.pixels is not None:
            return self.pixels.shape[1], self.pixels.shape[0]
        return self._image.size

    def __repr__(self) -> str:
        return (f"Decoded({self.format} {self.mode} {self.width}x{self.height}, "
                f"decoded {self.size[0]}x{self.size[1]})")


@dataclass(frozen=True)
class Skipped:
    """A name the walk passed over on purpose (a link not followed, a FIFO): not an error,
    but counted and listed so that nothing is left out without a word."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": _printable(self.path), "reason": self.reason}


@dataclass(frozen=True)
class Failure:
    """Why one file could not be processed; stored in the index and reported, never raised."""

    path: str
    stage: str  # "read", "type", "decode", "signature", "walk"
    reason: str

    def to_dict(self) -> dict:
        return {"path": _printable(self.path), "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True)
class Signature:
    """One method's signature of one picture: all 8 dihedral variants (identity first)."""

    method: str
    version: int
    params: str
    value: bytes
    quality: float = 100.0


@dataclass(frozen=True)
class Scanned:
    """Everything a worker learned about one file."""

    ref: FileRef
    content: bytes  # 16-byte hash of the file bytes
    kind: str  # "image" or "other"
    width: int = 0
    height: int = 0
    format: str = ""
    mode: str = ""
    signatures: tuple[Signature, ...] = ()
    failure: Failure | None = None
    frames: int = 1  # frames of an animation or pages of a TIFF (the first is the one signed)


@dataclass(frozen=True)
class Match:
    """A near pair: `b` matched `a` by `method` at `distance` (bits), seen through `transform`."""

    a: str
    b: str
    method: str
    distance: int
    score: float  # 1.0 identical, lower is less alike
    transform: str = "identity"
    evidence: str = ""  # what decided the pair, where the thorough mode judged it

    def to_dict(self) -> dict:
        """The pair as JSON, CSV, DataFrames and the API show it (printable paths)."""
        return {"a": _printable(self.a), "b": _printable(self.b), "method": self.method,
                "distance": self.distance, "score": round(self.score, 4),
                "transform": self.transform, "evidence": self.evidence or self.method}


@dataclass(frozen=True)
class FileInfo:
    path: str
    width: int
    height: int
    bytes: int

    def to_dict(self) -> dict:
        return {"path": _printable(self.path), "width": self.width, "height": self.height,
                "bytes": self.bytes}


@dataclass(frozen=True)
class Group:
    files: tuple[FileInfo, ...]
    method: str  # the weakest evidence that joined the group: "bytes", "pixels" or a hash
    max_distance: int  # the largest distance on the pairs that hold the group together
    linkage: str = "connected"
    diameter: int = 0  # the largest distance between two members found by the search
    weakest: tuple[str, str, int] | None = None  # (path, path, distance) of that pair
    fully_linked: bool = True  # every two members were found as a pair

    def to_dict(self) -> dict:
        """The group as JSON, CSV, DataFrames and the API show it (printable paths)."""
        return {"files": [f.to_dict() for f in self.files], "method": self.method,
                "max_distance": self.max_distance, "linkage": self.linkage,
                "diameter": self.diameter,
                "weakest": None if self.weakest is None else {
                    "a": _printable(self.weakest[0]), "b": _printable(self.weakest[1]),
                    "distance": self.weakest[2]},
                "fully_linked": self.fully_linked}


@dataclass(frozen=True)
class IngestRow:
    """What became of one row of a source of image URLs (`lookalike ingest`).

    status: "ok" (the file is at `path`), "failed" (`permanent`: a re-run does not retry it
    unless asked), "invalid" (nothing to fetch: no URL, a scheme other than http/https) or
    "duplicate" (the same URL as an earlier row; `path` is that row's file, if it has one).
    """

    row: int  # 1-based data row of the source
    url: str
    status: str
    reason: str
    id: str | None = None
    path: str | None = None
    http_status: int | None = None
    bytes: int = 0
    attempts: int = 0
    permanent: bool = False
    started: float | None = None
    finished: float | None = None
    meta: dict = field(default_factory=dict)  # the kept columns


def _printable(path: str) -> str:
    """index.paths.display_path (undecodable bytes shown as \\xNN), here because the types
    sit below the index layer."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
