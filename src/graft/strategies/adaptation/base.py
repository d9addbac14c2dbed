"""The domain-adaptation strategy contract: a labelled source batch and an unlabelled target batch per step.

The fast path adapts on frozen-backbone embeddings (computed once and cached, for source and target): a
bottleneck (Linear → BatchNorm → ReLU) and the classifier train on the source loss plus ``trade_off`` times the
method's alignment loss between source and target bottleneck features (or target predictions). Each method is
one subclass in its own module; the shared loop, data pairing, validation signals and bundle are Graft's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ...training.plan import AdaptPhase, DeepAdaptPhase, Phase
from ..base import Criterion, Strategy

__all__ = ["AdaptationStrategy", "AdaptationModel"]


class AdaptationModel(nn.Module):
    """What the loop trains: the task head (with its bottleneck), the method's own modules (e.g. a domain
    discriminator) and, on the deep path, the backbone. Only ``backbone`` and ``head`` are kept after training.

    Inputs are frozen embeddings (fast path, ``backbone=None``) or backbone inputs (images ``(N, 3, H, W)``, token
    dicts); :meth:`embed` maps them to the head's input features ``(N, F)``.
    """

    def __init__(self, head: nn.Module, extra: nn.ModuleDict, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.head = head
        self.extra = extra
        self.backbone = backbone

    def embed(self, *xs: Any) -> list[torch.Tensor]:
        """Head-input features of each input batch. Image batches of one shape share one backbone pass."""
        if self.backbone is None:
            return list(xs)
        if all(isinstance(x, torch.Tensor) for x in xs) and len({tuple(x.shape[1:]) for x in xs}) == 1:
            out = self.backbone(torch.cat(xs))
            return list(out.split([len(x) for x in xs]))
        return [self.backbone(x) for x in xs]

    def forward(self, x: Any) -> torch.Tensor:
        return self.head(self.embed(x)[0])


class AdaptationStrategy(Strategy):
    """Base of unsupervised domain-adaptation strategies (``fit(source, y, target=unlabelled)``).

    Args:
        trade_off: weight of the adaptation loss against the source classification loss.
        bottleneck: width of the trainable feature layer between the frozen embeddings and the classifier.
        label_smoothing: source cross-entropy label smoothing.
        dropout: dropout before the classifier.
        deep: also train the backbone with the adaptation loss (slower; needs inputs, not fixed embeddings).
            The default adapts a bottleneck and classifier on frozen, cached embeddings; ``deep=True`` starts
            from that and then trains backbone and head together, the backbone at ``backbone_lr_scale`` x the
            head's learning rate (0.1, as in the Transfer-Learning-Library recipes).
    """

    adaptation: ClassVar[bool] = True
    supports_deep: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 30
    default_lr: ClassVar[float] = 1e-3
    #: the validation signal that picks the best epoch without target labels (see docs: importance-weighted
    #: source validation loss, IWCV, Sugiyama et al. 2007)
    monitor: ClassVar[str | None] = "val_iwcv_loss"

    #: on the deep path, the backbone's learning rate relative to the head's
    backbone_lr_scale: ClassVar[float] = 0.1

    def __init__(
        self,
        *,
        trade_off: float = 1.0,
        bottleneck: int = 256,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        deep: bool = False,
    ) -> None:
        self.trade_off = trade_off
        self.bottleneck = bottleneck
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.deep = deep

    def plan(self) -> list[Phase]:
        """Adapt on embeddings (named after the method); with ``deep``, that phase is named ``head`` and a deep
        phase named after the method follows (as fine-tuning warms its head up first)."""
        if not self.deep:
            return [AdaptPhase(self.name)]
        return [AdaptPhase("head", then_deep=True), DeepAdaptPhase(self.name)]

    def validate(self) -> None:
        super().validate()
        if self.deep and not self.supports_deep:
            raise ConfigError(f"{type(self).__name__} does not train a backbone: use deep=False.")
        if self.trade_off < 0:
            raise ConfigError(f"{type(self).__name__} trade_off must be >= 0; got {self.trade_off}.")
        if self.bottleneck < 1:
            raise ConfigError(f"{type(self).__name__} bottleneck must be >= 1; got {self.bottleneck}.")

    def trainable_at(self, epoch: int, n_groups: int) -> int:
        return n_groups if self.deep else 0

    def param_groups(
        self,
        groups: list[list[nn.Parameter]],
        head: list[nn.Parameter],
        lr: float,
        adapters: list[nn.Parameter] | None = None,
    ) -> list[dict[str, Any]]:
        params = [p for g in groups for p in g]
        return [{"params": params, "lr": lr * self.backbone_lr_scale}, {"params": head, "lr": lr}]

    # -- the method's own part -------------------------------------------------------------------------------
    def build(self, features: int, num_classes: int, total_steps: int) -> nn.ModuleDict:
        """Extra trainable modules of the method (e.g. a domain discriminator over ``features``-wide inputs)."""
        return nn.ModuleDict()

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        """The alignment term. Shape: f_s (N, F), f_t (M, F) bottleneck features; g_s (N, C), g_t (M, C) logits."""
        return f_s.new_zeros(())

    def after_training(self, head: nn.Module, target_features: torch.Tensor) -> None:
        """Post-training step on the target (e.g. AdaBN re-estimates BatchNorm statistics)."""

    # -- one step ----------------------------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Any, criterion: Criterion) -> dict[str, torch.Tensor]:
        """Source loss + ``trade_off`` x adaptation loss. ``batch`` is ``(x_s, y_s, x_t)``."""
        x_s, y_s, x_t = batch
        x_s, x_t = model.embed(x_s, x_t)
        head = model.head
        f = head.features(torch.cat([x_s, x_t]))  # one BatchNorm pass over both domains
        f_s, f_t = f[: len(x_s)], f[len(x_s) :]
        g_s = head.fc(head.dropout(f_s))
        g_t = head.fc(f_t)
        task = criterion(g_s, y_s)
        adapt = self.adaptation_loss(model.extra, f_s, f_t, g_s, g_t)
        return {"loss": task + self.trade_off * adapt, "logits": g_s, "adaptation_loss": adapt.detach()}
