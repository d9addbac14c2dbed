"""Deep CORAL: align the second-order statistics (and optionally the means) of source and target features.

Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016 workshops: the loss
is ``||C_s - C_t||_F^2 / (4 d^2)`` with ``C`` the (unbiased) feature covariances and ``d`` the feature width.
The Transfer-Learning-Library's ``tllib/alignment/coral.py`` adds the squared difference of the means and
averages both terms over their entries, ``mean((mu_s - mu_t)^2) + mean((C_s - C_t)^2)``; that is the default
here (``include_mean=True``), and ``include_mean=False`` gives the paper's loss exactly (note the factor 1/4).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..base import register_strategy
from ._common import check_pair
from .base import AdaptationStrategy

__all__ = ["CorrelationAlignmentLoss", "covariance", "CORAL"]


def covariance(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean ``(1, F)`` and the unbiased covariance ``(F, F)`` of the rows of ``f`` ``(N, F)``, ``N >= 2``."""
    mean = f.mean(dim=0, keepdim=True)
    centred = f - mean
    return mean, centred.t() @ centred / (f.shape[0] - 1)


class CorrelationAlignmentLoss(nn.Module):
    """The (Deep) CORAL loss between source and target features.

    Args:
        include_mean: ``mean((mu_s - mu_t)^2) + mean((C_s - C_t)^2)`` as tllib (default); ``False`` for the
            paper's ``||C_s - C_t||_F^2 / (4 F^2)``, blind to a shift of the means.

    Shape:
        f_s: (N_s, F); f_t: (N_t, F), with N_s, N_t >= 2; output: scalar >= 0.
    """

    def __init__(self, include_mean: bool = True) -> None:
        super().__init__()
        self.include_mean = include_mean

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        check_pair(f_s, f_t, min_rows=2)
        mean_s, cov_s = covariance(f_s)
        mean_t, cov_t = covariance(f_t)
        cov_diff = (cov_s - cov_t).pow(2).mean()
        if not self.include_mean:
            return cov_diff / 4.0
        return (mean_s - mean_t).pow(2).mean() + cov_diff

    def extra_repr(self) -> str:
        return f"include_mean={self.include_mean}"


@register_strategy
class CORAL(AdaptationStrategy):
    """Deep CORAL (Sun & Saenko, ECCV-W 2016): align the means and covariances of the bottleneck features."""

    name: ClassVar[str] = "coral"

    def build(self, features: int, num_classes: int, total_steps: int) -> nn.ModuleDict:
        return nn.ModuleDict({"coral": CorrelationAlignmentLoss()})

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        return extra["coral"](f_s, f_t)
