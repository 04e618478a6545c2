"""Methods are looked up by name; each entry carries what matching needs to know.

Each method module registers its methods here when it is imported, and this module imports
none of them (they import it). The package's __init__ imports them all, and Python runs that
__init__ before this module whenever anything under lookalike.methods is imported, so
lookalike's own methods are in the table before any name is looked up. Other packages'
methods register with the same calls, from the "lookalike.methods" entry points that the
first lookup loads (plugins.py); they cannot take a name already registered.
"""

from __future__ import annotations

import ctypes
import fnmatch
import threading
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache, partial
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from ..decode import DRAFT_SIZE
from ..errors import LookalikeError, UnknownMethodError
from ..plugins import BUILTIN, METHODS_GROUP, current_origin, load_group
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

# Ranks of evidence, strongest first, for a pair two methods both found (search/rule.py's
# `stronger`; 0 is byte-identical files, which no method computes): the same pixels, then a
# hash or local features, then a learned embedding.
EXACT_EVIDENCE, HASH_EVIDENCE, LEARNED_EVIDENCE = 1, 2, 3


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
    # The side a JPEG must keep when decoded at a reduced DCT scale for this method (the
    # worker decodes at the largest its methods ask for): hashes need only 256 px.
    draft_size: int = DRAFT_SIZE
    evidence_rank: int = HASH_EVIDENCE  # smaller is stronger: *_EVIDENCE above
    # False: a measurement stored for checks (colour thumbnails, health numbers), never a
    # sign of a copy by itself; the web UI does not offer it as a matching method.
    matches: bool = True

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
        if self.decoded.pixels is not None:  # decoded straight into an array
            return self.decoded.pixels
        rgbx = _rgbx_view(self.decoded.image)
        if rgbx is None:
            return np.asarray(self.decoded.image)
        import cv2

        # Dropping the fourth byte with OpenCV is one vectorised pass; np.asarray goes
        # through Pillow's row-by-row packer (0.065 ms of a 256-px JPEG's 0.9).
        return cv2.cvtColor(rgbx, cv2.COLOR_RGBA2RGB)

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
        return resized_grids([self], width, height)[0]

    def _lanczos_source(self, width: int, height: int) -> np.ndarray:
        """The grey image gray_resized starts its Lanczos products from."""
        gray = self.gray
        if max(width, height) <= SMALL // 4 or width == height == SMALL // BOX_GAP:
            # 64-bit grids start from the shared small image; so does pHash's 32x32, whose
            # own area step would be exactly that image. 256-bit grids start from `gray`.
            gray = self.small
        if gray.shape[1] > BOX_GAP * width and gray.shape[0] > BOX_GAP * height:
            gray = _area(gray, BOX_GAP * width, BOX_GAP * height)
        return gray


def resized_grids(pictures: Sequence[Picture], width: int, height: int) -> np.ndarray:
    """(len(pictures), height, width) uint8: each picture's gray_resized. Pillow's Lanczos as
    two matrix products in float, rounded once at the end: Pillow itself rounds to 8 bits
    between its passes, so a quarter-turned picture's grid would differ by a grey level.
    Rounding keeps imagehash's 8-bit ties, which steady dHash on flat areas. Pictures whose
    sources share a shape (every 64-bit grid of pictures over 64 px starts from the 64 x 64
    small image) take one batched product: per picture, the products cost more in calls
    than in arithmetic."""
    sources = [picture._lanczos_source(width, height) for picture in pictures]
    out = np.empty((len(sources), height, width), np.uint8)
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, source in enumerate(sources):
        shapes.setdefault(source.shape, []).append(i)
    for (rows_in, cols_in), members in shapes.items():
        rows = _lanczos_weights(rows_in, height)
        cols = _lanczos_weights(cols_in, width)
        stack = np.stack([sources[i] for i in members]).astype(np.float64)
        grid = rows @ stack @ cols.T
        out[members] = np.clip(np.rint(grid), 0, 255).astype(np.uint8)
    return out


