"""Prediction entropy: a per-sample uncertainty, a loss, and the certainty weights of CDAN and MCC.

Minimising the entropy of predictions on unlabelled data pushes decision boundaries away from dense regions
(Grandvalet & Bengio, "Semi-supervised Learning by Entropy Minimization", NeurIPS 2004); the mean target
entropy is also a label-free signal for model selection (Morerio et al., ICLR 2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_reduction

__all__ = ["entropy", "entropy_of_probs", "entropy_weights", "EntropyMinimizationLoss"]


def _check_logits(logits: torch.Tensor, name: str = "logits") -> None:
    if logits.dim() != 2 or logits.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, C); got {tuple(logits.shape)}.")


def entropy(logits: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
    """Per-sample entropy ``H(softmax(logits))`` in nats, computed stably from log-probabilities.

    Args:
        logits: unnormalised class scores.
        normalized: divide by ``log C`` so the result lies in [0, 1] (0 for a one-hot prediction, 1 for uniform).

    Shape:
        logits: (N, C); output: (N,).
    """
    _check_logits(logits)
    log_p = F.log_softmax(logits, dim=1)
    h = -(log_p.exp() * log_p).sum(dim=1)
    if normalized:
        c = logits.shape[1]
        h = h / math.log(c) if c > 1 else torch.zeros_like(h)
    return h


def entropy_of_probs(probs: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-sample entropy of probability vectors, ``-sum p log(p + eps)`` (as in CDAN's and MCC's code).

    Shape:
        probs: (N, C), rows summing to 1; output: (N,).
    """
    _check_logits(probs, "probs")
    return -(probs * torch.log(probs + eps)).sum(dim=1)


def entropy_weights(probs: torch.Tensor) -> torch.Tensor:
    """Certainty weights ``w = 1 + exp(-H(p))``, normalised to mean 1; no gradient flows through them.

    Confident predictions weigh up to twice as much as uniform ones (Long et al., CDAN+E, NeurIPS 2018; Jin et
    al., MCC, ECCV 2020).

    Shape:
        probs: (N, C); output: (N,), summing to N.
    """
    with torch.no_grad():
        w = 1.0 + torch.exp(-entropy_of_probs(probs))
        return w * (w.numel() / w.sum())


class EntropyMinimizationLoss(nn.Module):
    """Mean (or summed) prediction entropy of unlabelled logits (Grandvalet & Bengio 2004).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample entropies).
        normalized: divide by ``log C`` so values lie in [0, 1].

    Shape:
        logits: (N, C); output: scalar, or (N,) with ``reduction="none"``.
    """

    def __init__(self, reduction: str = "mean", normalized: bool = False) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.normalized = normalized

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        h = entropy(logits, normalized=self.normalized)
        if self.reduction == "mean":
            return h.mean()
        if self.reduction == "sum":
            return h.sum()
        return h

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, normalized={self.normalized}"
