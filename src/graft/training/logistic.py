"""The logistic-regression head phase (:class:`~graft.training.plan.LogisticHeadPhase`): the linear head fitted by
scikit-learn's L-BFGS logistic regression on cached embeddings, its solution written into the head's layer."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConfigError
from .loop import LoopResult
from .plan import LogisticHeadPhase
from .run_files import write_metrics

if TYPE_CHECKING:
    from .phases import FitContext

__all__ = ["logistic_weights", "run_logistic_head"]


def logistic_weights(
    x: np.ndarray, y: np.ndarray, num_classes: int, c: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An L2-regularised logistic regression of ``y`` on ``x`` as the weight ``(C, F)`` and bias ``(C,)`` of a softmax
    layer with the same probabilities.

    Two classes: scikit-learn's one logit ``w x + b`` becomes the rows ``-(w, b) / 2`` and ``+(w, b) / 2`` (their
    softmax is ``sigmoid(w x + b)``). A class absent from ``y`` gets zero weights and a bias far below the others.

    Args:
        x: features ``(N, F)``.
        y: class indices ``(N,)`` in ``[0, num_classes)``, at least two distinct.
        num_classes: rows of the layer.
        c: inverse strength of the L2 penalty (scikit-learn's ``C``).
        seed: seeds the solver (deterministic for L-BFGS).
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weight = np.zeros((num_classes, x.shape[1]), np.float32)
    bias = np.full(num_classes, float(intercept.min()) - 30.0, np.float32)
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return weight, bias


def run_logistic_head(phase: LogisticHeadPhase, ctx: FitContext) -> LoopResult:
    """Fit the head's linear layer on the training embeddings (through the head's own input transform, e.g. L2
    normalisation); one history row with the training loss and, with a validation split, its metrics."""
    t0 = time.perf_counter()
    head = ctx.est.model_.head
    f_train, y_train, lengths = ctx.features("train")
    y = np.asarray(y_train)
    if lengths is not None or y.ndim != 1 or head.hidden is not None:
        raise ConfigError(
            "A logistic-regression head needs one label per example and a plain linear head (no bottleneck); "
            "use a head phase trained by AdamW for this task."
        )
    head.eval()
    device = head.fc.weight.device
    with torch.no_grad():
        x = head.features(f_train.float().to(device)).cpu().numpy()
    weight, bias = logistic_weights(x, y, head.num_classes, phase.c, seed=ctx.est.seed)
    with torch.no_grad():
        head.fc.weight.copy_(torch.from_numpy(weight))
        head.fc.bias.copy_(torch.from_numpy(bias))
        logits = head(f_train.float().to(device)).cpu()
    logs: dict[str, Any] = {"epoch": 1, "train_loss": float(ctx.task.criterion()(logits, torch.as_tensor(y)))}
    if ctx.val is not None:
        f_val, y_val, _ = ctx.features("val")
        with torch.no_grad():
            logs.update(ctx.task.epoch_metrics(head(f_val.float().to(device)).cpu(), y_val, ctx.classes))
    logs["seconds"] = round(time.perf_counter() - t0, 3)
    if ctx.run_dir is not None and int(os.environ.get("RANK", "0")) == 0:  # the main process writes
        write_metrics(ctx.run_dir, phase.name, [logs])
    ctx.hook(phase.name)(0, logs)
    best = {k: v for k, v in logs.items() if k.startswith(("val_", "train_loss"))}
    return LoopResult(history=[logs], best_epoch=1, best=best, seconds=time.perf_counter() - t0)
