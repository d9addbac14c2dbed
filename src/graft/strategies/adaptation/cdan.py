"""CDAN: domain-adversarial training conditioned on the classifier's predictions.

The discriminator sees the multilinear map ``f ⊗ softmax(g)`` of features and predictions (their outer product,
flattened), so it can align the class-conditional distributions, not only the marginals; for wide features a
randomized multilinear map ``(f R_f) ⊙ (softmax(g) R_g) / sqrt(d)`` approximates it in ``d`` dimensions.
With entropy conditioning (CDAN+E) confident samples weigh more: ``w = 1 + exp(-H(p))``, normalised to mean 1
within each domain (Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS 2018). Modelled on the
Transfer-Learning-Library's ``tllib/alignment/cdan.py``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import register_strategy
from ._common import check_pair, check_reduction
from .base import AdaptationStrategy
from .dann import DomainDiscriminator, domain_bce
from .entropy import entropy_weights
from .grl import WarmStartGradientReverseLayer

__all__ = ["ConditionalDomainAdversarialLoss", "MultiLinearMap", "RandomizedMultiLinearMap", "CDAN"]


class MultiLinearMap(nn.Module):
    """The flattened outer product of features and class probabilities.

    Shape:
        f: (N, F); g: (N, C); output: (N, F * C), laid out class-major (``out[:, c * F + i] = g[:, c] f[:, i]``).
    """

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)


class RandomizedMultiLinearMap(nn.Module):
    """``(f R_f) ⊙ (g R_g) / sqrt(output_dim)`` with fixed Gaussian ``R_f``, ``R_g``; its inner products are
    unbiased estimates of those of :class:`MultiLinearMap`.

    The random matrices are buffers: they follow ``.to(device)`` and are saved in the ``state_dict``.

    Args:
        features_dim: ``F``.
        num_classes: ``C``.
        output_dim: ``d``.

    Shape:
        f: (N, F); g: (N, C); output: (N, d).
    """

    def __init__(self, features_dim: int, num_classes: int, output_dim: int = 1024) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.register_buffer("Rf", torch.randn(features_dim, output_dim))
        self.register_buffer("Rg", torch.randn(num_classes, output_dim))

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (f @ self.Rf.to(f.dtype)) * (g @ self.Rg.to(g.dtype)) / math.sqrt(self.output_dim)

    def extra_repr(self) -> str:
        return f"features_dim={self.Rf.shape[0]}, num_classes={self.Rg.shape[0]}, output_dim={self.output_dim}"


class ConditionalDomainAdversarialLoss(nn.Module):
    """The CDAN (or CDAN+E) loss.

    The discriminator's input width is ``features_dim * num_classes``, or ``randomized_dim`` with
    ``randomized=True`` (advised once ``F * C`` exceeds a few thousand). The predictions are detached: the
    classifier is trained through the features only, as in the paper's code.

    Args:
        discriminator: maps the (randomized) multilinear map to ``(N, 1)`` domain logits.
        entropy_conditioning: weight samples by ``1 + exp(-H(p))`` (CDAN+E), normalised to mean 1 per domain.
        randomized: use :class:`RandomizedMultiLinearMap` (needs ``num_classes`` and ``features_dim``).
        num_classes: ``C``; checked against the logits when given.
        features_dim: ``F``; checked against the features when given.
        randomized_dim: the output width of the randomized map.
        grl: the gradient reversal module; ``None`` uses :class:`WarmStartGradientReverseLayer` with
            ``alpha=1, lo=0, hi=1, max_iters=1000, auto_step=True``.
        reduction: ``"mean"`` (per-domain means, averaged), ``"sum"`` or ``"none"``.

    Attributes:
        domain_accuracy: the discriminator's accuracy in the last call (mean over the two domains), a float.

    Shape:
        g_s: (N_s, C) source logits; f_s: (N_s, F) source features; g_t: (N_t, C); f_t: (N_t, F);
        output: scalar, or (N_s + N_t,) with ``reduction="none"``.
    """

    def __init__(
        self,
        discriminator: nn.Module,
        entropy_conditioning: bool = False,
        randomized: bool = False,
        num_classes: int | None = None,
        features_dim: int | None = None,
        randomized_dim: int = 1024,
        grl: nn.Module | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("features_dim", features_dim)):
            if value is not None and value < 1:
                raise ConfigError(f"ConditionalDomainAdversarialLoss {name} must be >= 1; got {value}.")
        if randomized:
            if num_classes is None or features_dim is None:
                raise ConfigError(
                    "ConditionalDomainAdversarialLoss(randomized=True) needs num_classes and features_dim."
                )
            if randomized_dim < 1:
                raise ConfigError(f"randomized_dim must be >= 1; got {randomized_dim}.")
            self.map: nn.Module = RandomizedMultiLinearMap(features_dim, num_classes, randomized_dim)
        else:
            self.map = MultiLinearMap()
        self.discriminator = discriminator
        self.grl = (
            WarmStartGradientReverseLayer(alpha=1.0, lo=0.0, hi=1.0, max_iters=1000, auto_step=True)
            if grl is None
            else grl
        )
        self.entropy_conditioning = entropy_conditioning
        self.randomized = randomized
        self.num_classes = num_classes
        self.features_dim = features_dim
        self.reduction = check_reduction(reduction)
        self.domain_accuracy: float = float("nan")

    def forward(self, g_s: torch.Tensor, f_s: torch.Tensor, g_t: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        check_pair(f_s, f_t)
        check_pair(g_s, g_t, names=("g_s", "g_t"))
        if g_s.shape[0] != f_s.shape[0] or g_t.shape[0] != f_t.shape[0]:
            raise ValueError(
                f"logits and features must have the same number of rows; got g_s {tuple(g_s.shape)}, "
                f"f_s {tuple(f_s.shape)}, g_t {tuple(g_t.shape)}, f_t {tuple(f_t.shape)}."
            )
        if self.num_classes is not None and g_s.shape[1] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} classes in the logits; got {g_s.shape[1]}.")
        if self.features_dim is not None and f_s.shape[1] != self.features_dim:
            raise ValueError(f"expected features of width {self.features_dim}; got {f_s.shape[1]}.")
        n_s = f_s.shape[0]
        f = torch.cat([f_s, f_t], dim=0)
        p = F.softmax(torch.cat([g_s, g_t], dim=0), dim=1).detach()
        d = self.discriminator(self.grl(self.map(f, p)))
        if d.numel() != f.shape[0]:
            raise ValueError(f"the discriminator must give one logit per sample; got shape {tuple(d.shape)}.")
        w_s = w_t = None
        if self.entropy_conditioning:
            w_s, w_t = entropy_weights(p[:n_s]), entropy_weights(p[n_s:])
        loss, self.domain_accuracy = domain_bce(d, n_s, w_s, w_t, self.reduction)
        return loss

    def extra_repr(self) -> str:
        return (
            f"entropy_conditioning={self.entropy_conditioning}, randomized={self.randomized}, "
            f"reduction={self.reduction!r}"
        )


@register_strategy
class CDAN(AdaptationStrategy):
    """Conditional domain-adversarial training with entropy conditioning, CDAN+E (Long et al., NeurIPS 2018): the
    discriminator sees features x predictions (a randomized multilinear map when that is wider than 4096).

    Args:
        trade_off, bottleneck, label_smoothing, dropout: see :class:`AdaptationStrategy`.
        entropy_conditioning: weight examples by prediction certainty (the "+E").
        hidden: width of the discriminator's hidden layers.
    """

    name: ClassVar[str] = "cdan"

    def __init__(
        self,
        *,
        trade_off: float = 1.0,
        bottleneck: int = 256,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        deep: bool = False,
        entropy_conditioning: bool = True,
        hidden: int = 256,
    ) -> None:
        super().__init__(
            trade_off=trade_off, bottleneck=bottleneck, label_smoothing=label_smoothing, dropout=dropout, deep=deep
        )
        self.entropy_conditioning = entropy_conditioning
        self.hidden = hidden

    def build(self, features: int, num_classes: int, total_steps: int) -> nn.ModuleDict:
        randomized = features * num_classes > 4096
        width = 1024 if randomized else features * num_classes
        grl = WarmStartGradientReverseLayer(alpha=10.0, lo=0.0, hi=1.0, max_iters=max(1, total_steps), auto_step=True)
        loss = ConditionalDomainAdversarialLoss(
            DomainDiscriminator(width, self.hidden),
            entropy_conditioning=self.entropy_conditioning,
            randomized=randomized,
            num_classes=num_classes,
            features_dim=features,
            randomized_dim=1024,
            grl=grl,
        )
        return nn.ModuleDict({"adv": loss})

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        return extra["adv"](g_s, f_s, g_t, f_t)
