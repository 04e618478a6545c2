"""Methods are looked up by name; each entry carries what matching needs to know."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import UnknownMethodError
from ..types import Decoded, Signature

# Perceptual hashes are computed from a grey image whose short side is box-reduced to
# WORK_SIZE..2*WORK_SIZE, then each method's Lanczos resize box-reduces to twice its target
# first (Pillow's reducing_gap). Straight Lanczos from a big picture costs more than decoding
# it; the box steps move the hashes by ~1-2 bits on average (measured against imagehash) and
# do not change measured precision or recall (bench/eval_methods.py).
WORK_SIZE = 128
REDUCING_GAP = 2.0


@dataclass(frozen=True)
class MethodSpec:
    name: str
    version: int
    kind: str  # "exact": equal values match; "hamming": bit distance on binary codes
    bits: int  # length of one code
    variants: int  # codes stored per picture: 8 dihedral variants, or 1
    default_radius: int  # largest distance counted as a duplicate, chosen by measurement
    min_quality: float  # pictures below this quality are left out of near matching
    params: str
    description: str

    @property
    def nbytes(self) -> int:
        return self.bits // 8

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.name, self.version, self.params)


class Picture:
    """A decoded picture with the grey versions that several methods share, made once."""

    def __init__(self, decoded: Decoded) -> None:
        self.decoded = decoded

    @cached_property
    def gray(self):
        """Grey ('L') image, box-reduced so that its short side is WORK_SIZE to 2*WORK_SIZE."""
        gray = self.decoded.image.convert("L")
        factor = min(gray.size) // WORK_SIZE
        return gray.reduce(factor) if factor >= 2 else gray

    def gray_resized(self, width: int, height: int) -> np.ndarray:
        from PIL import Image

        return np.asarray(self.gray.resize((width, height), Image.Resampling.LANCZOS,
                                           reducing_gap=REDUCING_GAP))


class Method(Protocol):
    spec: MethodSpec

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]: ...


_REGISTRY: dict[str, tuple[MethodSpec, Callable[[], Method]]] = {}


def register_method(spec: MethodSpec) -> Callable[[Callable[[], Method]], Callable[[], Method]]:
    def wrap(factory: Callable[[], Method]) -> Callable[[], Method]:
        _REGISTRY[spec.name] = (spec, factory)
        return factory

    return wrap


def _load_builtins() -> None:
    from . import exact, pdq, perceptual  # noqa: F401  (registration side effect)


def list_methods(pattern: str = "*") -> list[MethodSpec]:
    _load_builtins()
    return [spec for name, (spec, _) in sorted(_REGISTRY.items()) if fnmatch.fnmatch(name, pattern)]


def get_spec(name: str) -> MethodSpec:
    _load_builtins()
    try:
        return _REGISTRY[name][0]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {known}") from None


def create_method(name: str) -> Method:
    get_spec(name)
    return _REGISTRY[name][1]()
