"""Self-training with confidence-thresholded pseudo-labels (FixMatch style).

Confident predictions on a weakly augmented view of an unlabelled sample become hard labels for a strongly
augmented view of the same sample; samples below the threshold contribute nothing (Sohn et al., "FixMatch:
Simplifying Semi-Supervised Learning with Consistency and Confidence", NeurIPS 2020; Lee, "Pseudo-Label",
ICML 2013 workshops).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError

__all__ = ["ConfidenceThresholdPseudoLabels", "pseudo_label_loss"]


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
