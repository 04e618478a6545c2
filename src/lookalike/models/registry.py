"""Embedding models by name: the registry of entries, and where each one's checked file is.

Three kinds of entry: the model shipped in the package (its preprocessing is read from the
sidecar JSON next to it, when first asked for), public models downloaded into the cache, and
a user's own `.onnx` file with its sidecar `<model>.onnx.json`. Models under non-commercial
licences are never a default: they are used only when named.

The top of the models package (onnx, the embedder, stands beside it). Below it, each
importing only those under it: spec (ModelSpec), builtins (the table of known models), cache
(downloads, checksums) and sidecar, export (PyTorch to ONNX, for the TorchScript entries).
The names spec and sidecar hold were defined here and are still importable from here.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Union

from ..errors import ModelError
from ..plugins import BUILTIN, MODELS_GROUP, current_origin, load_group
from .builtins import (CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD)  # noqa: F401
from .builtins import DEFAULT_MODEL, PACKAGE_FILE, PACKAGE_LICENCE, builtin_models
from .sidecar import (SIDECAR_EXAMPLE, SIDECAR_KEYS, SIDECAR_OPTIONAL,  # noqa: F401
                      SIDECAR_VERSION, load_sidecar, sidecar_path, write_sidecar)
from .spec import (COLOURS, FORMATS, LAYOUTS, RESIZES, SOURCES, ModelSpec,  # noqa: F401
                   commercial_licence)
from .cache import fetch, sha256_file

Entry = Union[ModelSpec, Callable[[], ModelSpec]]
_REGISTRY: dict[str, Entry] = {}
_ORIGINS: dict[str, str] = {}  # name -> "lookalike", or the plugin that registered it
_lock = threading.RLock()  # a plugin being loaded registers (and may look up) models itself
_builtins_added = False
_plugins_loaded = False
_plugins_loading = False


def _entries() -> dict[str, Entry]:
    """Filled on first use, not at import: lookalike's models, then the plugins' from the
    "lookalike.models" entry points (plugins.py), with the same register_model."""
    global _builtins_added, _plugins_loaded, _plugins_loading
    if not _plugins_loaded:
        with _lock:
            if not _builtins_added:
                _builtins_added = True
                _REGISTRY[DEFAULT_MODEL] = _package_spec  # its sidecar is read when asked for
                _ORIGINS[DEFAULT_MODEL] = BUILTIN
                for spec in builtin_models():
                    _add(spec, replace_existing=False)
            if not _plugins_loaded and not _plugins_loading:
                _plugins_loading = True
                try:
                    load_group(MODELS_GROUP, forget_plugin, _accept)
                finally:
                    _plugins_loaded, _plugins_loading = True, False
    return _REGISTRY


def _accept(result: object) -> None:
    """A plugin function may also return its model specs (one, or several) to register."""
    if result is None:
        return
    for spec in [result] if isinstance(result, ModelSpec) else list(result):  # type: ignore
        if not isinstance(spec, ModelSpec):
            raise ModelError(f"a lookalike.models plugin returned {spec!r}, not a ModelSpec")
        register_model(spec)


def forget_plugin(origin: str) -> None:
    """Take back the models the plugin `origin` registered (it was refused)."""
    for name in [n for n, o in _ORIGINS.items() if o == origin]:
        _REGISTRY.pop(name, None)
        del _ORIGINS[name]


def reload_plugins() -> None:
    """Forget every plugin's models and load the entry points again on the next lookup."""
    global _plugins_loaded
    with _lock:
        for origin in set(_ORIGINS.values()) - {BUILTIN}:
            forget_plugin(origin)
        _plugins_loaded = False


def model_origin(name: str) -> str:
    """Who registered the model: "lookalike", or a plugin (its distribution and entry point)."""
    get_model(name)  # ModelError for an unknown name
    return _ORIGINS.get(name, BUILTIN)


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
    """Add an entry (for plugins and tests: a local server's address, say). A plugin never
    replaces a model it did not register."""
    _entries()
    _add(spec, replace_existing=replace_existing)


def _add(spec: ModelSpec, *, replace_existing: bool) -> None:
    origin = current_origin()
    if spec.name in _REGISTRY:
        if not replace_existing:
            raise ModelError(f"a model named {spec.name!r} is already registered")
        if origin != BUILTIN and _ORIGINS.get(spec.name, BUILTIN) != origin:
            raise ModelError(f"the model name {spec.name!r} is taken by "
                              f"{_ORIGINS.get(spec.name, BUILTIN)}")
    _REGISTRY[spec.name] = spec
    _ORIGINS[spec.name] = origin


def unregister_model(name: str) -> None:
    _entries().pop(name, None)
    _ORIGINS.pop(name, None)


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
        from .cache import cached_path  # deferred, see resolve_model

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
    # Deferred, not a cycle (cache and export import nothing above them): the download and
    # export code loads when a model is resolved, not with `import lookalike`.

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
