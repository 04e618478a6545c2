"""`lookalike train`: an embedding model learned on the user's own pictures, exported to ONNX
and registered in the index, so later scans and queries use it. Registered on main.app."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError
from ..index.store import default_index_path, display_path, find_index, open_index
from ..sources.folders import WalkOptions, walk
from ..types import FileRef
from ..worker import IMAGE_SUFFIXES
from .common import OK, PARTIAL, USAGE, _emit, _fail, _translate, app, err, out

SHIPPED_WEIGHTS = "default"  # --init value: the shipped model's weights (fine-tuning)


class Objective(str, Enum):
    contrastive = "contrastive"
    vae = "vae"


@app.command("train")
def train_command(
    roots: list[Path] = typer.Argument(..., help="Folders (or files) of training pictures."),
    objective: Objective = typer.Option(Objective.contrastive, "--objective",
                                        help="contrastive (copy detection, SSCD-style) or vae "
                                        "(variational autoencoder; the latent mean is the "
                                        "embedding)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimiser steps "
                                        "(default: 3 epochs over the picture tiles)."),
    batch: int = typer.Option(64, "--batch", min=2, help="Pictures (pairs of views) a step."),
    lr: float = typer.Option(2e-3, "--lr", min=1e-8, max=1.0,
                             help="Peak learning rate (AdamW, cosine decay)."),
    name: str = typer.Option("custom", "--name", help="Model name, stored in the sidecar."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Checkpoints and the ONNX file "
                                           "(default: next to the index, models/NAME)."),
    init: Optional[str] = typer.Option(None, "--init", help="Fine-tune from a checkpoint, or "
                                       f"'{SHIPPED_WEIGHTS}' for the shipped model's weights."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue a killed run from "
                                "its last checkpoint (default), or start over."),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda where PyTorch has it."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index to register the model "
                                         "in (default: FIRST_FOLDER/.lookalike/index.db)."),
    register: bool = typer.Option(True, "--register/--no-register",
                                  help="Make it the index's embedding model."),
    force: bool = typer.Option(False, "--force", help="Register the model even when its "
                               "check (copies of your pictures found, embeddings not "
                               "collapsed) fails."),
    fmt: str = typer.Option("table", "--format", help="table or json summary."),
) -> None:
    """Train (or fine-tune) an embedding model on your own pictures (needs PyTorch: the
    optional extra "train" of lookalike)."""
    files = _training_files(roots)
    if len(files) < 2:
        raise _fail(f"found {len(files)} picture(s) under the given folders; training needs "
                    "at least 2", USAGE)
    index_path = index or _default_index(roots)
    out_dir = out_dir or index_path.parent / "models" / name
    training, held_out = _split(files)
    try:
        result = _run(training, held_out, objective.value, steps, batch, lr, name, out_dir,
                      init, resume, device)
        check = result.check
        refused = check is not None and not check.passed and not force
        registered = (_register(index_path, result.onnx)
                      if register and result.onnx and not refused else None)
    except LookalikeError as exc:
        raise _translate(exc)
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume from the last "
                    "checkpoint", 130)
    summary = {"pictures": len(training), "held_out": len(held_out), "steps": result.steps,
               "final_loss": result.final_loss,
               "seconds": round(result.seconds, 1), "checkpoint": str(result.checkpoint),
               "onnx": str(result.onnx) if result.onnx else None,
               "index": str(index_path) if registered else None,
               "check": check.to_dict() if check else None, "registered": bool(registered)}
    if fmt == "json":
        _emit(json.dumps(summary, indent=2))
    else:
        out.print(f"trained {result.steps:,} steps on {len(training):,} pictures in "
                  f"{result.seconds / 60:.1f} min, final loss {result.final_loss:.4f}")
        out.print(f"model: {escape(display_path(str(result.onnx)))}")
        if check:
            _print_check(check)
        if registered:
            out.print(f"registered in {escape(display_path(str(index_path)))}: "
                      "'lookalike scan DIR --method embed' now embeds with it")
    if check and not check.passed:
        raise _refusal(check, result.onnx, roots, bool(registered), register)
    raise typer.Exit(OK)


def _print_check(check) -> None:
    """The check's numbers, as a person reads them."""
    where = (f"{check.pictures:,} pictures kept out of training" if check.held_out else
             f"{check.pictures:,} training pictures (none kept out; the copies are new)")
    out.print(f"check on {check.copies:,} edited copies of {where}:")
    if check.groups < 2:
        out.print("  FAILED")
        return
    out.print(f"  a copy's nearest picture is its own for {check.top1:.0%} of copies "
              f"(guessing: {check.chance:.1%})")
    if check.similarity is None:
        out.print(f"  no similarity threshold reaches {check.target_precision:.0%} precision")
    else:
        out.print(f"  similarity threshold {check.similarity:.3f} (precision "
                  f"{check.precision:.1%}) finds {check.recall:.0%} of the copies")
    out.print(f"  different pictures: median similarity {check.different_median:.3f}; "
              f"embeddings vary along about {check.effective_rank:.1f} of {check.dim} "
              "directions")
    out.print(f"  {'passed' if check.passed else 'FAILED'}")


