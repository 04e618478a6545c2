"""Learned embeddings: an ONNX model's unit-length output, stored as float16.

The method is always named "embed" in the index; its parameters name the model (name and
the first 16 hex digits of its sha256), so signatures of two models never mix and a new
model recomputes only its own rows. Inside a scan a model other than the default travels in
the method name as "embed@MODEL" (a registry name or a path to an .onnx file with its
sidecar), which worker processes resolve on their own.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..decode import DRAFT_SIZE
from ..models.registry import DEFAULT_MODEL, resolve_model
from ..types import Signature
from .registry import LEARNED_EVIDENCE, MethodSpec, Picture, register_family
from ..models.cache import sha256_file

NAME = "embed"
VERSION = 1
# The hashes' 256 px draft, which embeddings have always been computed from (the models read
# 224-512 px squares; whether a larger draft helps the 320 and 512 px ones is unmeasured).
DRAFT = DRAFT_SIZE
_threads: int | None = None  # onnxruntime threads of each session; None: all cores


def use_threads(count: int | None) -> None:
    """Threads of the embedding sessions this process opens from now on (a scan worker, one
    process of several: 1)."""
    global _threads
    _threads = count


def split_name(name: str) -> tuple[str, str | None]:
    """("embed", model or None) for "embed" / "embed@MODEL"; (name, None) for other methods."""
    base, _, model = name.partition("@")
    return base, (model or None)


def method_name(model: str | None) -> str:
    """The method name that asks a scan for `model`'s embeddings."""
    if model is None or model == DEFAULT_MODEL:
        return NAME
    if os.sep in model or model.endswith(".onnx"):
        model = str(Path(model).resolve())
    return f"{NAME}@{model}"


@lru_cache(maxsize=16)
def _resolved(model: str):
    return resolve_model(model)


@lru_cache(maxsize=16)
def embedding_spec(model: str | None = None) -> MethodSpec:
    """The MethodSpec of `model`'s embeddings (the default model when None)."""
    model_spec, path = _resolved(model or DEFAULT_MODEL)

    digest = model_spec.sha256 or sha256_file(path)
    default_similarity = getattr(model_spec, "similarity", None) or 0.0
    return MethodSpec(
        name=NAME, version=VERSION, kind="vector", bits=16 * model_spec.dim, variants=1,
        default_radius=0, min_quality=2.0,  # quality: grey contrast, as for the hashes
        params=f"model={model_spec.name},sha256={digest[:16]},dim={model_spec.dim}",
        description=f"learned embedding of {model_spec.name} ({model_spec.dim} floats), "
                    "cosine similarity", similarity=float(default_similarity),
        draft_size=DRAFT, evidence_rank=LEARNED_EVIDENCE)


def register_model(index, model: str | None) -> MethodSpec:
    """Record `model` (default: the shipped one) in `index` as its active embedding model;
    the index must hold the writer lock. Returns the model's method spec."""
    spec = embedding_spec(model)
    model_spec, _ = _resolved(model or DEFAULT_MODEL)
    ref = split_name(method_name(model))[1] or DEFAULT_MODEL  # a file by its absolute path
    index.register_model(spec.params, model_spec.name, ref, model_spec.sha256)
    return spec


def active_model(index) -> str | None:
    """The model ref of the index's active embedding model (None: none registered)."""
    models = index.models()
    return models[0].ref if models and models[0].active else None


_SESSION_LOCK = threading.Lock()


class EmbeddingMethod:
    """Embeds pictures with an onnxruntime session built on first use, in the process that
    uses it (workers are processes: one thread each unless the scan runs in-process)."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.spec = embedding_spec(model)
        self._embedder = None

    def _session(self):
        with _SESSION_LOCK:  # one session however many threads ask first
            if self._embedder is None:
                # Only a process that embeds needs the ONNX code (and zipfile): not at import.
                from ..models.onnx import Embedder

                model_spec, path = _resolved(self.model or DEFAULT_MODEL)
                self._embedder = Embedder(model_spec, path, threads=_threads)
            return self._embedder

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32 unit vectors of RGB uint8 images."""
        return self._session().embed(list(images))

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        found = self.embed([p.rgb for p in pictures]).astype(np.float16)
        spec = self.spec
        # Quality as for the hashes: the grey contrast of the picture (near-blank pictures
        # embed to noise and are left out of near matching), 0 where the model gave nothing.
        quality = [float(p.small.std()) if np.any(row) else 0.0
                   for p, row in zip(pictures, found)]
        return [Signature(spec.name, spec.version, spec.params, row.tobytes(), q)
                for row, q in zip(found, quality)]


register_family(NAME, embedding_spec, EmbeddingMethod, draft_size=DRAFT,
                evidence_rank=LEARNED_EVIDENCE)
