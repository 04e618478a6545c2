"""Methods are looked up by name; each entry carries what matching needs to know.

Each method module registers its methods here when it is imported, and this module imports
none of them (they import it). The package's __init__ imports them all, and Python runs that
__init__ before this module whenever anything under lookalike.methods is imported, so the
tables are full before any name is looked up.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable, NamedTuple, Protocol, Sequence

import numpy as np

from ..errors import LookalikeError, UnknownMethodError
from ..types import Decoded, Signature

# Perceptual hashes are computed from a grey image whose short side is area-averaged down to
# WORK_SIZE..2*WORK_SIZE, and each method's Lanczos resize starts from an area-averaged copy
# at twice its target size: straight Lanczos from a big picture costs more than decoding it.
# OpenCV's INTER_AREA is exactly mirror-symmetric (Pillow's BOX and reduce() are not for
# fractional factors), and so is Lanczos done as two matrix products, so flipped and rotated
# copies hash to the flipped and rotated codes. Against imagehash (straight Lanczos in 8 bits)
# pHash codes differ by a fraction of a bit on average on photographs
# (tests/unit/test_reference_imagehash.py).
WORK_SIZE = 128
BOX_GAP = 2
SMALL = 64  # shared intermediate for every grid of at most SMALL / BOX_GAP


# The default cascade's two hashes: pHash proposes near pairs, dHash confirms them
# (search/rule.py); the fast mode computes both (scan.MODES) and tiles carry both.
CASCADE_HASHES = ("phash", "dhash")

@dataclass(frozen=True)
class MethodSpec:
    name: str
    version: int
    kind: str  # "exact": equal values; "hamming": bit distance; "vector": cosine; "local"
    bits: int  # length of one code
    variants: int  # codes stored per picture: 8 dihedral variants, or 1
    default_radius: int  # largest distance counted as a duplicate, chosen by measurement
    min_quality: float  # pictures below this quality are left out of near matching
    params: str
    description: str
    similarity: float = 0.0  # kind "vector": the least cosine similarity counted a duplicate

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
    def rgb(self) -> np.ndarray:
        """The upright RGB pixels, H x W x 3 uint8 (one copy out of Pillow, shared)."""
        return np.asarray(self.decoded.image)

    @cached_property
    def gray(self) -> np.ndarray:
        """Grey pixels (uint8, H x W), area-averaged so the short side is under 2*WORK_SIZE."""
        import cv2

        gray = cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY)  # ITU-R 601 luma, as Pillow's "L"
        factor = min(gray.shape) // WORK_SIZE
        if factor >= 2:
            gray = _area(gray, gray.shape[1] / factor, gray.shape[0] / factor)
        return gray

    @cached_property
    def small(self) -> np.ndarray:
        """The grey image area-averaged to SMALL x SMALL (or as it is, when not bigger)."""
        gray = self.gray
        if gray.shape[0] > SMALL and gray.shape[1] > SMALL:
            return _area(gray, SMALL, SMALL)
        return gray

    def gray_resized(self, width: int, height: int) -> np.ndarray:
        """Lanczos resize of the grey image to width x height, rounded to uint8."""
        gray = self.gray
        if max(width, height) <= SMALL // 4 or width == height == SMALL // BOX_GAP:
            # 64-bit grids start from the shared small image; so does pHash's 32x32, whose
            # own area step would be exactly that image. 256-bit grids start from `gray`.
            gray = self.small
        if gray.shape[1] > BOX_GAP * width and gray.shape[0] > BOX_GAP * height:
            gray = _area(gray, BOX_GAP * width, BOX_GAP * height)
        # Pillow's Lanczos as two matrix products in float, rounded once at the end: Pillow
        # itself rounds to 8 bits between its passes, so a quarter-turned picture's grid
        # would differ by a grey level. Rounding keeps imagehash's 8-bit ties, which steady
        # dHash on flat areas.
        rows = _lanczos_weights(gray.shape[0], height)
        cols = _lanczos_weights(gray.shape[1], width)
        grid = rows @ gray.astype(np.float64) @ cols.T
        return np.clip(np.rint(grid), 0, 255).astype(np.uint8)


def _area(gray: np.ndarray, width: float, height: float) -> np.ndarray:
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)  # workers are processes already; OpenCV's threads only contend
    size = (max(1, round(width)), max(1, round(height)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=512)
def _lanczos_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix of Pillow's Lanczos-3 resampling (its precompute_coeffs)."""
    scale = size_in / size_out
    filter_scale = max(scale, 1.0)
    support = 3.0 * filter_scale
    weights = np.zeros((size_out, size_in))
    for out in range(size_out):
        center = (out + 0.5) * scale
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), size_in)
        x = (np.arange(low, high) - center + 0.5) / filter_scale
        kernel = np.sinc(x) * np.sinc(x / 3.0) * (np.abs(x) < 3.0)
        total = kernel.sum()
        weights[out, low:high] = kernel / total if total else kernel
    return weights


class Method(Protocol):
    spec: MethodSpec

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]: ...


_REGISTRY: dict[str, tuple[MethodSpec, Callable[[], Method]]] = {}


class _Family(NamedTuple):
    spec: Callable[[str | None], MethodSpec]  # variant (None: the default) -> its spec
    create: Callable[[str | None], Method]


# Methods named "NAME" or "NAME@VARIANT" whose spec depends on the variant (the embedding
# model): they register a family, so that this module never imports the method modules.
_FAMILIES: dict[str, _Family] = {}
_shared: dict[str, Method] = {}
_shared_lock = threading.Lock()  # HTTP threads may ask for a method at once


def register_method(spec: MethodSpec) -> Callable[[Callable[[], Method]], Callable[[], Method]]:
    def wrap(factory: Callable[[], Method]) -> Callable[[], Method]:
        _REGISTRY[spec.name] = (spec, factory)
        return factory

    return wrap


def register_family(name: str, spec: Callable[[str | None], MethodSpec],
                    create: Callable[[str | None], Method]) -> None:
    """Register the methods "name" and "name@VARIANT": `spec(variant or None)` gives a
    variant's spec (a LookalikeError when it cannot be had), `create(variant)` the method."""
    _FAMILIES[name] = _Family(spec, create)


def list_methods(pattern: str = "*") -> list[MethodSpec]:
    """Registered methods matching `pattern`; "embed" only when its default model loads."""
    specs = [spec for name, (spec, _) in sorted(_REGISTRY.items())]
    for family in _FAMILIES.values():
        try:
            specs.append(family.spec(None))
        except LookalikeError:
            pass
    return sorted((s for s in specs if fnmatch.fnmatch(s.name, pattern)), key=lambda s: s.name)


def get_spec(name: str) -> MethodSpec:
    """The spec of a method name; "embed" or "embed@MODEL" resolve their model (ModelError
    when it cannot be found)."""
    base, _, variant = name.partition("@")
    if base in _FAMILIES:
        return _FAMILIES[base].spec(variant or None)
    try:
        return _REGISTRY[name][0]
    except KeyError:
        known = ", ".join(sorted([*_REGISTRY, *_FAMILIES]))
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {known}") from None


def create_method(name: str) -> Method:
    get_spec(name)  # the same errors for an unknown name or a model that cannot be had
    base, _, variant = name.partition("@")
    if base in _FAMILIES:
        return _FAMILIES[base].create(variant or None)
    return _REGISTRY[name][1]()


def shared_method(name: str) -> Method:
    """The method `name` as this process computes it (one model session per process)."""
    with _shared_lock:
        if name not in _shared:
            _shared[name] = create_method(name)
        return _shared[name]
