"""Running a strategy's plan: each phase of :mod:`graft.training.plan` becomes one :func:`run_loop` call.

:class:`FitContext` is what the phases share: the estimator's modality hooks (datasets, batches, embeddings), the
task (loss, validation metrics), the strategy (parameter groups, loss of a step), the data and the run directory.
Phases read the strategy's typed settings and never look at its name.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from .._utils import torch_threads
from ..tasks.base import Task
from .adapt import run_adapt, run_deep_adapt
from .deadlines import current_deadline
from .logistic import run_logistic_head
from .loop import LoopResult, TrainConfig, run_loop
from .pairs import run_pairs
from .plan import (
    AdaptPhase,
    BackbonePhase,
    DeepAdaptPhase,
    HeadPhase,
    LogisticHeadPhase,
    PairPhase,
    Phase,
    WeightedPhase,
)

if TYPE_CHECKING:
    from ..strategies.base import Strategy

__all__ = ["FitContext", "run_plan", "HEAD_EPOCHS", "HEAD_LR", "WARMUP_ROWS"]

#: images per forward/backward chunk when fine-tuning convnets with frozen BatchNorm: EfficientNet-Lite0 at 224 px
#: steps a batch of 32 in 0.74 s in chunks of 4 (1.2 GB peak), 0.68 s in chunks of 8 (1.6 GB), 0.76 s whole (4.4 GB)
MICRO_BATCH = 4
#: head fitting on cached embeddings before a backbone phase: a cheap convex-ish problem, run to convergence
HEAD_EPOCHS = 60
HEAD_LR = 3e-3
#: the head warm-up sees at most this many training examples (embedding them all costs as much as a fine-tuning
#: epoch on large sets, and the warm-up only initialises the head)
WARMUP_ROWS = 10_000


@dataclass
class FitContext:
    """Everything a phase needs. ``est`` is the estimator being fitted (its modality hooks and settings)."""

    est: Any
    strategy: Strategy
    task: Task
    classes: np.ndarray
    train: Any
    val: Any | None
    target: Any | None
    run_dir: Path | None
    resume: bool
    callbacks: Sequence[Callable[[str, int, dict[str, Any]], None]] = ()
    #: state handed from one phase to the next (e.g. the adaptation modules and importance weights)
    carry: dict[str, Any] = field(default_factory=dict)
    _features: dict[tuple[str, int | None], tuple[torch.Tensor, Any, list[int] | None]] = field(default_factory=dict)

    def hook(self, phase: str) -> Callable[[int, dict[str, Any]], None]:
        def call(epoch: int, logs: dict[str, Any]) -> None:
            for cb in self.callbacks:
                cb(phase, epoch, logs)

        return call

    def features(self, split: str, max_rows: int | None = None) -> tuple[torch.Tensor, Any, list[int] | None]:
        """Frozen-backbone head inputs of a split (``train``, ``val``, ``target``): ``(features, y, lengths)``,
        ``lengths`` the rows per example for sequence tasks (else ``None``). ``max_rows`` embeds a seeded subset."""
        key = (split, max_rows if split == "train" else None)
        if key not in self._features:
            t0 = time.perf_counter()
            data = getattr(self, split)
            if max_rows is not None and len(data) > max_rows:
                keep = np.random.default_rng(self.est.seed).permutation(len(data))[:max_rows]
                data = data.subset(sorted(keep.tolist()))
            self._features[key] = self.est._head_features(data)
            self.est.embed_seconds_ = getattr(self.est, "embed_seconds_", 0.0) + time.perf_counter() - t0
        return self._features[key]

    def backbone_changed(self) -> None:
        """After a phase trained the backbone: embeddings computed before no longer hold (a later head phase embeds
        again, under the embedding-cache key of the new weights)."""
        self._features.clear()
        self.est.__dict__.pop("_cache_ident", None)

    def config(self, *, head: bool, epochs: int, lr: float, monitor: str | None = None) -> TrainConfig:
        """The loop settings of a phase; ``head``: a phase on embeddings (adamw, one summary line)."""
        est = self.est
        return TrainConfig(
            epochs=int(epochs),
            lr=float(lr),
            batch_size=est.batch_size,
            weight_decay=est.weight_decay,
            grad_accum=est.grad_accum,
            precision=est.precision,
            schedule=est.schedule,
            patience=est.patience,
            monitor=monitor or self.task.monitor,
            seed=est.seed,
            device=est.device,
            channels_last=est.modality == "image" and not head,
            verbose=est._verbose(),
            log_epochs=not head,
            optimizer="adamw" if head else self.strategy.optimizer,
            log_with=est.log_with,
            deadline=current_deadline(),  # graft.training.deadline(...) around the fit
        )

    def epochs(self) -> int:
        return int(self.est.epochs if self.est.epochs is not None else self.strategy.default_epochs)

    def lr(self) -> float:
        est = self.est
        if est.lr == "auto":  # a range test on the training data, once per fit
            if "lr_find" not in self.carry:
                from .lr_find import range_test_on

                found = range_test_on(est, self.strategy, self.task, self.classes, self.train)
                est.lr_found_ = found.to_dict()
                self.carry["lr_find"] = found.suggestion if np.isfinite(found.suggestion) else None
            return float(self.carry["lr_find"] or self.strategy.lr_for(est.modality))
        return float(est.lr if est.lr is not None else self.strategy.lr_for(est.modality))

    def val_metrics_fn(self) -> Callable[..., dict[str, float]] | None:
        """The per-epoch evaluation of the whole model on the validation split (``None`` without one)."""
        if self.val is None:
            return None
        val, task, classes, est = self.val, self.task, self.classes, self.est

        def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            return task.epoch_metrics(est._outputs(model, val, autocast=autocast), val.y, classes)

        return evaluate


def split_rows(logits: torch.Tensor, y: Any, lengths: list[int] | None) -> tuple[Any, Any]:
    """Flattened per-row outputs back into per-example arrays (sequence tasks); unchanged without ``lengths``."""
    if lengths is None:
        return logits, y
    bounds = np.cumsum(lengths)[:-1]
    return np.split(logits.numpy(), bounds), None if y is None else np.split(np.asarray(y), bounds)


def _run_head(phase: HeadPhase, ctx: FitContext) -> LoopResult:
    """Fit the head on cached embeddings (at most ~500 steps an epoch: token heads see 100,000s of rows)."""
    head = ctx.est.model_.head
    f_train, y_train, _ = ctx.features("train", WARMUP_ROWS if phase.warmup else None)
    epochs, lr = (HEAD_EPOCHS, HEAD_LR) if phase.warmup else (ctx.epochs(), ctx.lr())
    config = ctx.config(head=True, epochs=epochs, lr=lr)
    # between 20 and 500 steps an epoch: few examples in big batches would leave a linear head under-trained (240
    # rows in batches of 64 reach 0.65 training accuracy on separable blobs in 30 epochs, batches of 12 reach 0.9+)
    # (the rule applies to the global batch: several processes split it, and must step as one process would)
    n, world = len(f_train), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    global_batch = max(min(config.batch_size * world, -(-n // 20)), min(8, n), -(-n // 500))
    config.batch_size = max(1, global_batch // world)
    evaluate = None
    if ctx.val is not None:
        fv, yv, lengths = ctx.features("val")

        def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            logits, y = split_rows(model(fv.to(device)).float().cpu(), yv, lengths)
            return ctx.task.epoch_metrics(logits, y, ctx.classes)

    criterion = ctx.task.criterion(ctx.strategy.label_smoothing)
    with torch_threads(1):  # a linear layer on a few hundred vectors: thread hand-offs cost more than they save
        return run_loop(
            head,
            train_set=TensorDataset(f_train, torch.as_tensor(y_train)),
            sample_weights=ctx.task.sample_weights(y_train),
            param_groups=[{"params": list(head.parameters()), "lr": config.lr}],
            loss_fn=lambda m, b: {"loss": criterion(m(b[0]), b[1])},
            config=config,
            evaluate=evaluate,
            run_dir=ctx.run_dir,
            phase=phase.name,
            resume=ctx.resume,
            on_epoch_end=ctx.hook(phase.name),
        )


def _run_backbone(phase: BackbonePhase, ctx: FitContext) -> LoopResult:
    """Train backbone (or its adapters) and head: scheduled unfreezing, the strategy's parameter groups."""
    est, strategy = ctx.est, ctx.strategy
    model, backbone = est.model_, est.backbone_
    config = ctx.config(head=False, epochs=ctx.epochs(), lr=ctx.lr())
    if est.modality == "image" and strategy.freeze_bn:  # no batch statistics: chunks step as the whole batch does
        config.micro_batch = MICRO_BATCH
    adapters = strategy.prepare(backbone.module)  # e.g. LoRA adapters, injected in place
    adapter_ids = {id(p) for p in adapters}
    groups = [[p for p in g if id(p) not in adapter_ids] for g in backbone.layer_groups()]
    head_params = list(model.head.parameters())
    if adapters:
        n_all = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in adapters) + sum(p.numel() for p in head_params)
        est.trainable_share_ = n_train / n_all
        if est._verbose():
            from rich.console import Console

            Console(stderr=True).print(
                f"{strategy.name}: training {n_train:,} of {n_all:,} parameters ({100 * n_train / n_all:.2f}%)"
            )

    set_trainable = functools.partial(strategy.set_trainable, groups)

    def train_mode(m: nn.Module) -> None:
        m.train()
        for mod in m.modules():  # BatchNorm of frozen layers keeps its pretrained statistics
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (
                strategy.freeze_bn or not any(p.requires_grad for p in mod.parameters(recurse=False))
            ):
                mod.eval()

    weights = ctx.task.sample_weights(ctx.train.y)  # e.g. a class-balanced sampler
    if isinstance(phase, WeightedPhase):
        from ..adapt import density_ratio

        weights = density_ratio(
            est._weighting_features(ctx.train), est._weighting_features(ctx.target), method=phase.method, seed=est.seed
        )
        ess = float(weights.sum() ** 2 / (weights**2).sum())  # effective sample size of the weighted source
        est.importance_weights_ = {
            "method": phase.method,
            "max": round(float(weights.max()), 3),
            "effective_rows": round(ess, 1),
            "rows": len(weights),
        }
    set_trainable(0)
    result = run_loop(
        model,
        train_set=est._train_dataset(ctx.train),
        sample_weights=weights,
        param_groups=strategy.param_groups(groups, head_params, config.lr, adapters),
        loss_fn=functools.partial(strategy.loss, criterion=ctx.task.criterion(strategy.label_smoothing)),
        collate_fn=est._collate_fn(),
        config=config,
        evaluate=ctx.val_metrics_fn(),
        on_epoch_start=set_trainable,
        train_mode=train_mode,
        run_dir=ctx.run_dir,
        phase=phase.name,
        resume=ctx.resume,
        on_epoch_end=ctx.hook(phase.name),
    )
    strategy.finalize(backbone.module)  # e.g. merge adapters into the weights
    return result


