"""Embedding models: a registry of names with their files, checksums and preprocessing
(registry), a download cache (cache), an onnxruntime embedder (onnx) and a PyTorch-to-ONNX
exporter (export; needs the optional torch)."""

from .registry import (DEFAULT_MODEL, ModelSpec, get_model, list_models, load_sidecar,
                       lookup_model, register_model, resolve_model, unregister_model,
                       write_sidecar)

__all__ = ["DEFAULT_MODEL", "ModelSpec", "get_model", "list_models", "load_sidecar",
           "lookup_model", "register_model", "resolve_model", "unregister_model",
           "write_sidecar"]