def _rgbx_view(image) -> np.ndarray | None:
    """H x W x 4 uint8 view of an RGB Pillow image's own memory (Pillow keeps RGB pixels in
    four bytes), read through the Arrow C data interface that Pillow exports: no copy. None
    where it cannot be had: another mode, or a picture in several memory blocks."""
    if image.mode != "RGB":
        return None
    try:
        _, capsule = image.__arrow_c_array__()
    except (AttributeError, ValueError):  # an older Pillow; rows not in one block
        return None
    struct, pointer_of = _arrow_api()
    array = ctypes.cast(pointer_of(capsule, b"arrow_array"), ctypes.POINTER(struct)).contents
    size = image.width * image.height
    if array.length != size or array.offset or array.n_children != 1:
        return None
    pixels = array.children[0].contents  # a fixed-size list of 4: its child holds the bytes
    if pixels.length != 4 * size or pixels.offset or pixels.n_buffers != 2 \
            or not pixels.buffers[1]:
        return None
    memory = _Exported(capsule, pixels.buffers[1], 4 * size)
    return np.asarray(memory).reshape(image.height, image.width, 4)


class _Exported:
    """Bytes exported by Pillow, kept alive (its capsule releases them) by the arrays over
    them."""

    def __init__(self, capsule: object, address: int, size: int) -> None:
        self.capsule = capsule
        self.__array_interface__ = {"shape": (size,), "typestr": "|u1",
                                    "data": (address, True), "version": 3}


@lru_cache(maxsize=1)
def _arrow_api() -> tuple[type, Callable]:
    """The Arrow C data interface's ArrowArray struct (a stable ABI) and PyCapsule_GetPointer."""
    class ArrowArray(ctypes.Structure):
        pass

    ArrowArray._fields_ = [
        ("length", ctypes.c_int64), ("null_count", ctypes.c_int64),
        ("offset", ctypes.c_int64), ("n_buffers", ctypes.c_int64),
        ("n_children", ctypes.c_int64), ("buffers", ctypes.POINTER(ctypes.c_void_p)),
        ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))),
        ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p)]
    # A prototype of our own: setting argtypes on ctypes.pythonapi's would change it for all.
    prototype = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
    return ArrowArray, prototype(("PyCapsule_GetPointer", ctypes.pythonapi))


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


@dataclass(frozen=True)
class Registration:
    """One registered method, or family of methods "NAME" and "NAME@VARIANT" whose spec
    depends on the variant (the embedding model). A fixed method is a family that takes no
    variant. What callers need before any spec is resolved (a model file read) is here."""

    name: str
    spec: Callable[[str | None], MethodSpec]  # variant (None: the default) -> its spec
    create: Callable[[str | None], Method]
    draft_size: int  # see MethodSpec.draft_size
    evidence_rank: int  # see MethodSpec.evidence_rank
    variants: bool = False  # whether "NAME@VARIANT" is a name of it
    origin: str = BUILTIN  # "lookalike", or the plugin that registered it


_TABLE: dict[str, Registration] = {}
_shared: dict[str, Method] = {}
_shared_lock = threading.Lock()  # HTTP threads may ask for a method at once
_plugins_lock = threading.RLock()  # a plugin being imported may look names up itself
_plugins_loaded = False
_plugins_loading = False


def register(entry: Registration) -> None:
    """The one way in, for lookalike's methods and plugins' alike. A name already taken is
    refused (LookalikeError): a plugin never replaces a method, nor two plugins share one."""
    origin = current_origin()
    entry = replace(entry, origin=origin)
    taken = _TABLE.get(entry.name)
    if taken is not None and taken.origin != origin:
        raise LookalikeError(f"the method name {entry.name!r} is taken by {taken.origin}")
    _TABLE[entry.name] = entry


def register_method(spec: MethodSpec) -> Callable[[Callable[[], Method]], Callable[[], Method]]:
    """Decorator over a method's factory (a class, or a function of no arguments)."""
    def wrap(factory: Callable[[], Method]) -> Callable[[], Method]:
        register(Registration(spec.name, partial(_fixed_spec, spec), partial(_fixed, factory),
                              spec.draft_size, spec.evidence_rank))
        return factory

    return wrap


