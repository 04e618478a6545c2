"""A small CNN embedder, fast on a CPU: a narrow ResNet with GeM pooling and an L2-normalised
linear projection. Configured by `NetConfig`, which is stored with every checkpoint so a
checkpoint rebuilds its own network.

The input is a float tensor (N, 3, H, W), RGB, already normalised with `NetConfig.mean` and
`NetConfig.std`; the output is (N, dim), each row of unit length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class NetConfig:
    """Widths per stage (each stage halves the resolution), blocks per stage, input size."""

    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 2, 2, 1)
    stem_width: int = 24
    dim: int = 256
    input_size: int = 128
    gem_p: float = 3.0
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("widths", "depths", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


TINY = NetConfig(widths=(8, 16), depths=(1, 1), stem_width=8, dim=16, input_size=32)


def _conv_bn(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(c_in, c_out, stride)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class GeM(nn.Module):
    """Generalised mean pooling with a learnable exponent (Radenović et al.)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3))
        return pooled.pow(1.0 / self.p)


class Backbone(nn.Module):
    """Stem (stride 4) then one stride-2 stage per width; returns pooled features (N, C)."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        stem = config.stem_width
        self.stem = nn.Sequential(_conv_bn(3, stem, 2), _conv_bn(stem, stem, 1),
                                  nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        c_in = stem
        for i, (width, depth) in enumerate(zip(config.widths, config.depths)):
            for j in range(depth):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(BasicBlock(c_in, width, stride))
                c_in = width
        self.stages = nn.Sequential(*layers)
        self.pool = GeM(config.gem_p)
        self.out_features = c_in

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(x))


class EmbeddingNet(nn.Module):
    """Backbone, linear projection to `dim`, L2 normalisation."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.project = nn.Linear(self.backbone.out_features, config.dim)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The projection before normalisation (the contrastive loss normalises it itself)."""
        return self.project(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.raw(x), dim=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