def _refusal(check, onnx: Path, roots: list[Path], registered: bool,
             register: bool) -> typer.Exit:
    """The failed check in words, where the model is, and how to use it anyway."""
    if registered:  # --force
        err.print(f"[yellow]warning:[/] registered despite a failed check: "
                  f"{escape(check.reason)}")
        return typer.Exit(OK)
    model = escape(display_path(str(onnx)))
    folders = " ".join(escape(str(r)) for r in roots)
    scan = f"'lookalike scan {folders} --method embed --model {model}'"
    if register:
        err.print(f"[bold red]not registered:[/] {escape(check.reason)}.")
        err.print(f"The model is kept at {model}. To use it anyway, run the same command "
                  f"with --force (the finished run is not trained again), or {scan}.")
    else:
        err.print(f"[bold red]the model failed its check:[/] {escape(check.reason)}.")
        err.print(f"It is kept at {model}; {scan} uses it anyway.")
    return typer.Exit(PARTIAL)


def _training_files(roots: list[Path]) -> list[str]:
    found = []
    for item in walk([str(r) for r in roots], WalkOptions()):
        if isinstance(item, FileRef) and os.path.splitext(item.path)[1].lower() in IMAGE_SUFFIXES:
            found.append(item.path)
    return found


def _default_index(roots: list[Path]) -> Path:
    """The index of the first folder (or one of its parents), else where scan would make it."""
    first = roots[0] if roots[0].is_dir() else roots[0].parent
    try:
        return find_index(first)
    except LookalikeError:
        return default_index_path(first)


def _split(files: list[str]) -> tuple[list[str], list[str]]:
    """(training pictures, pictures kept out for the check): large collections keep some."""
    from ..train.check import split_holdout  # NumPy and Pillow only: no optional extra

    return split_holdout(files)


def _run(training, held_out, objective, steps, batch, lr, name, out_dir, init, resume,
         device):
    try:
        from ..train.loop import train
    except ImportError as exc:
        raise LookalikeError(f"training needs PyTorch ({exc.name} is missing): "
                             "pip install 'lookalike[train]'") from None
    init_path, net_config = _init(init)
    epochs = None if steps else 3.0
    with _progress() as report:
        return train(training, objective=objective, steps=steps, epochs=epochs,
                     batch_size=batch, lr=lr, device=device, out_dir=out_dir, resume=resume,
                     init=init_path, net_config=net_config, progress=report, model_name=name,
                     check_files=held_out)


def _init(init: Optional[str]):
    """The checkpoint to fine-tune from and its network's configuration."""
    if init is None:
        return None, None
    from ..train.loop import load_checkpoint
    from ..train.net import NetConfig

    if init == SHIPPED_WEIGHTS:
        from ..models.registry import package_dir

        path = package_dir() / "lookalike-copy-v1.pt"
        if not path.exists():
            raise LookalikeError(f"the shipped weights are missing ({path}); reinstall "
                                 "lookalike or give a checkpoint")
    else:
        path = Path(init)
    state = load_checkpoint(path)
    return path, NetConfig.from_dict(state["net_config"])


class _progress:
    """A Rich progress bar when stderr is a terminal; a log line every 10% otherwise."""

    def __enter__(self):
        self.bar = None
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
                TimeRemainingColumn

            self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                console=err, transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=None, loss="")
        self.last_tenth = -1
        return self.report

    def report(self, p) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=p.step, total=p.total_steps,
                            loss=f"{p.loss:.4f}")
            return
        tenth = 10 * p.step // max(p.total_steps, 1)
        if tenth != self.last_tenth:
            self.last_tenth = tenth
            err.print(f"step {p.step:,}/{p.total_steps:,}  loss {p.loss:.4f}  "
                      f"{p.step / max(p.elapsed_s, 1e-9):.2f} steps/s")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _register(index_path: Path, onnx_path: Path) -> bool:
    from ..methods.embedding import register_model

    with open_index(index_path, create=True) as idx:
        idx.acquire()
        register_model(idx, str(onnx_path))
    return True
