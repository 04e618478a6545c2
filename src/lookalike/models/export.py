"""A PyTorch model (an nn.Module, or a TorchScript file) to an ONNX file with a dynamic batch
axis and its sidecar, kept only when onnxruntime reproduces torch's output.

torch is an optional extra (`pip install 'lookalike[train]'`); it is imported here, inside
the functions that need it. An nn.Module goes through torch.export (the TorchScript-based
exporter when that fails); a TorchScript module can only go through the TorchScript-based one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ModelError
from .builtins import IMAGENET_MEAN, IMAGENET_STD
from .cache import locked, sha256_file
from .sidecar import load_sidecar, sidecar_path, write_sidecar
from .spec import ModelSpec, commercial_licence

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "input", "embedding"
CHECK_BATCH = 2  # traced with 2 pictures, checked with 2 and 3: the batch axis must be free


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelError("exporting needs PyTorch: pip install 'lookalike[train]'") from None
    return torch


def _load(model: Any, torch) -> Any:
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"no TorchScript file at {path}")
        try:
            with warnings.catch_warnings():  # torch deprecates TorchScript; SSCD ships in it
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError and others for foreign files
            raise ModelError(f"{path} is not a TorchScript file torch can load ({exc}); a "
                             "state dict needs its network built first, then pass that "
                             "nn.Module") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"cannot export a {type(model).__name__}: give an nn.Module or the "
                         "path of a TorchScript file")
    return model


def _matrix(found: Any, torch) -> np.ndarray:
    if not isinstance(found, torch.Tensor) or found.dim() != 2:
        shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
        raise ModelError(f"the model returns {shape}; an embedding model must return one "
                         "(batch, dim) tensor")
    return found.detach().float().numpy()


def _export(module: Any, example: Any, path: Path, torch) -> None:
    """Write ONNX to `path`; torch's exporters print progress, kept out of stdout here."""
    chatter = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            if not isinstance(module, torch.jit.ScriptModule):
                try:
                    torch.onnx.export(module, (example,), str(path), input_names=[INPUT_NAME],
                                      output_names=[OUTPUT_NAME], dynamo=True,
                                      external_data=False, verbose=False,
                                      dynamic_shapes=({0: torch.export.Dim("batch")},))
                    return
                except Exception as exc:  # torch.export cannot trace every model
                    log.info("torch.export failed (%s); trying the TorchScript exporter", exc)
            torch.onnx.export(module, (example,), str(path), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    except Exception as exc:
        raise ModelError(f"torch could not export the model to ONNX: {exc}") from None
    finally:
        log.debug("torch.onnx.export said: %s", chatter.getvalue())


def _difference(path: Path, batches: Sequence[np.ndarray], expected: Sequence[np.ndarray]
                ) -> float:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        found = [session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0] for batch in batches]
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot run the exported model: {exc}") from None
    for got, want in zip(found, expected):
        if got.shape != want.shape:
            raise ModelError(f"the exported model gives shape {got.shape} where torch gives "
                             f"{want.shape} (is the batch size fixed inside the model?)")
    return max(float(np.abs(got - want).max()) for got, want in zip(found, expected))


def export_onnx(model: Any, out_path: Union[str, Path], *, input_size: int,
                mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                resize: str = "squash", colour: str = "RGB", name: Optional[str] = None,
                licence: str = "unknown", commercial: Optional[bool] = None,
                description: str = "", similarity: Optional[float] = None,
                atol: float = 1e-4, seed: int = 0) -> Path:
    """Export `model` (an nn.Module, or the path of a TorchScript file) to `out_path` with a
    dynamic batch axis, and write its sidecar; raise ModelError, leaving nothing, when
    onnxruntime differs from torch by more than `atol` on a random batch. The module is put
    in eval mode."""
    torch = _torch()
    out_path = Path(out_path)
    module = _load(model, torch)
    module.eval()
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randn(n, 3, input_size, input_size, generator=generator)
               for n in (CHECK_BATCH, CHECK_BATCH + 1)]
    try:
        with torch.no_grad():
            expected = [_matrix(module(batch), torch) for batch in batches]
    except ModelError:
        raise
    except Exception as exc:  # whatever the model raises on a (N, 3, S, S) input
        raise ModelError(f"the model fails on a (N, 3, {input_size}, {input_size}) batch: "
                         f"{exc}") from None
    # Checked before anything is written, so a bad argument leaves no file behind.
    spec = ModelSpec(name=name or out_path.stem, file=out_path.name, licence=licence,
                     commercial=commercial_licence(licence) if commercial is None else commercial,
                     format="onnx", input_size=input_size, resize=resize, mean=tuple(mean),
                     std=tuple(std), colour=colour, dim=int(expected[0].shape[1]),
                     output=OUTPUT_NAME, source="user", description=description,
                     similarity=similarity)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        _export(module, batches[0], tmp, torch)
        difference = _difference(tmp, [b.numpy() for b in batches], expected)
        if difference > atol:
            raise ModelError(f"onnxruntime differs from torch by {difference:.2e} (more than "
                             f"{atol:g}); the export was not kept")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    spec = replace(spec, sha256=sha256_file(out_path), verified=True)
    write_sidecar(spec, out_path)
    log.info("exported %s (%d floats, max |onnx - torch| = %.1e)", out_path, spec.dim,
             difference)
    return out_path


def onnx_from_torchscript(spec: ModelSpec, pt_path: Path) -> tuple[ModelSpec, Path]:
    """The ONNX twin of a downloaded TorchScript entry, converted once next to it."""
    out = pt_path.with_name(Path(spec.file).stem + ".onnx")
    with locked(out.with_name(out.name + ".lock")):
        if not (out.is_file() and sidecar_path(out).is_file()):
            export_onnx(pt_path, out, input_size=spec.input_size, mean=spec.mean, std=spec.std,
                        resize=spec.resize, colour=spec.colour, name=spec.name,
                        licence=spec.licence, commercial=spec.commercial,
                        description=spec.description, similarity=spec.similarity)
    converted = load_sidecar(out, source="user")
    if converted.dim != spec.dim:
        raise ModelError(f"{out} gives {converted.dim} floats; {spec.name} should give "
                         f"{spec.dim}")
    if converted.sha256 and sha256_file(out) != converted.sha256:
        raise ModelError(f"{out} does not match the sha256 in its sidecar; delete it and "
                         f"run 'lookalike models fetch {spec.name}' again")
    return replace(converted, source="download", url=spec.url), out
