"""Self-training with confidence-thresholded pseudo-labels (FixMatch style).

Confident predictions on a weakly augmented view of an unlabelled sample become hard labels for a strongly
augmented view of the same sample; samples below the threshold contribute nothing (Sohn et al., "FixMatch:
Simplifying Semi-Supervised Learning with Consistency and Confidence", NeurIPS 2020; Lee, "Pseudo-Label",
ICML 2013 workshops).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import register_strategy
from .base import AdaptationStrategy

__all__ = ["ConfidenceThresholdPseudoLabels", "pseudo_label_loss", "SelfTraining"]


def _check_threshold(threshold: float) -> float:
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"pseudo-label threshold must be in [0, 1]; got {threshold}.")
    return float(threshold)


class ConfidenceThresholdPseudoLabels(nn.Module):
    """Hard pseudo-labels and the mask of predictions whose top probability reaches ``threshold``.

    No gradient flows through the outputs.

    Args:
        threshold: the minimum top-class probability, in [0, 1].

    Shape:
        logits: (N, C); outputs: pseudo_labels (N,) int64 (the argmax, also for masked rows), mask (N,) bool.
    """

    def __init__(self, threshold: float = 0.9) -> None:
        super().__init__()
        self.threshold = _check_threshold(threshold)

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if logits.dim() != 2:
            raise ValueError(f"logits must have shape (N, C); got {tuple(logits.shape)}.")
        with torch.no_grad():
            confidence, labels = F.softmax(logits.detach().float(), dim=1).max(dim=1)
            return labels, confidence >= self.threshold

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


def pseudo_label_loss(
    logits_strong: torch.Tensor, logits_weak: torch.Tensor, threshold: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's unlabelled loss: cross-entropy of the strong view against the weak view's confident argmax.

    The loss is the mean over *all* N rows, masked rows counting 0 (as in FixMatch, so fewer confident samples
    mean a smaller loss, not a noisier one); no gradient flows through ``logits_weak``.

    Args:
        logits_strong: logits of the strongly augmented view (gradients flow here).
        logits_weak: logits of the weakly augmented view of the same samples.
        threshold: the minimum top-class probability of the weak view (FixMatch uses 0.95).

    Shape:
        logits_strong, logits_weak: (N, C); outputs: loss (scalar), mask_ratio (scalar, the share of rows used).
    """
    if logits_strong.shape != logits_weak.shape or logits_strong.dim() != 2:
        raise ValueError(
            f"logits_strong and logits_weak must both have shape (N, C); got {tuple(logits_strong.shape)} "
            f"and {tuple(logits_weak.shape)}."
        )
    labels, mask = ConfidenceThresholdPseudoLabels(threshold)(logits_weak)
    per_sample = F.cross_entropy(logits_strong, labels, reduction="none")
    loss = torch.where(mask, per_sample, torch.zeros_like(per_sample)).mean()
    return loss, mask.float().mean()


@register_strategy
class SelfTraining(AdaptationStrategy):
    """Confidence-thresholded pseudo-labels on the target, FixMatch-style (Sohn et al., NeurIPS 2020): the weak
    view's confident predictions teach a strong view. On embeddings the strong view is the same vector with
    feature dropout and Gaussian noise.

    Args:
        trade_off, bottleneck, label_smoothing, dropout: see :class:`AdaptationStrategy`.
        threshold: minimum predicted probability for a pseudo-label.
        noise: standard deviation of the strong view's Gaussian noise, relative to the features' spread.
    """

    name: ClassVar[str] = "self-training"

    def __init__(
        self,
        *,
        trade_off: float = 1.0,
        bottleneck: int = 256,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        deep: bool = False,
        threshold: float = 0.9,
        noise: float = 0.3,
    ) -> None:
        super().__init__(
            trade_off=trade_off, bottleneck=bottleneck, label_smoothing=label_smoothing, dropout=dropout, deep=deep
        )
        self.threshold = threshold
        self.noise = noise

    def loss(self, model: nn.Module, batch: Any, criterion: Any) -> dict[str, torch.Tensor]:
        x_s, y_s, x_t = batch
        if isinstance(x_t, (list, tuple)):  # weak and strong augmented views of the target images (deep path)
            x_s, x_t, strong = model.embed(x_s, x_t[0], x_t[1])
        else:  # embeddings: the strong view is the weak one with feature dropout and noise
            x_s, x_t = model.embed(x_s, x_t)
            strong = torch.nn.functional.dropout(x_t, 0.2) + self.noise * x_t.std() * torch.randn_like(x_t)
        head = model.head
        f = head.features(torch.cat([x_s, x_t, strong]))
        n_s, n_t = len(x_s), len(x_t)
        g_s = head.fc(head.dropout(f[:n_s]))
        g_weak = head.fc(f[n_s : n_s + n_t]).detach()
        g_strong = head.fc(f[n_s + n_t :])
        adapt, _ = pseudo_label_loss(g_strong, g_weak, self.threshold)
        return {"loss": criterion(g_s, y_s) + self.trade_off * adapt, "logits": g_s, "adaptation_loss": adapt.detach()}
