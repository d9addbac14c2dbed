"""The one training loop, on Hugging Face Accelerate.

Every strategy and modality goes through :func:`run_loop`: epochs, mixed precision, gradient accumulation,
warm-up + cosine / one-cycle schedules, an atomic checkpoint per epoch, ``resume``, early stopping on a
validation metric with the best epoch's weights kept, seeded determinism, a rich progress bar with ETA
and ``metrics.jsonl``.

Determinism across an interruption: the data order of epoch ``e`` comes from a sampler seeded with
``seed`` and ``e`` and all other randomness (augmentation, dropout) is re-seeded from ``seed`` and ``e`` at
the start of each epoch, so a run resumed from the checkpoint of epoch ``e - 1`` replays epoch ``e``
exactly as an uninterrupted run would.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, WeightedRandomSampler

from .._utils import seed_everything, tune_allocator
from ..errors import ConfigError, TrainingError
from .deadlines import past, until
from .run_files import MetricsFile, load_checkpoint
from .run_files import save_checkpoint as _save_checkpoint
from .samplers import LengthGroupedBatchSampler, micro_batches

__all__ = ["TrainConfig", "LoopResult", "run_loop", "EvalFn", "make_accelerator", "LengthGroupedBatchSampler"]

EvalFn = Callable[[nn.Module, torch.device, Callable[[], Any]], dict[str, float]]
_SCHEDULES = ("cosine", "one-cycle", "constant")
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Settings of one training phase.

    Args:
        epochs: passes over the training data.
        lr: base (head) learning rate; strategies scale it per layer group.
        batch_size: samples per step before gradient accumulation.
        weight_decay: AdamW decoupled weight decay.
        grad_accum: steps whose gradients are summed before one optimizer step.
        precision: ``auto`` (bf16/fp16 on CUDA, fp32 on CPU), ``fp32``, ``bf16`` or ``fp16``.
        schedule: ``cosine`` (linear warm-up, cosine decay), ``one-cycle`` or ``constant``.
        warmup_fraction: share of optimizer steps spent warming up (cosine).
        max_grad_norm: gradient-norm clipping; ``None`` disables it.
        patience: stop after this many epochs without improvement of ``monitor``; ``None`` never stops.
        monitor: a validation metric: ``val_*loss`` / ``val_*entropy`` (lower is better) or any other ``val_*``
            such as ``val_accuracy`` or ``val_f1`` (higher is better; ties broken by lower ``val_loss``).
        seed: seeds data order, augmentation and initialisation.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        channels_last: NHWC memory format for convnets (faster on CPU and tensor cores).
        optimizer: ``adamw`` or ``sgd`` (Nesterov momentum 0.9; gentler on pretrained convnets).
        verbose: progress bar and one line per epoch.
        log_epochs: with ``verbose``, print a line per epoch (else one summary line for the phase).
        group_by_length: when the training set has a ``lengths`` attribute (token counts: texts, NER windows),
            draw batches of similar length (:class:`LengthGroupedBatchSampler`) so little compute goes to padding.
        log_with: an experiment tracker of Accelerate (``tensorboard``, ``wandb``, ...) that gets every epoch's
            metrics, under ``<run dir>/logs/<phase>``; needs a run directory and the tracker's package.
        micro_batch: run the forward and backward pass of an ``(inputs, targets)`` batch in chunks of this many
            examples, their gradients summed before the step: the same step as the whole batch when no layer uses
            batch statistics (BatchNorm frozen) and the loss is a mean, with a fraction of the activation memory.
        deadline: a ``time.perf_counter()`` value: the epoch under way is cut between steps, evaluated; training ends.
        checkpoint_seconds: at least this long between two checkpoints (and ``metrics.jsonl`` rewrites) of the
            phase, for phases of many very short epochs; the last epoch's is always written. ``0``: every epoch's.
    """

    epochs: int
    lr: float
    batch_size: int = 32
    weight_decay: float = 0.05
    grad_accum: int = 1
    precision: str = "auto"
    schedule: str = "cosine"
    warmup_fraction: float = 0.1
    max_grad_norm: float | None = 1.0
    patience: int | None = None
    monitor: str = "val_accuracy"
    seed: int = 0
    device: str = "auto"
    channels_last: bool = False
    optimizer: str = "adamw"
    verbose: bool = True
    log_epochs: bool = True
    group_by_length: bool = True
    log_with: str | None = None
    micro_batch: int | None = None
    deadline: float | None = None
    checkpoint_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1; got {self.epochs}.")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("batch_size and grad_accum must be >= 1.")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(_SCHEDULES)}; got '{self.schedule}'.")
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(_PRECISIONS)}; got '{self.precision}'.")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be 'adamw' or 'sgd'; got '{self.optimizer}'.")
        if not self.monitor.startswith("val_"):
            raise ConfigError(
                f"monitor must name a validation metric such as 'val_accuracy' or 'val_loss'; got '{self.monitor}'."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoopResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    seconds: float = 0.0


def _mixed_precision(precision: str, device: str) -> str:
    if precision == "fp32":
        return "no"
    if precision != "auto":
        return precision
    if device.startswith("cuda") and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def make_accelerator(config: TrainConfig, project_dir: Path | None = None) -> Any:
    """An ``accelerate.Accelerator`` for this phase (resetting a single-process state of other precision)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration

    from .._utils import resolve_device

    device = resolve_device(config.device)
    mp = _mixed_precision(config.precision, device)
    state = AcceleratorState._shared_state
    if state and state.get("num_processes", 1) == 1:
        # one process: a later fit may ask for another device or precision than an earlier one in this process
        current = state.get("device")
        wanted = torch.device(device)
        same_device = current is not None and current.type == wanted.type
        if state.get("_mixed_precision") != mp or not same_device:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(
        log_with=config.log_with if project_dir is not None else None,
        project_dir=None if project_dir is None else str(project_dir),
        cpu=device == "cpu",
        mixed_precision=mp,
        gradient_accumulation_steps=config.grad_accum,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )


def _make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    total_steps = max(1, total_steps)
    if config.schedule == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=total_steps,
            pct_start=max(config.warmup_fraction, 0.01),
        )
    warmup = int(round(config.warmup_fraction * total_steps)) if config.schedule == "cosine" else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _better(logs: dict[str, float], best: dict[str, float], monitor: str) -> bool:
    if not best:
        return True
    if monitor not in logs:
        key = "val_loss" if "val_loss" in logs else "train_loss"
        return logs[key] < best[key]
    if logs[monitor] != best[monitor]:
        lower_is_better = monitor.endswith(("loss", "entropy"))
        return logs[monitor] < best[monitor] if lower_is_better else logs[monitor] > best[monitor]
    return logs.get("val_loss", 0.0) < best.get("val_loss", 0.0)


def run_loop(
    model: nn.Module,
    *,
    train_set: Dataset,
    param_groups: list[dict[str, Any]],
    loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
    config: TrainConfig,
    evaluate: EvalFn | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    train_mode: Callable[[nn.Module], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    run_dir: Path | None = None,
    phase: str = "train",
    resume: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    sample_weights: np.ndarray | None = None,
) -> LoopResult:
    """Train ``model`` in place; on return it holds the best epoch's weights.

    Args:
        model: the module to train (frozen parts have ``requires_grad=False``).
        train_set: map-style dataset of training batches' items.
        param_groups: optimizer groups (``params``, ``lr``), from the strategy.
        loss_fn: ``(model, batch) -> {"loss": scalar, ...}``.
        config: loop settings.
        evaluate: ``(model, device, autocast) -> {"val_loss", "val_accuracy", ...}``; run after each epoch.
        on_epoch_start: called with the epoch index before it starts (e.g. scheduled unfreezing).
        train_mode: sets train/eval modes at the start of each epoch (default ``model.train()``).
        on_epoch_end: called with ``(epoch, logs)`` after the epoch's checkpoint is written.
        run_dir: where ``checkpoints/<phase>/`` and ``metrics.jsonl`` go; ``None`` keeps nothing on disk.
        phase: name of this phase (several phases can share a run directory).
        resume: continue from ``checkpoints/<phase>/last.pt`` when it exists.
        collate_fn: DataLoader collate function.
        sample_weights: draw training items with these probabilities (with replacement; importance weighting)
            instead of a shuffled pass.

    Returns:
        A :class:`LoopResult` with the per-epoch history and the best epoch.
    """
    tune_allocator()
    t_start = time.perf_counter()
    seed_everything(config.seed)
    accelerator = make_accelerator(config, None if run_dir is None or not config.log_with else run_dir / "logs")
    tracking = run_dir is not None and bool(config.log_with)
    if tracking:
        accelerator.init_trackers(phase)
    device = accelerator.device
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    groups = [g for g in param_groups if g["params"]]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    drop_last = len(train_set) > config.batch_size  # type: ignore[arg-type]
    lengths = getattr(train_set, "lengths", None)
    if config.group_by_length and lengths is not None:
        batch_sampler = LengthGroupedBatchSampler(lengths, config.batch_size, seed=config.seed, drop_last=drop_last)
        loader = DataLoader(train_set, batch_sampler=batch_sampler, collate_fn=collate_fn)
    else:
        sampler: Any = RandomSampler(train_set, generator=generator)  # type: ignore[arg-type]
        if sample_weights is not None:
            sampler = WeightedRandomSampler(
                torch.as_tensor(sample_weights, dtype=torch.double), len(sample_weights), generator=generator
            )
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            collate_fn=collate_fn,
            drop_last=drop_last,
        )
    # Several processes (``accelerate launch``): each takes its shard of every global batch and gradients are averaged
    # across processes before each optimizer step. The model is not wrapped in DistributedDataParallel, so losses
    # may call any of its sub-modules (a strategy's ``model.head``, ``model.embed``).
    distributed = accelerator.num_processes > 1
    if distributed:
        model = model.to(device)
        optimizer, loader = accelerator.prepare(optimizer, loader)
    else:
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    main = accelerator.is_main_process
    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch * config.epochs)

    result = LoopResult()
    start_epoch, bad_epochs = 0, 0
    ckpt_dir = run_dir / "checkpoints" / phase if run_dir is not None else None
    best_state: dict[str, torch.Tensor] | None = None
    metrics: MetricsFile | None = None  # opened at the first epoch's end, after the phase's earlier rows
    last_write = -math.inf
    if resume and ckpt_dir is not None and (ckpt_dir / "last.pt").exists():
        ck = load_checkpoint(ckpt_dir / "last.pt")
        accelerator.unwrap_model(model).load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch, bad_epochs = ck["epoch"] + 1, ck["bad_epochs"]
        result.history, result.best, result.best_epoch = list(ck["history"]), dict(ck["best"]), ck["best_epoch"]
        best_state = ck["best_model"]
        if ck.get("done"):
            start_epoch = config.epochs

    def autocast() -> Any:
        return accelerator.autocast() if accelerator.mixed_precision != "no" else nullcontext()

    progress = _progress(config.verbose and main and start_epoch < config.epochs)
    task = progress.add_task(phase, total=(config.epochs - start_epoch) * len(loader), loss="") if progress else None
    unwrapped = accelerator.unwrap_model(model)
    try:
        if progress:
            progress.start()
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            seed_everything(config.seed * 100_003 + epoch)
            loader.set_epoch(epoch)
            if on_epoch_start:
                on_epoch_start(epoch)
            (train_mode or (lambda m: m.train()))(unwrapped)
            total, count = 0.0, 0
            for batch in until(loader, config.deadline):
                with accelerator.accumulate(model), autocast():
                    loss = torch.zeros(())
                    for chunk, share in micro_batches(batch, config.micro_batch):
                        part = loss_fn(model, chunk)["loss"] * share
                        if not torch.isfinite(part):
                            raise TrainingError(
                                f"loss became {part.item()} at epoch {epoch + 1}; lower the learning rate "
                                f"(now {config.lr}) or use precision='fp32'."
                            )
                        accelerator.backward(part)
                        loss = loss + part.detach().float().cpu()
                    if accelerator.sync_gradients and distributed:
                        _average_gradients(unwrapped, accelerator)
                    if accelerator.sync_gradients and config.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    if accelerator.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                n = len(batch[1]) if isinstance(batch, (list, tuple)) else 1
                total += loss.item() * n
                count += n
                if progress and task is not None:
                    progress.update(
                        task,
                        advance=1,
                        loss=f"loss {total / max(count, 1):.4f}",
                        description=f"{phase} {epoch + 1}/{config.epochs}",
                    )
            if distributed:  # the epoch's mean loss over every process's examples
                summed = accelerator.reduce(torch.tensor([total, float(count)], device=device), "sum")
                total, count = float(summed[0]), int(summed[1])
            logs: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": total / max(count, 1),
                "lr": optimizer.param_groups[0]["lr"],
            }
            train_seconds = time.perf_counter() - t0
            if evaluate is not None:
                unwrapped.eval()
                with torch.no_grad():
                    logs.update(evaluate(unwrapped, device, autocast))
            logs["seconds"] = round(time.perf_counter() - t0, 3)
            logs["train_samples_per_s"] = round(count / max(train_seconds, 1e-9), 2)
            improved = _better(logs, result.best, config.monitor)
            if improved:
                result.best = {k: v for k, v in logs.items() if k.startswith(("val_", "train_loss"))}
                result.best_epoch = epoch + 1
                best_state = {
                    k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else copy.deepcopy(v)
                    for k, v in unwrapped.state_dict().items()
                }
                bad_epochs = 0
            else:
                bad_epochs += 1
            result.history.append(logs)
            stop = (config.patience is not None and bad_epochs >= config.patience) or past(config.deadline)
            done = stop or epoch + 1 == config.epochs
            due = done or time.perf_counter() - last_write >= config.checkpoint_seconds
            if ckpt_dir is not None and run_dir is not None and main and due:
                _save_checkpoint(
                    ckpt_dir / "last.pt",
                    {
                        "model": unwrapped.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch,
                        "bad_epochs": bad_epochs,
                        "history": result.history,
                        "best": result.best,
                        "best_epoch": result.best_epoch,
                        "best_model": best_state,
                        "done": done,
                    },
                )
                metrics = metrics or MetricsFile(run_dir, phase)
                metrics.write(result.history)
                last_write = time.perf_counter()
            if config.verbose and config.log_epochs and main:
                _print_epoch(phase, logs, improved)
            if on_epoch_end:
                on_epoch_end(epoch, logs)
            if tracking:
                accelerator.log({k: v for k, v in logs.items() if isinstance(v, (int, float))}, step=epoch + 1)
            if stop:
                result.stopped_early = True
                break
    finally:
        if progress:
            progress.stop()
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    result.seconds = time.perf_counter() - t_start
    if config.verbose and not config.log_epochs and result.history and main:
        _print_epoch(f"{phase} ({len(result.history)} epochs, {result.seconds:.1f}s) best", result.best, False)
    # drop the mixed-precision forward wrapper that prepare() installed: inference after training runs in the same
    # precision as a model loaded from its bundle
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if tracking:
        accelerator.end_training()
    accelerator.free_memory()
    return result


def _average_gradients(model: nn.Module, accelerator: Any) -> None:
    """Average every parameter's gradient over the processes (what DistributedDataParallel does in its hooks)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    for p in params:  # the same tensor layout on every process, whichever parameters this shard reached
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    flat = accelerator.reduce(flat, "mean")
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[loss]}"),
        transient=True,
        console=Console(stderr=True),
    )


def _print_epoch(phase: str, logs: dict[str, Any], improved: bool) -> None:
    from rich.console import Console

    parts = [
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in logs.items()
        if k not in ("lr", "train_samples_per_s")
    ]
    Console(stderr=True).print(
        f"[dim]{phase}[/] " + " ".join(parts) + (" [green]*[/]" if improved else ""), highlight=False
    )
