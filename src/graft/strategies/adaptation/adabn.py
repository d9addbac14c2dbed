"""AdaBN: re-estimate BatchNorm statistics on target data, leaving every weight as it is.

The domain is largely encoded in the BatchNorm statistics; replacing the source running means and variances
with target ones adapts a network without labels or gradient steps (Li et al., "Revisiting Batch Normalization
For Practical Domain Adaptation", ICLR 2017 workshop, arXiv:1603.04779, 2016).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...errors import ConfigError
from ...training.predict import device_of, to_device
from ..base import register_strategy
from .base import AdaptationStrategy

__all__ = ["adapt_batchnorm", "batchnorm_layers", "AdaBN", "SourceOnly"]


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer of ``model`` that keeps running statistics (``BatchNorm1d/2d/3d``, ``SyncBatchNorm``
    and subclasses such as timm's ``BatchNormAct2d``)."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def adapt_batchnorm(
    model: nn.Module,
    batches: Iterable[Any],
    device: torch.device | str | None = None,
    momentum: float | None = None,
) -> int:
    """Reset and re-estimate the running statistics of every BatchNorm layer on target batches (AdaBN).

    Only the BatchNorm layers run in training mode; every other module runs in eval mode (no dropout) and no
    gradient is computed, so no weight changes. With ``momentum=None`` the statistics are the cumulative average
    over all batches (each batch weighs the same). Afterwards every module's ``training`` flag and every BatchNorm
    layer's ``momentum`` are as before.

    Args:
        model: the network; called as ``model(inputs)``.
        batches: target inputs: tensors, dicts of tensors (text models), or ``(inputs, ...)`` tuples/lists whose
            first element is used (so a labelled ``DataLoader`` works too). Labels are never used.
        device: where to move the inputs; default: the device of the model's first parameter.
        momentum: ``None`` for the cumulative average, or an exponential-average momentum in (0, 1].

    Returns:
        The number of BatchNorm layers updated.

    Raises:
        ConfigError: if the model has no BatchNorm layer with running statistics, if ``momentum`` is out of
            range, or if ``batches`` is empty (in which case nothing was changed).
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise ConfigError(
            f"adapt_batchnorm needs a model with BatchNorm layers (tracking running statistics); "
            f"{type(model).__name__} has none."
        )
    if momentum is not None and not 0.0 < momentum <= 1.0:
        raise ConfigError(f"adapt_batchnorm momentum must be None or in (0, 1]; got {momentum}.")
    dev = torch.device(device) if device is not None else device_of(model)
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    n_batches = 0
    try:
        model.eval()
        for m in layers:
            m.train()
            m.momentum = momentum
        with torch.no_grad():
            for batch in batches:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                if n_batches == 0:
                    for m in layers:
                        m.reset_running_stats()
                model(to_device(inputs, dev))
                n_batches += 1
    finally:
        for m, mode in modes.items():
            m.training = mode
        for m, mom in momenta.items():
            m.momentum = mom
    if n_batches == 0:
        raise ConfigError("adapt_batchnorm got no batches; the BatchNorm statistics were left unchanged.")
    return len(layers)


@register_strategy
class SourceOnly(AdaptationStrategy):
    """The baseline every adaptation method is compared with: the same bottleneck and classifier, source loss only
    (the target is read, and used only for the unsupervised validation signal)."""

    name: ClassVar[str] = "source-only"


@register_strategy
class AdaBN(AdaptationStrategy):
    """Adaptive BatchNorm (Li et al., 2016): train on the source only, then re-estimate every BatchNorm layer's
    statistics on the target. No adaptation loss, no extra training."""

    name: ClassVar[str] = "adabn"
    supports_deep: ClassVar[bool] = False
    adapts_after_training: ClassVar[bool] = True

    def validate(self) -> None:
        if self.deep:
            raise ConfigError(
                "AdaBN trains nothing on the target (it re-estimates BatchNorm statistics): use deep=False."
            )
        super().validate()

    def after_training(self, head: nn.Module, target_features: torch.Tensor) -> None:
        adapt_batchnorm(head, [target_features[i : i + 256] for i in range(0, len(target_features), 256)])
