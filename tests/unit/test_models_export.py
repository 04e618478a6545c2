"""PyTorch to ONNX: a tiny network defined here, as an nn.Module and as a TorchScript file,
exported with a dynamic batch axis and a sidecar, and run by the embedder as torch runs it."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from lookalike.errors import ModelError
from lookalike.models.export import export_onnx
from lookalike.models.onnx import Embedder
from lookalike.models.registry import load_sidecar, resolve_model, sidecar_path

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
SIZE = 32


class TinyNet(torch.nn.Module):
    """A few convolutions and pooling down to an 8-float embedding."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 8, 1))

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


class NoPooling(TinyNet):
    def forward(self, x):
        return self.features(x)


def pictures(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (24 + 5 * i, 40, 3), dtype=np.uint8) for i in range(count)]


def torch_embeddings(net, embedder: Embedder, images) -> np.ndarray:
    with torch.no_grad():
        found = net(torch.from_numpy(embedder.preprocess(images))).numpy()
    return found / np.linalg.norm(found, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    path = tmp_path_factory.mktemp("torchscript") / "tiny.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated; published models still use it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(TinyNet().eval()).save(str(path))
    return path


def check_export(path, net) -> None:
    spec = load_sidecar(path)
    assert spec.dim == 8 and spec.input_size == SIZE and spec.output == "embedding"
    assert spec.sha256 is not None and spec.verified
    embedder = Embedder(*resolve_model(str(path)), threads=1)
    images = pictures(5)  # neither the traced batch of 2 nor the checked one of 3
    found = embedder.embed(images, batch_size=5)
    np.testing.assert_allclose(found, torch_embeddings(net, embedder, images), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(found, axis=1), 1, rtol=1e-5)


def test_module_export_runs_like_torch(tmp_path):
    net = TinyNet()
    path = export_onnx(net, tmp_path / "tiny.onnx", input_size=SIZE, name="tiny",
                       licence="Apache-2.0", description="made in a test")
    assert path == tmp_path / "tiny.onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.onnx.json"]
    side = json.loads(sidecar_path(path).read_text())
    assert side["name"] == "tiny" and side["commercial"] is True and side["resize"] == "squash"
    assert not net.training  # put in eval mode, as documented
    check_export(path, net)


def test_torchscript_file_export_runs_like_torch(tmp_path, scripted):
    path = export_onnx(scripted, tmp_path / "from_script.onnx", input_size=SIZE,
                       mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize="letterbox")
    spec = load_sidecar(path)
    assert spec.name == "from_script" and spec.resize == "letterbox" and not spec.commercial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(scripted)).eval()
    check_export(path, loaded)


def test_a_model_that_gives_no_matrix_is_refused_and_nothing_is_left(tmp_path):
    with pytest.raises(ModelError, match=r"returns \(2, 8, 8, 8\)"):
        export_onnx(NoPooling(), tmp_path / "bad.onnx", input_size=SIZE)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_leave_nothing(tmp_path):
    with pytest.raises(ModelError, match="resize"):
        export_onnx(TinyNet(), tmp_path / "x.onnx", input_size=SIZE, resize="zoom")
    with pytest.raises(ModelError, match="no TorchScript file"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "x.onnx", input_size=SIZE)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(ModelError, match="not a TorchScript file"):
        export_onnx(junk, tmp_path / "x.onnx", input_size=SIZE)
    with pytest.raises(ModelError, match="nn.Module"):
        export_onnx(object(), tmp_path / "x.onnx", input_size=SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.pt"]


def test_cli_export(tmp_path, scripted):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    out = tmp_path / "cli.onnx"
    result = CliRunner().invoke(app, ["models", "export", str(scripted), "--out", str(out),
                                      "--input-size", str(SIZE), "--mean", "0.4,0.4,0.4",
                                      "--std", "0.2,0.2,0.2", "--resize", "center-crop",
                                      "--name", "cli-net", "--licence", "MIT"])
    assert result.exit_code == 0, result.output
    spec = load_sidecar(out)
    assert (spec.name, spec.resize, spec.mean, spec.commercial) == (
        "cli-net", "center-crop", (0.4, 0.4, 0.4), True)
    bad = CliRunner().invoke(app, ["models", "export", str(scripted), "--out", str(out),
                                   "--mean", "0.4,0.4"])
    assert bad.exit_code == 2 and "three comma-separated numbers" in bad.output
