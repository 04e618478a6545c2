"""A trained `EmbeddingNet` to ONNX plus its sidecar, through `lookalike.models.export`
(dynamic batch axis, checked against torch with onnxruntime), the preprocessing taken from the
network's own configuration; and the weights-only checkpoint that fine-tuning starts from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportedModel:
    onnx_path: Path
    sidecar_path: Path
    max_abs_diff: float  # onnxruntime against torch on a random batch of 4


def export_embedding(net, onnx_path: Path | str, *, name: str | None = None,
                     licence: str = "Apache-2.0", description: str = "",
                     similarity: float | None = None, extra: dict | None = None,
                     atol: float = 1e-4) -> ExportedModel:
    """Write `net` (an EmbeddingNet) as ONNX with its sidecar (input size, "squash" resize,
    mean, std, RGB, dim from `net.config`); `extra` keys are added to the sidecar (the
    registry ignores keys it does not know). Raises ModelError when the export does not
    reproduce torch within `atol`."""
    from ..models.export import OUTPUT_NAME, export_onnx
    from ..models.registry import sidecar_path

    config = net.config
    was_training = net.training
    try:
        path = export_onnx(net, onnx_path, input_size=config.input_size, mean=config.mean,
                           std=config.std, resize="squash", colour="RGB", name=name,
                           licence=licence, description=description, similarity=similarity,
                           atol=atol)
        diff = _difference(net, path, OUTPUT_NAME)
    finally:
        net.train(was_training)
    side = sidecar_path(path)
    if extra:
        data = json.loads(side.read_text(encoding="utf-8"))
        data.update(extra)
        side.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return ExportedModel(Path(path), side, diff)


def _difference(net, path: Path, output: str) -> float:
    import onnxruntime as ort
    import torch

    size = net.config.input_size
    batch = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    net.eval()
    with torch.no_grad():
        expected = net(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([output], {session.get_inputs()[0].name: batch.numpy()})[0]
    return float(np.abs(got - expected).max())


def save_weights(net, path: Path | str, objective: str = "contrastive") -> Path:
    """The network alone, in the checkpoint layout `train(init=...)` and
    `net_from_checkpoint` read: no optimiser state, and float16 (loading casts back to
    float32), a quarter of a checkpoint's size; a starting point for fine-tuning."""
    import torch

    path = Path(path)
    weights = {f"net.{k}": v.half() if v.is_floating_point() else v
               for k, v in net.state_dict().items()}
    state = {"objective_name": objective, "net_config": net.config.to_dict(),
             "objective": weights}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path
