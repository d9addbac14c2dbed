"""The learning-rate range test (Smith 2017; fastai's ``lr_find``): train a throwaway copy of the model for ~100 steps
while the learning rate grows exponentially, record the smoothed loss, and suggest the rate where it falls fastest.

It trains what the strategy trains (the head on cached embeddings for feature extraction; backbone and head for
fine-tuning), on copies: the estimator's weights are not touched.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import TrainingError

__all__ = ["LRFinderResult", "lr_range_test", "range_test_on", "suggest_lr"]


@dataclass
class LRFinderResult:
    """Learning rates tried, the smoothed loss at each, and the suggestion."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggestion: float = float("nan")
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"suggestion": self.suggestion, "reason": self.reason, "lrs": self.lrs, "losses": self.losses}

    def plot(self, path: str | Path) -> Path:
        """The loss against the learning rate (log scale), the suggestion marked; written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .._utils import atomic_write_bytes

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed training loss")
        if math.isfinite(self.suggestion):
            ax.axvline(self.suggestion, color="tab:red", linestyle="--", label=f"suggested {self.suggestion:.2e}")
            ax.legend()
        ax.set_title("learning-rate range test")
        import io

        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(Path(path), buf.getvalue())
        return Path(path)


def suggest_lr(lrs: list[float], losses: list[float]) -> tuple[float, str]:
    """fastai's "valley": the longest stretch over which the smoothed loss keeps falling; the rate two thirds of the
    way down it (steep enough to learn fast, short of the minimum, where the loss is about to rise)."""
    n = len(losses)
    if n < 5:
        return float("nan"), "too few steps to suggest a learning rate"
    run = [1] * n  # the longest falling sequence ending at each step
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end, start = i, i - run[i]
    third = (end - start) / 3
    return float(lrs[max(0, min(n - 1, start + int(third) + int(third / 2)))]), "the valley of the loss curve"


def lr_range_test(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    dataset: Any,
    loss_fn: Any,
    *,
    batch_size: int,
    collate_fn: Any = None,
    start: float = 1e-7,
    end: float = 1.0,
    steps: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
    seed: int = 0,
    device: torch.device | None = None,
) -> LRFinderResult:
    """Run the range test on a deep copy of ``model`` (``params`` named from the original, mapped onto the copy).

    ``loss_fn(model, batch) -> scalar``; stops early once the smoothed loss exceeds ``diverge`` x its minimum.
    """
    ids = {id(p) for p in params}
    names = [n for n, p in model.named_parameters() if id(p) in ids]
    work = copy.deepcopy(model).to(device or "cpu").train()
    own = dict(work.named_parameters())
    trainable = [own[n] for n in names]
    for p in work.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    if not trainable:
        raise TrainingError("the strategy trains no parameters: nothing to find a learning rate for.")
    opt = torch.optim.AdamW(trainable, lr=start, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
        collate_fn=collate_fn,
        drop_last=len(dataset) > batch_size,
    )
    result = LRFinderResult()
    avg, best, step = 0.0, math.inf, 0
    factor = (end / start) ** (1 / max(1, steps - 1))
    while step < steps:
        for batch in loader:
            lr = start * factor**step
            for g in opt.param_groups:
                g["lr"] = lr
            loss = loss_fn(work, batch)
            if not torch.isfinite(loss):
                step = steps
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            avg = beta * avg + (1 - beta) * float(loss.detach())
            smooth = avg / (1 - beta ** (step + 1))
            result.lrs.append(lr)
            result.losses.append(smooth)
            best = min(best, smooth)
            step += 1
            if smooth > diverge * best or step >= steps:
                step = steps
                break
    result.suggestion, result.reason = suggest_lr(result.lrs, result.losses)
    return result


def range_test_on(est: Any, strategy: Any, task: Any, classes: np.ndarray, data: Any, **kw: Any) -> LRFinderResult:
    """The range test of what ``strategy`` trains, for ``est`` (backbone built) on its read training ``data``."""
    from ..tasks.classification import ClassificationHead, TransferModel

    head = ClassificationHead(est.backbone_.feature_dim, len(classes), dropout=strategy.dropout)
    criterion = task.criterion(strategy.label_smoothing)

    def loss_fn(m: torch.nn.Module, batch: Any) -> torch.Tensor:
        return criterion(m(batch[0]), batch[1])

    common = {"batch_size": est.batch_size, "seed": est.seed, **kw}
    if strategy.frozen_backbone:
        features, y, _ = est._head_features(data)
        dataset = TensorDataset(features, torch.as_tensor(y))
        return lr_range_test(head, list(head.parameters()), dataset, loss_fn, **common)
    model = TransferModel(est.backbone_.module, head)
    dataset = est._train_dataset(data)
    return lr_range_test(model, list(model.parameters()), dataset, loss_fn, collate_fn=est._collate_fn(), **common)
