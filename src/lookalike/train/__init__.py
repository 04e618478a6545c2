"""Self-supervised training of copy-detection embedding models (the optional extra "train":
PyTorch), exported to ONNX for `lookalike.models`.

    augment.py     copy-detection augmentations on NumPy arrays (OpenCV, Pillow)
    data.py        pictures -> instances (grid cells) -> pairs of augmented views
    net.py         a small CNN: narrow ResNet, GeM pooling, L2-normalised projection
    objectives.py  contrastive (InfoNCE + KoLeo, SSCD-style) and vae
    loop.py        train(): AdamW, warm-up + cosine, checkpoints, resume, export
    export.py      the network to ONNX with its sidecar; weights for fine-tuning
    check.py       the exported model measured on copies of the pictures before it is used

Nothing here is imported with the package: `from lookalike.train import train` loads torch.
"""

from __future__ import annotations

__all__ = ["train", "TrainResult", "Progress", "NetConfig", "net_from_checkpoint"]


def __getattr__(name: str):
    if name in ("train", "TrainResult", "Progress", "net_from_checkpoint"):
        from . import loop

        return getattr(loop, name)
    if name == "NetConfig":
        from .net import NetConfig

        return NetConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