def register_family(name: str, spec: Callable[[str | None], MethodSpec],
                    create: Callable[[str | None], Method], *, draft_size: int = DRAFT_SIZE,
                    evidence_rank: int = HASH_EVIDENCE) -> None:
    """Register the methods "name" and "name@VARIANT": `spec(variant or None)` gives a
    variant's spec (a LookalikeError when it cannot be had), `create(variant)` the method.
    Every variant's spec carries the same `draft_size` and `evidence_rank`."""
    register(Registration(name, spec, create, draft_size, evidence_rank, variants=True))


def _fixed_spec(spec: MethodSpec, variant: str | None) -> MethodSpec:
    return spec


def _fixed(factory: Callable[[], Method], variant: str | None) -> Method:
    return factory()


def _table() -> dict[str, Registration]:
    """Every registration: lookalike's (registered when the package was imported) and, from
    the first lookup on, the plugins' (plugins.py)."""
    global _plugins_loaded, _plugins_loading
    if not _plugins_loaded:
        with _plugins_lock:  # other threads wait for the whole table
            if not _plugins_loaded and not _plugins_loading:  # a plugin's own lookups: as is
                _plugins_loading = True
                try:
                    load_group(METHODS_GROUP, forget_plugin)
                finally:
                    _plugins_loaded, _plugins_loading = True, False
    return _TABLE


def forget_plugin(origin: str) -> None:
    """Take back what the plugin `origin` registered (it was refused)."""
    for name in [n for n, e in _TABLE.items() if e.origin == origin]:
        del _TABLE[name]
    with _shared_lock:
        for name in [n for n in _shared if n.partition("@")[0] not in _TABLE]:
            del _shared[name]


def reload_plugins() -> None:
    """Forget every plugin and load the entry points again on the next lookup (for tests, and
    for a process whose path changed)."""
    global _plugins_loaded
    with _plugins_lock:
        for origin in {e.origin for e in _TABLE.values()} - {BUILTIN}:
            forget_plugin(origin)
        _plugins_loaded = False


def registration(name: str) -> Registration:
    """The registration behind a method name ("embed@MODEL": embed's), without resolving any
    spec; UnknownMethodError with the known names."""
    base, at, _ = name.partition("@")
    table = _table()
    entry = table.get(base)
    if entry is None or (at and not entry.variants):
        known = ", ".join(sorted(table))
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {known}")
    return entry


def list_methods(pattern: str = "*") -> list[MethodSpec]:
    """Registered methods matching `pattern`, each by its default spec; a family whose
    default cannot be had (embed without its model) is left out."""
    specs = []
    for name, entry in sorted(_table().items()):
        if fnmatch.fnmatch(name, pattern):
            try:
                specs.append(entry.spec(None))
            except LookalikeError:
                pass
    return specs


def get_spec(name: str) -> MethodSpec:
    """The spec of a method name; "NAME@VARIANT" the variant's ("embed@MODEL": resolves the
    model, ModelError when it cannot be found)."""
    return registration(name).spec(name.partition("@")[2] or None)


def create_method(name: str) -> Method:
    get_spec(name)  # the same errors for an unknown name or a model that cannot be had
    return registration(name).create(name.partition("@")[2] or None)


def draft_size(names: Iterable[str]) -> int:
    """The draft size a picture must be decoded at for all the methods `names`."""
    return max((registration(n).draft_size for n in names), default=DRAFT_SIZE)


def evidence_rank(name: str, unknown: int = HASH_EVIDENCE) -> int:
    """The method's rank as evidence (smaller: stronger); `unknown` for a name not
    registered (one stored in an index by a plugin no longer installed)."""
    entry = _table().get(name.partition("@")[0])
    return unknown if entry is None else entry.evidence_rank


def method_origin(name: str) -> str:
    """Who registered the method: "lookalike", or the plugin's distribution and entry point."""
    return registration(name).origin


def shared_method(name: str) -> Method:
    """The method `name` as this process computes it (one model session per process)."""
    _table()  # plugins load outside the lock: refusing one takes the lock to forget it
    with _shared_lock:
        if name not in _shared:
            _shared[name] = create_method(name)
        return _shared[name]
