"""MCC: minimum class confusion on unlabelled target predictions.

From temperature-scaled target probabilities ``P`` (N, C) and certainty weights ``W`` (``1 + exp(-H)``,
normalised to mean 1), the class confusion matrix ``M = P^T W P`` (C, C) is normalised column by column and
the loss is the mean over classes of the off-diagonal mass: low when predictions are confident *and* spread over
the classes, high (up to ``(C - 1) / C``) for uniform predictions and for predictions collapsed onto one class
(Jin et al., "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020). Modelled on
the Transfer-Learning-Library's ``tllib/self_training/mcc.py``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import register_strategy
from .base import AdaptationStrategy
from .entropy import entropy_weights

__all__ = ["MinimumClassConfusionLoss", "MCC"]


class MinimumClassConfusionLoss(nn.Module):
    """The MCC loss of target logits; add it (weight about 1) to the source classification loss.

    Args:
        temperature: the softmax temperature (the paper uses 2.5; > 1 softens over-confident predictions).

    Shape:
        g_t: (N, C) target logits; output: scalar in [0, (C - 1) / C].
    """

    def __init__(self, temperature: float = 2.5) -> None:
        super().__init__()
        if not math.isfinite(temperature) or temperature <= 0:
            raise ConfigError(f"MinimumClassConfusionLoss temperature must be > 0; got {temperature}.")
        self.temperature = float(temperature)

    def forward(self, g_t: torch.Tensor) -> torch.Tensor:
        if g_t.dim() != 2 or g_t.shape[0] < 1 or g_t.shape[1] < 1:
            raise ValueError(f"g_t must have shape (N, C) with N, C >= 1; got {tuple(g_t.shape)}.")
        n_classes = g_t.shape[1]
        p = F.softmax(g_t / self.temperature, dim=1)
        w = entropy_weights(p).unsqueeze(1)  # (N, 1), detached
        confusion = (p * w).t() @ p  # (C, C), symmetric
        confusion = confusion / confusion.sum(dim=0, keepdim=True).clamp_min(1e-12)
        return (confusion.sum() - confusion.trace()) / n_classes

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


@register_strategy
class MCC(AdaptationStrategy):
    """Minimum class confusion (Jin et al., ECCV 2020) on target predictions.

    Args:
        trade_off, bottleneck, label_smoothing, dropout: see :class:`AdaptationStrategy`.
        temperature: probability temperature of the confusion matrix.
    """

    name: ClassVar[str] = "mcc"

    def __init__(
        self,
        *,
        trade_off: float = 1.0,
        bottleneck: int = 256,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        deep: bool = False,
        temperature: float = 2.5,
    ) -> None:
        super().__init__(
            trade_off=trade_off, bottleneck=bottleneck, label_smoothing=label_smoothing, dropout=dropout, deep=deep
        )
        self.temperature = temperature

    def build(self, features: int, num_classes: int, total_steps: int) -> nn.ModuleDict:
        return nn.ModuleDict({"mcc": MinimumClassConfusionLoss(self.temperature)})

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        return extra["mcc"](g_t)
