"""An ONNX embedding model in onnxruntime: pictures in, unit-length vectors out.

The input is prepared as the model's spec says: resized to a square (squashed, centre-cropped
or letterboxed), area-averaged when shrinking (cv2.INTER_AREA, like the hashes), bilinear
when growing, scaled to 0-1, normalised with mean/std, in the model's channel order, NCHW.
Models of layout "nhwc-uint8" take the resized RGB bytes as they are (they normalise inside).
A model can be read from inside a wheel (spec.member): the wheel stays as it was fetched.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import ModelError
from .spec import ModelSpec


FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` resized to width x height: INTER_AREA for what shrinks, bilinear for what
    grows (INTER_AREA enlarges like nearest neighbour)."""
    import cv2

    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if width <= w and height <= h:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if width < w or height < h:  # one side shrinks, the other grows: shrink it first
        image = cv2.resize(image, (min(width, w), min(height, h)), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _resized(image: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, int, int]:
    """(pixels, top, left): the picture as it goes into the size x size square."""
    h, w = image.shape[:2]
    if mode == "squash":
        return _fit(image, size, size), 0, 0
    if mode == "center-crop":  # the centre square, then resized: the same as resize-then-crop
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = np.ascontiguousarray(image[top:top + side, left:left + side])
        return _fit(square, size, size), 0, 0
    scale = size / max(h, w)  # letterbox: the whole picture, padded to a square
    width, height = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    return _fit(image, width, height), (size - height) // 2, (size - width) // 2


def _checked(image, index: int) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ModelError(f"image {index} is {array.dtype} of shape {array.shape}; the "
                         "embedder takes RGB uint8 arrays of shape H x W x 3")
    return array


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; rows of zeros, and rows with NaN or inf, become zeros."""
    vectors = np.array(vectors, dtype=np.float32)
    vectors[~np.isfinite(vectors).all(axis=1)] = 0.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _model_source(spec: ModelSpec, path: Path) -> str | bytes:
    """What onnxruntime loads: the file's path, or the bytes of `spec.member` inside it."""
    if not spec.member:
        return str(path)
    try:
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(spec.member)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {spec.member} from {path} ({exc}); delete the file and "
                         f"run 'lookalike models fetch {spec.name}'") from None


class Embedder:
    """One onnxruntime session for one model; build it in the process that uses it."""

    def __init__(self, spec: ModelSpec, path: Union[str, Path],
                 threads: Optional[int] = None) -> None:
        if spec.format != "onnx":
            raise ModelError(f"{spec.name} is a {spec.format} file; the embedder runs ONNX "
                             "(lookalike models fetch converts TorchScript entries)")
        import onnxruntime as ort

        self.spec = spec
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # onnxruntime's own warnings go to stderr: errors only
        try:
            self.session = ort.InferenceSession(_model_source(spec, self.path),
                                                sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime cannot load {self.path}: {exc}") from None
        self._check_io()
        self._mean = np.asarray(spec.mean, np.float32)
        self._scale = (1.0 / np.asarray(spec.std, np.float32)).astype(np.float32)

    def _check_io(self) -> None:
        spec, size = self.spec, self.spec.input_size
        bytes_in = spec.layout == "nhwc-uint8"
        wanted = f"[batch, {size}, {size}, 3] uint8" if bytes_in else f"[batch, 3, {size}, {size}]"
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path} has {len(inputs)} inputs "
                             f"({', '.join(i.name for i in inputs)}); an embedding model "
                             f"takes one, {wanted}")
        shape = list(inputs[0].shape)
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
        channels, sides = (fixed[3:], fixed[1:3]) if bytes_in else (fixed[1:2], fixed[2:])
        if len(shape) != 4 or channels[0] not in (None, 3) or any(
                d not in (None, size) for d in sides):
            raise ModelError(f"{self.path} takes input {inputs[0].name} of shape {shape}; "
                             f"the spec of {spec.name} says {wanted}")
        expected = ("tensor(uint8)",) if bytes_in else tuple(FLOAT_TYPES)
        if inputs[0].type not in expected:
            raise ModelError(f"{self.path} takes {inputs[0].type}; expected "
                             f"{'uint8' if bytes_in else 'float'}, as the spec of {spec.name} "
                             f"says: {wanted}")
        outputs = {o.name: o for o in self.session.get_outputs()}
        name = spec.output or next(iter(outputs))
        if name not in outputs:
            raise ModelError(f"{self.path} has no output {name!r} (it has "
                             f"{', '.join(outputs)}); fix 'output' in the spec or sidecar")
        out_shape = list(outputs[name].shape)
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != spec.dim):
            raise ModelError(f"{self.path} output {name} has shape {out_shape}; the spec of "
                             f"{spec.name} says [batch, {spec.dim}]")
        self._input, self._output = inputs[0].name, name
        self._dtype = np.uint8 if bytes_in else FLOAT_TYPES[inputs[0].type]
        self._batch = fixed[0]  # a model exported for a fixed batch size runs in such batches

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 H x W x 3 pictures -> (N, 3, S, S) float32 as the model reads them
        (layout nhwc-uint8: (N, S, S, 3) uint8)."""
        size = self.spec.input_size
        if self.spec.layout == "nhwc-uint8":
            batch = np.zeros((len(images), size, size, 3), np.uint8)
            for index, image in enumerate(images):
                pixels, top, left = _resized(_checked(image, index), size, self.spec.resize)
                if self.spec.colour == "BGR":
                    pixels = pixels[..., ::-1]
                batch[index, top:top + pixels.shape[0], left:left + pixels.shape[1]] = pixels
            return batch
        batch = np.zeros((len(images), 3, size, size), np.float32)
        for index, image in enumerate(images):
            pixels, top, left = _resized(_checked(image, index), size, self.spec.resize)
            if self.spec.colour == "BGR":
                pixels = pixels[..., ::-1]
            values = (pixels.astype(np.float32) * np.float32(1 / 255) - self._mean) * self._scale
            height, width = values.shape[:2]
            # Letterbox padding stays 0: after normalisation that is the mean colour.
            batch[index, :, top:top + height, left:left + width] = values.transpose(2, 0, 1)
        return batch

    def _run(self, batch: np.ndarray, count: int) -> np.ndarray:
        try:
            found = self.session.run([self._output],
                                     {self._input: batch.astype(self._dtype, copy=False)})[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self.spec.name} failed on a batch of {len(batch)}: {exc}") \
                from None
        if found.shape != (len(batch), self.spec.dim):
            raise ModelError(f"{self.spec.name} gave output of shape {found.shape} for "
                             f"{len(batch)} pictures; expected ({len(batch)}, {self.spec.dim})")
        return found[:count].astype(np.float32)

    def embed(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """(N, dim) float32 unit vectors (zero rows where the model gives nothing usable)."""
        images = list(images)
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, not {batch_size}")
        step = self._batch or batch_size
        found = np.zeros((len(images), self.spec.dim), np.float32)
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            batch = self.preprocess(chunk)
            if self._batch and len(chunk) < self._batch:
                batch = np.concatenate([batch, np.zeros((self._batch - len(chunk),)
                                                        + batch.shape[1:], batch.dtype)])
            found[start:start + len(chunk)] = self._run(batch, len(chunk))
        return normalise_rows(found)
