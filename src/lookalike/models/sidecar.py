"""Sidecars: the JSON file `<model>.onnx.json` next to a model file that says how to prepare
its input (a user's own model, the shipped one, an export)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

from ..errors import ModelError
from .spec import ModelSpec, commercial_licence

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
