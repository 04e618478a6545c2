"""Embedding models: what a model is (spec), the models known by name (builtins), a download
cache with checksums (cache), sidecar files (sidecar), a PyTorch-to-ONNX exporter (export;
needs the optional torch), the registry of names that resolves them (registry), and an
onnxruntime embedder (onnx). Each module imports only those before it in this list."""

from .registry import (DEFAULT_MODEL, ModelSpec, get_model, list_models, load_sidecar,
                       lookup_model, register_model, resolve_model, unregister_model,
                       write_sidecar)

__all__ = ["DEFAULT_MODEL", "ModelSpec", "get_model", "list_models", "load_sidecar",
           "lookup_model", "register_model", "resolve_model", "unregister_model",
           "write_sidecar"]