def run_plan(plan: Sequence[Phase], ctx: FitContext) -> dict[str, LoopResult]:
    """Run each phase in order; return their results by phase name."""
    runners: dict[type[Phase], Callable[[Any, FitContext], LoopResult]] = {
        HeadPhase: _run_head,
        BackbonePhase: _run_backbone,
        WeightedPhase: _run_backbone,
        AdaptPhase: run_adapt,
        DeepAdaptPhase: run_deep_adapt,
        PairPhase: run_pairs,
        LogisticHeadPhase: run_logistic_head,
    }
    examples, ctx.est.label_prompts_ = ctx.strategy.prompt_examples(list(ctx.classes)), 0
    if examples:  # e.g. the few-shot strategy's label prompts, trained on beside the data
        ctx.train = ctx.est._with_examples(ctx.train, examples, required=bool(ctx.strategy.label_prompts))
    results: dict[str, LoopResult] = {}
    ctx.est.kept_phase_ = None
    warmed: _Warmed | None = None
    for i, phase in enumerate(plan):
        res = results[phase.name] = runners[type(phase)](phase, ctx)
        following = plan[i + 1] if i + 1 < len(plan) else None
        if isinstance(phase, HeadPhase) and isinstance(following, BackbonePhase) and ctx.val is not None and res.best:
            state = ctx.est.model_.state_dict()
            kept = {k: v.detach().clone() for k, v in state.items()} if ctx.strategy.best_of_phases else None
            warmed = _Warmed(phase.name, res.best, set(state), kept)
        elif warmed is not None and isinstance(phase, BackbonePhase) and res.best:
            _keep_the_better(ctx, phase.name, res.best, warmed)
            warmed = None
    return results


