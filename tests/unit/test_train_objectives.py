"""The objectives: InfoNCE and KoLeo on hand-made embeddings, the VAE's embedding is its latent
mean, and a short VAE training run exports the same embedding interface."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from torch.nn import functional as F  # noqa: E402

from lookalike.train.net import TINY, EmbeddingNet, NetConfig, count_parameters  # noqa: E402
from lookalike.train.objectives import (  # noqa: E402
    VAE, Contrastive, UnknownObjectiveError, build_objective, info_nce, koleo)


def test_info_nce_is_low_for_matching_pairs_and_high_for_shuffled():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(16, 32), dim=1)
    labels = torch.arange(16)
    matched = info_nce(torch.cat([a, a]), torch.cat([labels, labels]), 0.05)
    shuffled = info_nce(torch.cat([a, a[torch.randperm(16)]]), torch.cat([labels, labels]), 0.05)
    assert matched < 0.1 < shuffled


def test_info_nce_treats_repeated_instances_as_positives():
    a = F.normalize(torch.randn(4, 8), dim=1)
    same = torch.cat([a[:2], a[:2]])
    labels = torch.tensor([0, 1, 0, 1])
    assert info_nce(torch.cat([same, same]), torch.cat([labels, labels]), 0.05) < 1.5


def test_koleo_prefers_spread_embeddings():
    torch.manual_seed(0)
    labels = torch.arange(32)
    spread = F.normalize(torch.randn(32, 8), dim=1)
    bunched = F.normalize(torch.randn(32, 8) * 0.05 + 1.0, dim=1)
    assert koleo(spread, labels) < koleo(bunched, labels)


def test_net_output_is_unit_length_and_sized():
    net = EmbeddingNet(TINY).eval()
    out = net(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, TINY.dim)
    np.testing.assert_allclose(out.norm(dim=1).detach().numpy(), 1.0, atol=1e-6)
    assert NetConfig.from_dict(TINY.to_dict()) == TINY
    assert count_parameters(EmbeddingNet(NetConfig())) < 5_000_000  # an ONNX file under 20 MB


def test_build_objective():
    assert isinstance(build_objective("contrastive", TINY), Contrastive)
    assert isinstance(build_objective("vae", TINY), VAE)
    with pytest.raises(UnknownObjectiveError):
        build_objective("triplet", TINY)


def test_contrastive_step_gives_finite_loss_and_gradients():
    model = build_objective("contrastive", TINY)
    a, b = torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)
    result = model(a, b, torch.arange(6))
    result.loss.backward()
    assert np.isfinite(result.parts["loss"]) and {"infonce", "koleo"} <= set(result.parts)
    assert all(p.grad is not None for p in model.net.parameters() if p.requires_grad)


def test_vae_embedding_is_the_latent_mean():
    model = build_objective("vae", TINY).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        mean, log_var = model.encode(x)
        torch.testing.assert_close(model.embed(x), F.normalize(mean, dim=1))
        torch.testing.assert_close(model.net(x), F.normalize(mean, dim=1))
    assert log_var.shape == mean.shape == (4, TINY.dim)
    model.train()
    result = model(x, x, torch.arange(4))
    result.loss.backward()
    assert np.isfinite(result.parts["loss"]) and {"recon", "kl"} <= set(result.parts)
    assert model.decoder(mean).shape == (4, 3, 64, 64)


def test_vae_training_run_exports_the_embedding(tmp_path):
    from PIL import Image

    from lookalike.train.loop import net_from_checkpoint, train

    files = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        path = tmp_path / f"{seed}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        files.append(path)
    result = train(files, objective="vae", steps=3, batch_size=4, net_config=TINY, workers=0,
                   max_side=64, out_dir=tmp_path / "run", model_name="vae")
    assert result.steps == 3 and result.onnx is not None and result.onnx.exists()
    net = net_from_checkpoint(result.checkpoint)
    assert net.config == TINY
