"""The training loop: AdamW with a linear warm-up and a cosine decay, checkpoints that a killed
run resumes from, and an ONNX export of the embedding network at the end.

A checkpoint (`out_dir/checkpoint.pt`, written atomically) holds the network configuration,
the objective's weights, the optimiser, the scheduler, torch's RNG state, the step and the
loss history. Because batch k is a pure function of (seed, k) (see data.py), a resumed run
trains on exactly the batches the killed run would have. The exported model is then checked
on copies of the pictures (check.py) and the result returned with the run's.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import TrainingError
from .augment import DEFAULT, AugmentConfig
from .check import CheckOptions, ModelCheck, check_model, record_in_sidecar
from .net import NetConfig

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Progress:
    step: int  # steps done so far
    total_steps: int
    loss: float
    parts: dict[str, float]
    lr: float
    elapsed_s: float  # in this call, excluding decoding the pictures


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    onnx: Path | None  # None when the run was stopped before the end
    steps: int  # steps done, counting those of earlier (resumed) runs
    total_steps: int
    final_loss: float  # mean of the last `loss_window` steps
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) per step
    stopped: bool = False
    seconds: float = 0.0  # training time in this call
    total_seconds: float = 0.0  # training time of all the calls of this run (resumed ones too)
    check: ModelCheck | None = None  # the exported model measured (check.py); None: not run


ProgressCallback = Callable[[Progress], "bool | None"]


def _schedule(step: int, total: int, warmup: int, min_ratio: float = 0.01) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save(path: Path, state: dict) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc


def net_from_checkpoint(path: Path | str):
    """The EmbeddingNet saved in a checkpoint, in eval mode."""
    from .net import EmbeddingNet

    state = load_checkpoint(path)
    net = EmbeddingNet(NetConfig.from_dict(state["net_config"]))
    prefix = "net."
    net.load_state_dict({k[len(prefix):]: v for k, v in state["objective"].items()
                         if k.startswith(prefix)})
    return net.eval()


def train(files: Sequence[Path | str], *, objective: str = "contrastive",
          steps: int | None = None, epochs: float | None = None, batch_size: int = 64,
          lr: float = 2e-3, weight_decay: float = 0.05, warmup: float = 0.05,
          device: str = "cpu", out_dir: Path | str, resume: bool = True,
          init: Path | str | None = None, net_config: NetConfig | None = None,
          augment_config: AugmentConfig = DEFAULT, objective_options: dict | None = None,
          seed: int = 0, workers: int = 1, max_side: int = 512, tile: int = 192,
          checkpoint_every: int = 200, progress: ProgressCallback | None = None,
          progress_every: int = 10, export: bool = True, model_name: str = "model",
          loss_window: int = 50, check: CheckOptions | None = CheckOptions(),
          check_files: Sequence[Path | str] | None = None) -> TrainResult:
    """Train an embedding network on pairs of augmented views of `files`.

    `steps` (or `epochs` over the instances) sets the length; `batch_size` counts instances,
    each giving two views. `resume` continues from `out_dir/checkpoint.pt` when there is one;
    `init` starts from another checkpoint's network weights (fine-tuning; optimiser and step
    start afresh). `progress` is called every `progress_every` steps; when it returns False
    the run stops at once, as if killed (the last periodic checkpoint stays). At the end the
    network is exported to `out_dir/<model_name>.onnx` with its sidecar JSON, then checked
    (check.py; `check=None` skips it) on `check_files`, pictures kept out of training, or
    when None on fresh copies of the training pictures; the check and its similarity
    threshold are written into the sidecar.
    """
    import numpy as np
    import torch

    from .data import PairDataset, load_pictures, make_instances, make_loader
    from .export import export_embedding
    from .objectives import build_objective

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT
    state = load_checkpoint(checkpoint_path) if resume and checkpoint_path.exists() else None
    if state is not None:  # a resumed run keeps the settings it started with
        _same_objective(state, objective, checkpoint_path)
        net_config = NetConfig.from_dict(state["net_config"])
        seed, batch_size = state["seed"], state["batch_size"]
        objective_options = state.get("objective_options") or objective_options
    init_state = load_checkpoint(init) if init is not None and state is None else None
    if init_state is not None and net_config is None:
        net_config = NetConfig.from_dict(init_state["net_config"])
    net_config = net_config or NetConfig()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)

    finished = state is not None and state["step"] >= state["total_steps"]
    pictures, instances = [], []
    if not finished:  # a finished run only exports: no need to decode anything
        pictures, _ = load_pictures(files, max_side)
        instances = make_instances(pictures, seed, tile)
    steps = _total_steps(state, steps, epochs, len(instances), batch_size)

    model = build_objective(objective, net_config, **(objective_options or {})).to(device)
    if init_state is not None:
        _load_net(model, init_state, init)
    optimiser, scheduler = _optimiser(model, lr, weight_decay, steps, warmup)
    step, history, earlier_s = 0, [], 0.0
    if state is not None:
        step, history = _restore(state, model, optimiser, scheduler)
        earlier_s = float(state.get("train_seconds", 0.0))
        log.info("resumed %s at step %d of %d", checkpoint_path, step, steps)

    def save() -> None:
        _save(checkpoint_path, {
            "objective_name": objective, "net_config": net_config.to_dict(),
            "objective": model.state_dict(), "optimiser": optimiser.state_dict(),
            "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
            "step": step, "total_steps": steps, "seed": seed, "batch_size": batch_size,
            "history": history, "lr": lr, "objective_options": objective_options or {},
            "train_seconds": earlier_s + time.perf_counter() - started})

    started = time.perf_counter()
    loader = []
    if not finished:
        dataset = PairDataset(pictures, instances, out_size=net_config.input_size, seed=seed,
                              config=augment_config)
        loader = make_loader(dataset, batch_size, step, steps, workers)
    mean = torch.tensor(net_config.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(net_config.std, device=device).view(1, 3, 1, 1) * 255
    model.train()
    stopped = False
    for view_a, view_b, labels in loader:
        parts = _step(model, optimiser, scheduler, (view_a.to(device).float() - mean) / std,
                      (view_b.to(device).float() - mean) / std, labels.to(device), step)
        step += 1
        history.append((step, parts["loss"]))
        if step % checkpoint_every == 0 and step < steps:
            save()
        if progress is not None and (step % progress_every == 0 or step == steps):
            report = Progress(step, steps, parts["loss"], parts, scheduler.get_last_lr()[0],
                              time.perf_counter() - started)
            if progress(report) is False:
                stopped = True
                break
    if not stopped and not finished:
        save()
    onnx_path = None
    if export and not stopped:
        net = model.net.to("cpu")
        onnx_path = export_embedding(
            net, out / f"{model_name}.onnx", name=model_name,
            description=f"{objective} embedding, {step} steps of {batch_size} pairs").onnx_path
        model.to(device)
    tail = [loss for _, loss in history[-loss_window:]]
    final = float(np.mean(tail)) if tail else float("nan")
    seconds = time.perf_counter() - started
    measured = None  # after the clock: the check is not training time
    if onnx_path is not None and check is not None:
        measured = _check(onnx_path, files, check_files, check)
    return TrainResult(checkpoint_path, onnx_path, step, steps, final, history, stopped,
                       seconds, earlier_s + seconds, measured)


def _same_objective(state: dict, objective: str, path: Path) -> None:
    if state["objective_name"] != objective:
        raise TrainingError(f"{path} was trained with {state['objective_name']!r}, not "
                            f"{objective!r}")


def _total_steps(state: dict | None, steps: int | None, epochs: float | None, instances: int,
                 batch_size: int) -> int:
    """The run's length: a resumed run's own, else `steps`, else `epochs` over the
    instances."""
    if batch_size < 2:
        raise TrainingError("contrastive batches need at least 2 instances")
    if state is not None:
        return state["total_steps"]
    if steps is not None:
        return steps
    if epochs is None:
        raise TrainingError("give steps or epochs")
    return max(1, math.ceil(epochs * instances / batch_size))


def _check(onnx_path: Path, files, check_files, options: CheckOptions) -> ModelCheck:
    held_out = bool(check_files)
    measured = check_model(onnx_path, check_files if held_out else files, options,
                           held_out=held_out)
    record_in_sidecar(measured)
    log.info("model check: %s", measured.reason)
    return measured


def _load_net(model, init_state: dict, init) -> None:
    nets = {k: v for k, v in init_state["objective"].items() if k.startswith("net.")}
    try:
        model.load_state_dict(nets, strict=False)
    except RuntimeError as exc:  # another network's shapes
        raise TrainingError(f"cannot start from {init}: {exc}") from None
    log.info("initialised from %s", init)


def _optimiser(model, lr: float, weight_decay: float, steps: int, warmup: float):
    """AdamW (no decay on biases, norms and GeM's p) and its warm-up + cosine schedule."""
    import torch

    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup_steps = max(1, int(warmup * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: _schedule(s, steps, warmup_steps))
    return optimiser, scheduler


def _restore(state: dict, model, optimiser, scheduler) -> tuple[int, list]:
    import torch

    model.load_state_dict(state["objective"])
    optimiser.load_state_dict(state["optimiser"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"], list(state["history"])


def _step(model, optimiser, scheduler, a, b, labels, step: int) -> dict[str, float]:
    import torch

    result = model(a, b, labels)
    if not torch.isfinite(result.loss):
        raise TrainingError(f"loss is {result.loss.item()} at step {step}")
    optimiser.zero_grad(set_to_none=True)
    result.loss.backward()
    optimiser.step()
    scheduler.step()
    return result.parts