@dataclass
class _Warmed:
    """The head warm-up before a backbone phase: its name, best validation scores, the model's state keys, and (with
    the strategy's ``best_of_phases``) a copy of that state to give back."""

    name: str
    best: dict[str, float]
    keys: set[str]
    state: dict[str, torch.Tensor] | None


def _keep_the_better(ctx: FitContext, name: str, best: dict[str, float], warmed: _Warmed) -> None:
    """After fine-tuning whose best epoch scored worse on validation than the head trained before it on the frozen
    backbone: with the strategy's ``best_of_phases`` the model goes back to that head and backbone (the best checkpoint
    of the whole run); either way a warning says so."""
    import warnings

    from .loop import _better

    head_name, head_best, state = warmed.name, warmed.best, warmed.state
    model = ctx.est.model_
    monitor = ctx.task.monitor
    if warmed.keys != set(model.state_dict()) or not _better(head_best, best, monitor):
        return  # adapters were added (the states differ), or fine-tuning did as well or better
    key = monitor  # the score that decided it: the monitored one, or the loss on a tie (as the loop compares)
    tie = ""
    if monitor not in best or head_best.get(monitor) == best.get(monitor):
        key = "val_loss" if "val_loss" in best else "train_loss"
        tie = f"; {monitor} tied at {best.get(monitor, float('nan')):.4g}" if monitor in best else ""
    scores = (
        f"{name} ended worse on validation ({key} {best.get(key, float('nan')):.4g}) than the {head_name} "
        f"phase before it ({head_best.get(key, float('nan')):.4g}{tie})"
    )
    if state is None:
        warnings.warn(
            f"{scores}. The fine-tuned model is kept; best_of_phases=True (CLI: --set best_of_phases=true) gives the "
            "warm-up's back in such a case, and a lower learning rate (lr-find) may let fine-tuning help.",
            stacklevel=2,
        )
        return
    model.load_state_dict(state)
    ctx.backbone_changed()
    ctx.est.kept_phase_ = head_name
    warnings.warn(f"{scores}: the model is the {head_name} one, on the pretrained backbone.", stacklevel=2)
