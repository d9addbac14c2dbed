"""The domain-adaptation phases: on frozen embeddings (:class:`~graft.training.plan.AdaptPhase`) and deep, backbone
included (:class:`~graft.training.plan.DeepAdaptPhase`).

Validation without target labels: the source split's loss weighted by estimated target/source density ratios
(IWCV, Sugiyama et al. 2007), plus the mean entropy of target predictions; the best epoch is the one with the lowest
weighted loss. After adaptation, the proxy A-distance between the domains before and after is measured.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .._utils import torch_threads
from ..strategies.adaptation.base import AdaptationModel
from ..strategies.adaptation.diagnostics import a_distance, domain_density_ratio
from ..strategies.adaptation.entropy import entropy
from .loop import LoopResult, run_loop
from .plan import AdaptPhase, DeepAdaptPhase

if TYPE_CHECKING:
    from .phases import FitContext

__all__ = ["run_adapt", "run_deep_adapt", "ADAPT_MIN_STEPS", "DIAG_ROWS"]

#: adaptation on embeddings trains at least this many steps unless ``epochs`` is given (on a few hundred examples,
#: 30 epochs are ~100 steps: too few for an adversarial or pseudo-label loss to act)
ADAPT_MIN_STEPS = 1_000
#: seconds between two checkpoints of adaptation on embeddings: its epochs can be a single step each (a few dozen
#: examples), and a checkpoint after every one of a thousand took longer than the training
ADAPT_CHECKPOINT_SECONDS = 5.0
#: rows per domain that the adaptation diagnostics (A-distance, feature plot) look at
DIAG_ROWS = 2000


class PairedInputs(Dataset):
    """Source item ``i`` with a random target item (drawn from torch's generator, re-seeded each epoch); source
    lengths (texts) pass through for length-grouped batches."""

    def __init__(self, source: Dataset, target: Dataset) -> None:
        self.source, self.target = source, target
        if hasattr(source, "lengths"):
            self.lengths = source.lengths

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        j = int(torch.randint(len(self.target), ()))  # type: ignore[arg-type]
        return self.source[i], self.target[j]


class PairedFeatures(Dataset):
    """Source example ``i`` with a random target example (drawn from torch's generator, re-seeded each epoch)."""

    def __init__(self, f_s: torch.Tensor, y_s: torch.Tensor, f_t: torch.Tensor) -> None:
        self.f_s, self.y_s, self.f_t = f_s, y_s, f_t

    def __len__(self) -> int:
        return len(self.f_s)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        j = int(torch.randint(len(self.f_t), ()))
        return self.f_s[i], self.y_s[i], self.f_t[j]


#: fewer unlabelled target examples than this are warned about
MIN_TARGET = 10


def _iwcv_metrics(
    ctx: FitContext, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, target_logits: torch.Tensor
) -> dict[str, float]:
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    out = ctx.task.epoch_metrics(logits, y, ctx.classes)
    out["val_iwcv_loss"] = float((weights * ce).mean())
    out["val_target_entropy"] = float(entropy(target_logits.float(), normalized=True).mean())
    return out


def run_adapt(phase: AdaptPhase, ctx: FitContext) -> LoopResult:
    """Bottleneck + classifier (+ the method's modules) on source batches paired with random target batches."""
    est, strategy = ctx.est, ctx.strategy
    f_train, y_train, _ = ctx.features("train")
    f_val, y_val, _ = ctx.features("val") if ctx.val is not None else (None, None, None)
    f_target = ctx.features("target")[0]
    if len(f_target) < MIN_TARGET:
        import warnings

        warnings.warn(
            f"the target domain holds {len(f_target)} example(s): too few to align the domains or to measure their "
            f"distance (A-distance needs 2, a useful alignment many more; give at least {MIN_TARGET}, ideally "
            "hundreds, of unlabelled target examples).",
            stacklevel=2,
        )
    config = ctx.config(head=True, epochs=1, lr=ctx.lr())
    config.checkpoint_seconds = ADAPT_CHECKPOINT_SECONDS
    if est.epochs is not None and not phase.then_deep:
        config.epochs = int(est.epochs)
    else:  # the alignment losses act over many steps: small sets get more epochs, at least ADAPT_MIN_STEPS
        per_epoch = max(1, len(f_train) // config.batch_size)
        config.epochs = max(int(strategy.default_epochs), math.ceil(ADAPT_MIN_STEPS / per_epoch))
    head = est.model_.head
    steps = config.epochs * max(1, len(f_train) // config.batch_size)
    torch.manual_seed(est.seed)
    model = AdaptationModel(head, strategy.build(head.hidden or head.in_features, len(ctx.classes), steps))
    ctx.carry["extra"] = model.extra  # the deep phase goes on with the method's modules
    evaluate = None
    if f_val is not None and y_val is not None:
        yv = torch.from_numpy(y_val)
        weights = torch.from_numpy(domain_density_ratio(f_train, f_target, f_val, seed=est.seed)).float()
        est.density_ratio_range_ = (float(weights.min()), float(weights.max()))
        ctx.carry["iwcv_weights"] = weights
        if float(weights.max() - weights.min()) < 1e-6:
            import warnings

            warnings.warn(
                "the importance weights are all equal: a linear classifier tells every source validation example "
                "from the target (the domains do not overlap in the embeddings), so val_iwcv_loss is the plain source "
                "validation loss here and cannot pick an epoch or a method for the target. Score on labelled target "
                "data (--target-test) to compare methods.",
                stacklevel=2,
            )

        def evaluate(m: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            logits = m.head(f_val.to(device)).float().cpu()
            return _iwcv_metrics(ctx, logits, yv, weights, m.head(f_target.to(device)))

        config.monitor = strategy.monitor or ctx.task.monitor
    with torch_threads(1):
        result = run_loop(
            model,
            train_set=PairedFeatures(f_train, torch.from_numpy(y_train), f_target),
            param_groups=[{"params": list(model.parameters()), "lr": config.lr}],
            loss_fn=functools.partial(strategy.loss, criterion=ctx.task.criterion(strategy.label_smoothing)),
            config=config,
            evaluate=evaluate,
            run_dir=ctx.run_dir,
            phase=phase.name,
            resume=ctx.resume,
            on_epoch_end=ctx.hook(phase.name),
        )
    head.eval()
    est.n_target_ = len(ctx.target)
    if not phase.then_deep:
        strategy.after_training(head, f_target)
        est.adaptation_diagnostics_ = diagnostics(ctx, f_train, y_train, f_target)
    return result


def run_deep_adapt(phase: DeepAdaptPhase, ctx: FitContext) -> LoopResult:
    """Backbone and head together, after the head was adapted on frozen embeddings: each step a source batch and a
    random target batch go through the backbone; the method's loss acts on the bottleneck features. The epoch is
    picked as on the fast path (IWCV with the density ratios estimated on the pretrained embeddings)."""
    est, strategy, target = ctx.est, ctx.strategy, ctx.target
    epochs = est.epochs if est.epochs is not None else strategy.deep_epochs
    config = ctx.config(head=False, epochs=epochs, lr=ctx.lr())
    head, backbone = est.model_.head, est.backbone_
    model = AdaptationModel(head, ctx.carry["extra"], backbone=backbone.module)
    target.y = np.zeros(len(target), dtype=np.int64)
    source_set = est._train_dataset(ctx.train)
    target_set = est._train_dataset(target, views=strategy.target_views)
    rng = np.random.default_rng(est.seed)
    probe = target.subset(sorted(rng.permutation(len(target))[:1000].tolist()))
    evaluate = None
    weights = ctx.carry.get("iwcv_weights")
    if ctx.val is not None and weights is not None:
        val = ctx.val
        yv = torch.from_numpy(val.y)

        def evaluate(m: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            logits = torch.from_numpy(est._outputs(m, val, autocast=autocast))
            return _iwcv_metrics(ctx, logits, yv, weights, torch.from_numpy(est._outputs(m, probe, autocast=autocast)))

        config.monitor = strategy.monitor or ctx.task.monitor
    groups = backbone.layer_groups()
    for p in backbone.module.parameters():
        p.requires_grad_(True)
    base_collate = est._collate_fn() or torch.utils.data.default_collate

    def collate(items: list[tuple[Any, Any]]) -> tuple[Any, Any, Any]:
        x_s, y_s = base_collate([s for s, _ in items])
        x_t = base_collate([t for _, t in items])[0]
        return x_s, y_s, x_t

    result = run_loop(
        model,
        train_set=PairedInputs(source_set, target_set),
        param_groups=strategy.param_groups(groups, list(head.parameters()) + list(model.extra.parameters()), config.lr),
        loss_fn=functools.partial(strategy.loss, criterion=ctx.task.criterion(strategy.label_smoothing)),
        collate_fn=collate,
        config=config,
        evaluate=evaluate,
        run_dir=ctx.run_dir,
        phase=phase.name,
        resume=ctx.resume,
        on_epoch_end=ctx.hook(phase.name),
    )
    model.eval()
    for p in backbone.module.parameters():
        p.requires_grad_(False)
    if strategy.adapts_after_training:
        strategy.after_training(head, torch.from_numpy(est._embed_uncached(target, list(range(len(target))))))

    def adapted(rows_s: list[int], rows_t: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(est._embed_uncached(ctx.train, rows_s)),
            torch.from_numpy(est._embed_uncached(target, rows_t)),
        )

    f_s, y_s, _ = ctx.features("train")
    est.adaptation_diagnostics_ = diagnostics(ctx, f_s, y_s, ctx.features("target")[0], adapted=adapted)
    return result


def diagnostics(
    ctx: FitContext,
    f_source: torch.Tensor,
    y_source: np.ndarray | None,
    f_target: torch.Tensor,
    *,
    adapted: Callable[[list[int], list[int]], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """How far apart the domains are before and after adaptation: the proxy A-distance between source and target
    frozen embeddings (the head's inputs) and between their bottleneck features (``head.features`` in eval mode), on
    at most ``DIAG_ROWS`` seeded rows per domain. With a run directory, ``domain_features.png`` shows both (PCA).
    ``adapted(source_rows, target_rows)`` gives the head inputs after a deep adaptation (the adapted backbone's
    embeddings of those rows); without it the frozen embeddings are the inputs."""
    seed = ctx.est.seed
    rng = np.random.default_rng(seed)
    i_s = torch.from_numpy(np.sort(rng.permutation(len(f_source))[:DIAG_ROWS]))
    i_t = torch.from_numpy(np.sort(rng.permutation(len(f_target))[:DIAG_ROWS]))
    before_s, before_t = f_source[i_s], f_target[i_t]
    head = ctx.est.model_.head
    was_training = head.training
    head.eval()
    device = next(head.parameters()).device
    in_s, in_t = (before_s, before_t) if adapted is None else adapted(i_s.tolist(), i_t.tolist())
    with torch.inference_mode():
        after_s, after_t = (head.features(f.to(device)).float().cpu() for f in (in_s, in_t))
    head.train(was_training)
    out: dict[str, Any] = {"a_distance_before": None, "a_distance_after": None}
    if min(len(i_s), len(i_t)) >= 2:
        out["a_distance_before"] = round(a_distance(before_s, before_t, seed=seed), 4)
        out["a_distance_after"] = round(a_distance(after_s, after_t, seed=seed), 4)
    out.update(n_source=len(i_s), n_target=len(i_t))
    ratio = getattr(ctx.est, "density_ratio_range_", None)  # the IWCV weights' range: equal ends mean no signal
    out["density_ratio_range"] = None if ratio is None else [round(float(v), 4) for v in ratio]
    if ctx.run_dir is not None:
        from ..evaluation.plots import plot_domain_features

        plot_domain_features(
            before_s,
            before_t,
            after_s,
            after_t,
            ctx.run_dir / "domain_features.png",
            source_labels=None if y_source is None else ctx.classes[y_source[i_s.numpy()]],
            a_distance_before=out["a_distance_before"],
            a_distance_after=out["a_distance_after"],
            seed=seed,
        )
    return out
