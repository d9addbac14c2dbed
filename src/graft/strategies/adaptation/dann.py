"""DANN: domain-adversarial training through a gradient reversal layer.

A domain discriminator learns to tell source features (label 1) from target features (label 0); the gradient
reversal layer in front of it makes the same backward pass push the feature extractor towards features the
discriminator cannot separate (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation",
ICML 2015; Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016). Modelled on the
Transfer-Learning-Library's ``tllib/alignment/dann.py``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import register_strategy
from ._common import check_pair, check_reduction, check_weights
from .base import AdaptationStrategy
from .grl import WarmStartGradientReverseLayer

__all__ = ["DomainDiscriminator", "DomainAdversarialLoss", "domain_bce", "DANN"]


class DomainDiscriminator(nn.Sequential):
    """An MLP giving one domain logit per sample (positive: source).

    ``n_layers`` blocks of Linear-ReLU-Dropout, then Linear to one logit. There is no BatchNorm (unlike
    tllib's): batch statistics of a mixed source/target batch leak the domain mix and fail for batches of one.

    Args:
        in_features: the width of the features it sees.
        hidden: the width of each hidden layer.
        n_layers: the number of hidden layers (``0``: a linear classifier).
        dropout: the dropout probability after each hidden layer.

    Shape:
        input: (N, in_features); output: (N, 1) logits.
    """

    def __init__(self, in_features: int, hidden: int = 1024, n_layers: int = 2, dropout: float = 0.5) -> None:
        if in_features < 1 or hidden < 1:
            raise ConfigError(f"DomainDiscriminator needs in_features, hidden >= 1; got {in_features}, {hidden}.")
        if n_layers < 0:
            raise ConfigError(f"DomainDiscriminator n_layers must be >= 0; got {n_layers}.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"DomainDiscriminator dropout must be in [0, 1); got {dropout}.")
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        super().__init__(*layers)
        self.in_features = in_features


def domain_bce(
    d: torch.Tensor,
    n_s: int,
    w_s: torch.Tensor | None = None,
    w_t: torch.Tensor | None = None,
    reduction: str = "mean",
) -> tuple[torch.Tensor, float]:
    """Binary cross-entropy of domain logits (first ``n_s`` rows source, label 1; the rest target, label 0).

    ``"mean"`` averages each domain separately and then the two (so both domains count equally whatever the
    batch sizes); ``"sum"`` adds all terms; ``"none"`` returns per-sample terms, source first.

    Shape:
        d: (N_s + N_t, 1) or (N_s + N_t,); w_s: (N_s,) or (N_s, 1); w_t: (N_t,) or (N_t, 1).

    Returns:
        The loss and the discriminator's accuracy (mean of the two domains' accuracies).
    """
    d = d.reshape(-1)
    n_t = d.numel() - n_s
    d_s, d_t = d[:n_s], d[n_s:]
    loss_s = F.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s), reduction="none")
    loss_t = F.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t), reduction="none")
    w_s, w_t = check_weights(w_s, n_s, "w_s"), check_weights(w_t, n_t, "w_t")
    if w_s is not None:
        loss_s = loss_s * w_s.to(loss_s)
    if w_t is not None:
        loss_t = loss_t * w_t.to(loss_t)
    with torch.no_grad():
        accuracy = 0.5 * ((d_s > 0).float().mean() + (d_t < 0).float().mean()).item()
    if reduction == "mean":
        return 0.5 * (loss_s.mean() + loss_t.mean()), accuracy
    if reduction == "sum":
        return loss_s.sum() + loss_t.sum(), accuracy
    return torch.cat([loss_s, loss_t]), accuracy


class DomainAdversarialLoss(nn.Module):
    """The DANN loss: domain classification of gradient-reversed features.

    Minimising it trains the discriminator to separate the domains while the reversed gradient trains the
    features to confuse it. Add it to the source classification loss (a trade-off weight of about 1 is usual).

    Args:
        discriminator: maps ``(N, F)`` features to ``(N, 1)`` domain logits (e.g. :class:`DomainDiscriminator`).
        grl: the gradient reversal module; ``None`` uses :class:`WarmStartGradientReverseLayer` with
            ``alpha=1, lo=0, hi=1, max_iters=1000, auto_step=True`` (tllib's default). Pass
            ``GradientReverseLayer(0.0)`` to train the discriminator alone, or ``nn.Identity()`` for a plain
            domain classifier.
        reduction: ``"mean"`` (per-domain means, averaged), ``"sum"`` or ``"none"`` (see :func:`domain_bce`).

    Attributes:
        domain_accuracy: the discriminator's accuracy in the last call (mean over the two domains), a float.

    Shape:
        f_s: (N_s, F); f_t: (N_t, F); w_s: (N_s,) optional source weights; w_t: (N_t,) optional target weights;
        output: scalar, or (N_s + N_t,) with ``reduction="none"``.
    """

    def __init__(self, discriminator: nn.Module, grl: nn.Module | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.discriminator = discriminator
        self.grl = (
            WarmStartGradientReverseLayer(alpha=1.0, lo=0.0, hi=1.0, max_iters=1000, auto_step=True)
            if grl is None
            else grl
        )
        self.reduction = check_reduction(reduction)
        self.domain_accuracy: float = float("nan")

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        w_s: torch.Tensor | None = None,
        w_t: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_pair(f_s, f_t)
        d = self.discriminator(self.grl(torch.cat([f_s, f_t], dim=0)))
        if d.numel() != f_s.shape[0] + f_t.shape[0]:
            raise ValueError(f"the discriminator must give one logit per sample; got shape {tuple(d.shape)}.")
        loss, self.domain_accuracy = domain_bce(d, f_s.shape[0], w_s, w_t, self.reduction)
        return loss

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


@register_strategy
class DANN(AdaptationStrategy):
    """Domain-adversarial training (Ganin & Lempitsky, ICML 2015): a domain discriminator on the bottleneck
    features, trained through a gradient reversal layer whose coefficient warms up from 0 to 1 over training.

    The discriminator has two hidden layers of ``hidden=1024`` units, the domain classifier of Ganin et al. (JMLR
    2016, x -> 1024 -> 1024 -> 1) and tllib's default. A narrower one (256) is a weaker adversary: on two moons
    rotated by 30-35 degrees (tests/adaptation/test_synthetic.py) its gain in target accuracy over source-only
    training ranged from -1 to +17 points over six seeds, against +2 to +22 with 1024 units (same budget).

    Args:
        trade_off, bottleneck, label_smoothing, dropout, deep: see :class:`AdaptationStrategy`.
        hidden: width of the discriminator's hidden layers.
    """

    name: ClassVar[str] = "dann"

    def __init__(
        self,
        *,
        trade_off: float = 1.0,
        bottleneck: int = 256,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        deep: bool = False,
        hidden: int = 1024,
    ) -> None:
        super().__init__(
            trade_off=trade_off, bottleneck=bottleneck, label_smoothing=label_smoothing, dropout=dropout, deep=deep
        )
        self.hidden = hidden

    def build(self, features: int, num_classes: int, total_steps: int) -> nn.ModuleDict:
        grl = WarmStartGradientReverseLayer(alpha=10.0, lo=0.0, hi=1.0, max_iters=max(1, total_steps), auto_step=True)
        return nn.ModuleDict({"adv": DomainAdversarialLoss(DomainDiscriminator(features, self.hidden), grl=grl)})

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        return extra["adv"](f_s, f_t)
