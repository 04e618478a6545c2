"""Training objectives. Each is a torch module holding the `EmbeddingNet` as `.net` (the part
that is exported) plus whatever heads it needs, and maps a batch of view pairs to a loss.

* `contrastive` (default): SSCD's recipe (Pizzi et al., 2022): InfoNCE over the batch, two
  views per instance, every other instance a negative, plus a KoLeo entropy regulariser that
  spreads the embeddings over the sphere.
* `vae`: a variational autoencoder whose encoder is the same backbone; the latent mean is
  `net.raw(x)`, so the exported embedding (the L2-normalised net output) is the latent mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UnknownObjectiveError
from .net import EmbeddingNet, NetConfig


@dataclass(frozen=True)
class LossParts:
    """The total loss (a tensor, for backward) and its parts as numbers, for the log."""

    loss: torch.Tensor
    parts: dict[str, float]


def info_nce(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean cross entropy of each embedding picking its partner(s) (same label) among all the
    others; `embeddings` are L2-normalised, (2N, d)."""
    similarity = embeddings @ embeddings.T / temperature
    same = labels[:, None] == labels[None, :]
    itself = torch.eye(len(labels), dtype=torch.bool, device=embeddings.device)
    similarity = similarity.masked_fill(itself, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positive = same & ~itself
    return -(log_prob.masked_fill(~positive, 0).sum(1) / positive.sum(1).clamp(min=1)).mean()


def koleo(embeddings: torch.Tensor, labels: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko entropy estimate (negated): -mean log distance of each embedding to
    its nearest neighbour among the other instances."""
    with torch.no_grad():
        distance = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        nearest = distance.masked_fill(same, float("inf")).argmin(dim=1)
    gaps = (embeddings - embeddings[nearest]).norm(dim=1)
    return -torch.log(gaps + eps).mean()


class Contrastive(nn.Module):
    def __init__(self, net: EmbeddingNet, temperature: float = 0.05,
                 koleo_weight: float = 30.0) -> None:
        super().__init__()
        self.net, self.temperature, self.koleo_weight = net, temperature, koleo_weight

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor,
                labels: torch.Tensor) -> LossParts:
        embeddings = self.net(torch.cat([view_a, view_b]))
        both = torch.cat([labels, labels])
        nce = info_nce(embeddings, both, self.temperature)
        # KoLeo within each view's half, as SSCD does: the partner is never the neighbour.
        half = len(labels)
        entropy = 0.5 * (koleo(embeddings[:half], labels) + koleo(embeddings[half:], labels))
        loss = nce + self.koleo_weight * entropy
        return LossParts(loss, {"loss": loss.item(), "infonce": nce.item(),
                                "koleo": entropy.item()})


class Decoder(nn.Module):
    """Latent vector to a 64x64 RGB picture (in the normalised input space)."""

    def __init__(self, dim: int, width: int = 64) -> None:
        super().__init__()
        self.width = width
        self.expand = nn.Linear(dim, width * 4 * 4 * 4)

        def up(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                                 nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        self.body = nn.Sequential(up(width * 4, width * 2), up(width * 2, width),
                                  up(width, width // 2),
                                  nn.ConvTranspose2d(width // 2, 3, 4, 2, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.expand(z).view(len(z), self.width * 4, 4, 4))


class VAE(nn.Module):
    """Encoder = the embedding backbone; mean = `net.raw(x)`, log-variance from its own head."""

    def __init__(self, net: EmbeddingNet, beta: float = 1.0, decoder_width: int = 64,
                 recon_size: int = 64) -> None:
        super().__init__()
        self.net, self.beta, self.recon_size = net, beta, recon_size
        self.log_var = nn.Linear(net.backbone.out_features, net.config.dim)
        self.decoder = Decoder(net.config.dim, decoder_width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.backbone(x)
        return self.net.project(features), self.log_var(features).clamp(-10, 10)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: the latent mean, L2-normalised (what `net(x)` computes)."""
        return F.normalize(self.encode(x)[0], dim=1)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor,
                labels: torch.Tensor) -> LossParts:
        x = torch.cat([view_a, view_b])
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        reconstruction = self.decoder(z)
        target = F.interpolate(x, size=(self.recon_size, self.recon_size), mode="area")
        if reconstruction.shape[-1] != self.recon_size:
            reconstruction = F.interpolate(reconstruction, size=target.shape[-2:],
                                           mode="bilinear", align_corners=False)
        recon = F.mse_loss(reconstruction, target, reduction="none").sum(dim=(1, 2, 3)).mean()
        kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(dim=1)).mean()
        pixels = 3 * self.recon_size * self.recon_size
        loss = (recon + self.beta * kl) / pixels  # per pixel, so the lr suits both objectives
        return LossParts(loss, {"loss": loss.item(), "recon": recon.item() / pixels,
                                "kl": kl.item()})


OBJECTIVES = ("contrastive", "vae")


def build_objective(name: str, config: NetConfig, **options) -> nn.Module:
    """A fresh objective around a fresh `EmbeddingNet(config)`; `options` go to its
    constructor (temperature, koleo_weight; beta, decoder_width)."""
    net = EmbeddingNet(config)
    if name == "contrastive":
        return Contrastive(net, **options)
    if name == "vae":
        return VAE(net, **options)
    raise UnknownObjectiveError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
