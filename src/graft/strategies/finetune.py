"""Fine-tuning: new head, then the backbone trains too, with discriminative learning rates.

The head is first fitted on cached embeddings of the frozen backbone ("linear probe, then fine-tune",
Kumar et al., ICLR 2022: a trained head keeps early fine-tuning steps from distorting pretrained features).
Then backbone layer groups unfreeze (all at once, or one group per epoch from the top as in ULMFiT,
Howard & Ruder 2018), each group's learning rate being ``lr * lr_decay ** depth_from_top`` (layer-wise
learning-rate decay). While a group is frozen its BatchNorm layers stay in eval mode. The default decay is 0.7 for
image backbones (a few stages, ImageNet features already general) and 0.9 for text transformers (one group per
layer: 0.7 would leave the lowest of MiniLM's 8 groups at 6% of the head's LR; on CoNLL-2003 0.9 gained 2-3 F1).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from ..errors import ConfigError
from ..training.plan import BackbonePhase, HeadPhase, Phase
from .base import Strategy, register_strategy

__all__ = ["FineTune", "layerwise_groups"]


def layerwise_groups(
    groups: list[list[nn.Parameter]], head: list[nn.Parameter], lr: float, decay: float
) -> list[dict[str, Any]]:
    """Parameter groups with ``lr * decay**k`` for the k-th backbone group from the top; the head gets ``lr``."""
    out = [{"params": head, "lr": lr}]
    for k, params in enumerate(reversed(groups), start=1):
        out.append({"params": params, "lr": lr * decay**k})
    return out


@register_strategy
class FineTune(Strategy):
    """Warm the head up on frozen features, then fine-tune the backbone with layer-wise LR decay.

    Args:
        head_warmup: fit the head on cached embeddings before image epochs.
        freeze_epochs: image epochs (after warm-up) with the backbone still frozen.
        gradual: unfreeze one layer group per epoch from the top instead of all at once.
        lr_decay: per-group learning-rate multiplier from the top (1.0 = one LR for all); ``None`` takes the
            modality's default (``default_lr_decays``: 0.7 images, 0.9 text).
        label_smoothing: cross-entropy label smoothing.
        dropout: dropout before the head.
        freeze_bn: keep every BatchNorm layer's running statistics at their pretrained values (default, as
            Keras recommends for fine-tuning; on small datasets batch statistics are noisy and updating them
            cost 3-5 points on ants/bees). Set ``False`` for large datasets far from the pretraining domain.
        optimizer: ``adamw`` or ``sgd`` (Nesterov momentum; its updates scale with the gradient, so weights the
            task barely needs stay near their pretrained values).
        best_of_phases: when the backbone's best epoch scores worse on validation than the warm-up head, give back
            the warm-up head on the pretrained backbone (the run's best checkpoint across phases); without it such a
            run keeps the fine-tuned model and warns. ``--budget`` turns it on (a deadline can cut fine-tuning short).

    Example:
        >>> graft.ImageClassifier(strategy=FineTune(freeze_epochs=1, lr_decay=0.7))  # doctest: +SKIP
    """

    name: ClassVar[str] = "fine-tune"
    default_epochs: ClassVar[int] = 6
    default_lr: ClassVar[float] = 3e-4
    default_lrs: ClassVar[dict[str, float]] = {"image": 3e-4, "text": 1e-4, "tabular": 1e-3}
    default_lr_decay: ClassVar[float] = 0.7
    default_lr_decays: ClassVar[dict[str, float]] = {"image": 0.7, "text": 0.9}

    def __init__(
        self,
        *,
        head_warmup: bool = True,
        freeze_epochs: int = 0,
        gradual: bool = False,
        lr_decay: float | None = None,
        label_smoothing: float = 0.1,
        dropout: float = 0.1,
        freeze_bn: bool = True,
        optimizer: str = "adamw",
        best_of_phases: bool = False,
    ) -> None:
        self.head_warmup = head_warmup
        self.freeze_epochs = freeze_epochs
        self.gradual = gradual
        self.lr_decay = lr_decay
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.freeze_bn = freeze_bn
        self.optimizer = optimizer
        self.best_of_phases = best_of_phases

    def for_modality(self, modality: str) -> FineTune:
        if self.lr_decay is None:
            self.lr_decay = self.default_lr_decays.get(modality, self.default_lr_decay)
        return self

    def plan(self) -> list[Phase]:
        return ([HeadPhase("head", warmup=True)] if self.head_warmup else []) + [BackbonePhase(self.name)]

    def validate(self) -> None:
        super().validate()
        if self.lr_decay is not None and not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"FineTune lr_decay must be in (0, 1]; got {self.lr_decay}.")
        if self.freeze_epochs < 0:
            raise ConfigError(f"FineTune freeze_epochs must be >= 0; got {self.freeze_epochs}.")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"FineTune optimizer must be 'adamw' or 'sgd'; got '{self.optimizer}'.")

    def trainable_at(self, epoch: int, n_groups: int) -> int:
        self.validate()
        if epoch < self.freeze_epochs:
            return 0
        if self.gradual:
            return min(n_groups, epoch - self.freeze_epochs + 1)
        return n_groups

    def param_groups(
        self,
        groups: list[list[nn.Parameter]],
        head: list[nn.Parameter],
        lr: float,
        adapters: list[nn.Parameter] | None = None,
    ) -> list[dict[str, Any]]:
        self.validate()
        decay = self.default_lr_decay if self.lr_decay is None else self.lr_decay
        return layerwise_groups(groups, head, lr, decay)
