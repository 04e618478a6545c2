"""The records the index hands out: rows of its tables as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KnownFile:
    id: int
    size: int
    mtime_ns: int
    status: str
    content_id: int | None
    stage: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class FileRecord:
    """One row of the files table with its content's description (for the HTTP service)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    status: str
    content_hash: bytes | None
    width: int
    height: int
    format: str
    mode: str
    meta: dict


@dataclass(frozen=True)
class Codes:
    """One method's codes for the contents that have a live file."""

    content_ids: np.ndarray  # (N,) int64
    codes: np.ndarray  # (N, variants, nbytes) uint8
    quality: np.ndarray  # (N,) float32


@dataclass(frozen=True)
class StoredThreshold:
    """A match threshold chosen by calibration (see evaluation/calibrate.py)."""

    method: str
    value: float
    target_precision: float | None = None
    precision: float | None = None
    recall: float | None = None
    sample: int | None = None
    created: float | None = None
    curve: object = None  # the measured curve, as stored (JSON)


@dataclass(frozen=True)
class RegisteredModel:
    """An embedding model whose signatures the index holds (see register_model)."""

    params: str  # the params of its "embed" signatures
    name: str
    ref: str  # registry name, or absolute path of the .onnx file
    sha256: str | None
    active: bool
