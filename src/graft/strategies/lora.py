"""LoRA: low-rank adapters on a frozen backbone, through Hugging Face PEFT (Hu et al., ICLR 2022).

Each adapted weight ``W`` gets a trainable update ``(alpha / r) * B @ A`` of rank ``r``; the pretrained weights
stay frozen, so well under 2% of the parameters train. Targets are chosen per architecture: PEFT's own table
for ``transformers`` models (e.g. ``query``/``value`` for BERT, ``c_attn`` for GPT-2) extended to every
attention and feed-forward linear layer, and for timm image models every linear layer and every 1x1
convolution. When the model is saved the adapters are merged into the weights (``merge=True``, no PEFT
needed to load) or kept separate.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from ..errors import ConfigError
from .base import Strategy, register_strategy

__all__ = ["LoRA", "default_target_modules"]


def default_target_modules(module: nn.Module) -> list[str]:
    """Full names of the layers to adapt: linear layers and 1x1 stride-1 convolutions, minus any output head."""
    names = []
    for name, m in module.named_modules():
        if not name or any(k in part for part in name.split(".") for k in ("classifier", "lm_head", "pooler")):
            continue
        if (
            type(m) is nn.Linear
            or type(m).__name__ == "Conv1D"
            or (
                isinstance(m, nn.Conv2d)
                and m.kernel_size == (1, 1)
                and m.stride == (1, 1)
                and m.groups == 1
                and "Same" not in type(m).__name__
            )
        ):  # GPT-2's fused projections
            names.append(name)
    return names


@register_strategy
class LoRA(Strategy):
    """Train low-rank adapters and the head; the backbone's own weights stay frozen.

    Args:
        r: adapter rank.
        alpha: scaling numerator (update scaled by ``alpha / r``).
        dropout: dropout on the adapter input.
        target_modules: module names (or suffixes) to adapt; ``None`` picks per architecture.
        merge: merge adapters into the weights at the end of training (plain weights in the bundle).
        label_smoothing: cross-entropy label smoothing.

    Example:
        >>> graft.TextClassifier("bert-base-uncased", strategy=LoRA(r=16))  # doctest: +SKIP
    """

    name: ClassVar[str] = "lora"
    default_epochs: ClassVar[int] = 10
    default_lr: ClassVar[float] = 1e-3
    default_lrs: ClassVar[dict[str, float]] = {"image": 1e-3, "text": 5e-4}

    def __init__(
        self,
        *,
        r: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.05,
        target_modules: list[str] | None = None,
        merge: bool = True,
        label_smoothing: float = 0.0,
    ) -> None:
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules
        self.merge = merge
        self.label_smoothing = label_smoothing

    def validate(self) -> None:
        super().validate()
        if self.r < 1:
            raise ConfigError(f"LoRA r must be >= 1; got {self.r}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA dropout must be in [0, 1); got {self.dropout}.")

    def trainable_at(self, epoch: int, n_groups: int) -> int:
        return 0  # the pretrained weights never train; adapters do (see prepare)

    def prepare(self, module: nn.Module) -> list[nn.Parameter]:
        """Inject adapters into ``module`` in place; return the adapter parameters."""
        try:
            from peft import LoraConfig, LoraModel
        except ImportError:
            raise ConfigError("The 'lora' strategy needs PEFT: `pip install peft`.") from None
        target = module.model if hasattr(module, "model") and isinstance(module.model, nn.Module) else module
        targets = self.target_modules or default_target_modules(target)
        if not targets:
            raise ConfigError(
                f"LoRA found no linear or 1x1 conv layers in {type(target).__name__}; pass target_modules=[...]."
            )
        conv1d = any(type(m).__name__ == "Conv1D" for n, m in target.named_modules() if n in set(targets))
        config = LoraConfig(
            fan_in_fan_out=conv1d,  # GPT-2's Conv1D stores weights transposed
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            bias="none",
        )
        try:
            wrapper = LoraModel(target, config, "default")
        except ValueError as e:
            raise ConfigError(f"LoRA could not adapt {targets[:5]}: {e}") from None
        module.__dict__["_graft_lora"] = wrapper  # not a registered child: its weights are the module's own
        params = [p for n, p in target.named_parameters() if "lora_" in n]
        for n, p in target.named_parameters():
            p.requires_grad_("lora_" in n)
        return params

    def finalize(self, module: nn.Module) -> None:
        """Merge the adapters into the base weights (``merge=True``) and drop the PEFT wrappers."""
        wrapper = getattr(module, "_graft_lora", None)
        if wrapper is None or not self.merge:
            return
        merged = wrapper.merge_and_unload()
        if hasattr(module, "model") and isinstance(module.model, nn.Module):
            module.model = merged
        del module.__dict__["_graft_lora"]
        for p in module.parameters():
            p.requires_grad_(True)

    def restore(self, module: nn.Module) -> None:
        """Before loading a bundle saved with ``merge=False``: put the (empty) adapters back."""
        if not self.merge:
            self.prepare(module)

    def param_groups(
        self,
        groups: list[list[nn.Parameter]],
        head: list[nn.Parameter],
        lr: float,
        adapters: list[nn.Parameter] | None = None,
    ) -> list[dict[str, Any]]:
        return [{"params": head, "lr": lr}, {"params": list(adapters or []), "lr": lr}]
