"""Gradient reversal: the identity going forward, ``-coeff`` times the gradient going back.

Placed between a feature extractor and a domain discriminator, one backward pass trains the discriminator to
tell the domains apart and the features to confuse it (Ganin & Lempitsky, "Unsupervised Domain Adaptation by
Backpropagation", ICML 2015; Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016).
:class:`WarmStartGradientReverseLayer` ramps the coefficient up with the DANN schedule so the noisy
discriminator of the first steps does not disturb the features.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.autograd import Function

from ...errors import ConfigError

__all__ = ["GradientReverseFunction", "GradientReverseLayer", "WarmStartGradientReverseLayer", "grad_reverse"]


class GradientReverseFunction(Function):
    """``y = x`` forward; ``dL/dx = -coeff * dL/dy`` backward. Use through :func:`grad_reverse`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
        ctx.coeff = float(coeff)
        return x * 1.0

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity on ``x`` whose gradient is multiplied by ``-coeff``.

    Shape:
        x: any; output: same as ``x``.
    """
    return GradientReverseFunction.apply(x, coeff)


class GradientReverseLayer(nn.Module):
    """A gradient reversal layer with a fixed coefficient.

    Args:
        coeff: the factor the reversed gradient is scaled by (``0`` blocks the gradient, ``1`` reverses it).

    Shape:
        input: any; output: same as the input.
    """

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(coeff) or coeff < 0:
            raise ConfigError(f"GradientReverseLayer coeff must be a finite number >= 0; got {coeff}.")
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


class WarmStartGradientReverseLayer(nn.Module):
    """A gradient reversal layer whose coefficient rises from ``lo`` to ``hi`` (DANN schedule).

    At iteration ``i`` the coefficient is ``2 (hi - lo) / (1 + exp(-alpha i / max_iters)) - (hi - lo) + lo``:
    ``lo`` at ``i = 0``, about ``hi`` once ``i`` is a few times ``max_iters / alpha`` (Ganin & Lempitsky 2015
    use ``alpha = 10`` with ``i / max_iters`` the training progress in [0, 1]).

    The iteration count is part of the ``state_dict`` (as extra state), so a resumed run continues the schedule.

    Args:
        alpha: steepness of the ramp.
        lo: the coefficient at the first step.
        hi: the coefficient the ramp approaches.
        max_iters: the number of iterations that the progress ``i / max_iters`` is measured against.
        auto_step: advance one iteration per forward pass in training mode (``module.train()``); otherwise call
            :meth:`step` yourself.

    Shape:
        input: any; output: same as the input.
    """

    def __init__(
        self, alpha: float = 10.0, lo: float = 0.0, hi: float = 1.0, max_iters: int = 1000, auto_step: bool = True
    ) -> None:
        super().__init__()
        if not math.isfinite(alpha) or alpha <= 0:
            raise ConfigError(f"WarmStartGradientReverseLayer alpha must be > 0; got {alpha}.")
        if not (math.isfinite(lo) and math.isfinite(hi)) or not 0 <= lo <= hi:
            raise ConfigError(f"WarmStartGradientReverseLayer needs 0 <= lo <= hi; got lo={lo}, hi={hi}.")
        if int(max_iters) < 1:
            raise ConfigError(f"WarmStartGradientReverseLayer max_iters must be >= 1; got {max_iters}.")
        self.alpha = float(alpha)
        self.lo = float(lo)
        self.hi = float(hi)
        self.max_iters = int(max_iters)
        self.auto_step = auto_step
        self.iter_num = 0

    @property
    def coeff(self) -> float:
        """The coefficient the next forward pass uses."""
        span = self.hi - self.lo
        return 2.0 * span / (1.0 + math.exp(-self.alpha * self.iter_num / self.max_iters)) - span + self.lo

    def step(self) -> None:
        """Advance the schedule by one iteration."""
        self.iter_num += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coeff = self.coeff
        if self.auto_step and self.training:
            self.step()
        return grad_reverse(x, coeff)

    def get_extra_state(self) -> dict[str, int]:
        return {"iter_num": self.iter_num}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.iter_num = int(state["iter_num"])

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, lo={self.lo}, hi={self.hi}, max_iters={self.max_iters}, "
            f"auto_step={self.auto_step}, iter_num={self.iter_num}"
        )
