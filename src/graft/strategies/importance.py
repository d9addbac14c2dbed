"""Importance weighting: fine-tune on source rows drawn in proportion to ``p_target(x) / p_source(x)``.

The classical answer to covariate shift (Shimodaira 2000): when the target population is a re-weighting of the
source one, training on importance-weighted source rows minimises the target risk. The density ratio is estimated
on the model's view of each row (tables: standardised numbers and one-hot categories; images and texts: the frozen
backbone's embeddings) by a domain classifier, kernel mean matching or KLIEP (:func:`graft.adapt.density_ratio`).
The effective number of source rows after weighting is reported (``importance_weights_``): when it collapses, the
populations barely overlap and no weighting can help.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ConfigError
from ..training.plan import HeadPhase, Phase, WeightedPhase
from .base import register_strategy
from .finetune import FineTune

__all__ = ["ImportanceWeighting", "KMM", "KLIEP"]


@register_strategy
class ImportanceWeighting(FineTune):
    """Fine-tuning on importance-weighted source rows; needs ``fit(..., target=UNLABELLED)``.

    Args:
        method: ``classifier`` (a domain classifier), ``kmm`` or ``kliep``.
        (the other arguments are :class:`FineTune`'s.)
    """

    name: ClassVar[str] = "importance-weighting"
    default_method: ClassVar[str] = "classifier"

    def __init__(
        self,
        *,
        method: str | None = None,
        head_warmup: bool = True,
        freeze_epochs: int = 0,
        gradual: bool = False,
        lr_decay: float | None = None,
        label_smoothing: float = 0.1,
        dropout: float = 0.1,
        freeze_bn: bool = True,
        optimizer: str = "adamw",
    ) -> None:
        super().__init__(
            head_warmup=head_warmup,
            freeze_epochs=freeze_epochs,
            gradual=gradual,
            lr_decay=lr_decay,
            label_smoothing=label_smoothing,
            dropout=dropout,
            freeze_bn=freeze_bn,
            optimizer=optimizer,
        )
        self.method = method

    def validate(self) -> None:
        super().validate()
        if self.method is not None and self.method not in ("classifier", "kmm", "kliep"):
            raise ConfigError(f"method must be classifier, kmm or kliep; got '{self.method}'.")

    def plan(self) -> list[Phase]:
        method = self.method or self.default_method
        return ([HeadPhase("head", warmup=True)] if self.head_warmup else []) + [
            WeightedPhase(self.name, method=method)
        ]


@register_strategy
class KMM(ImportanceWeighting):
    """Importance weighting by kernel mean matching (Huang et al., NIPS 2006)."""

    name: ClassVar[str] = "kmm"
    default_method: ClassVar[str] = "kmm"


@register_strategy
class KLIEP(ImportanceWeighting):
    """Importance weighting by KLIEP (Sugiyama et al., NIPS 2007)."""

    name: ClassVar[str] = "kliep"
    default_method: ClassVar[str] = "kliep"
