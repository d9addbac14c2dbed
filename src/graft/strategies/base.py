"""The strategy contract: how pretrained weights are reused, answered for the one training loop.

A strategy answers three questions (and nothing else):

1. How to prepare the model: which parameters train at a given epoch (:meth:`Strategy.trainable_at`).
2. Which parameter groups, at which learning rates (:meth:`Strategy.param_groups`).
3. What the loss of a step is (:meth:`Strategy.loss`; a dict that must contain ``"loss"``).

Its keyword-only ``__init__`` only stores arguments, so ``get_params``/``set_params``, cloning and
config round-trips come free, as for scikit-learn estimators.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, did_you_mean

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Criterion", "Strategy", "register_strategy", "get_strategy", "list_strategies", "resolve_strategy"]


class Strategy:
    """Base class. Subclasses set ``name`` and are registered with :func:`register_strategy`."""

    name: ClassVar[str] = ""
    #: the head is fitted on embeddings computed once by the frozen backbone (no image epochs)
    features_only: ClassVar[bool] = False
    #: the head is first fitted on cached embeddings before image epochs (linear probe, then fine-tune)
    head_warmup: bool = False
    default_epochs: ClassVar[int] = 10
    default_lr: ClassVar[float] = 1e-3
    default_lrs: ClassVar[dict[str, float]] = {}
    label_smoothing: float = 0.0

    # -- scikit-learn style parameters -------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> Strategy:
        valid = self._param_names()
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter '{k}'.{did_you_mean(k, valid)} Valid: {', '.join(valid)}."
                )
            setattr(self, k, v)
        return self

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.get_params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    def validate(self) -> None:
        """Raise :class:`ConfigError` for invalid settings; called by ``fit`` before any work."""

    # -- the three questions -------------------------------------------------------------------------
    def trainable_at(self, epoch: int, n_groups: int) -> int:
        """How many backbone layer groups, counted from the top, train in ``epoch`` (0-based).

        ``0`` freezes the backbone; ``n_groups`` trains all of it. Must be a pure function of the epoch so a
        resumed run gets the same state back.
        """
        return n_groups

    def prepare(self, module: nn.Module) -> list[nn.Parameter]:
        """Change the backbone before training (e.g. inject adapters); return new trainable parameters."""
        return []

    def finalize(self, module: nn.Module) -> None:
        """After training (e.g. merge adapters into the weights)."""

    def restore(self, module: nn.Module) -> None:
        """Before a saved bundle's weights are loaded into a freshly built backbone."""

    def param_groups(
        self,
        groups: list[list[nn.Parameter]],
        head: list[nn.Parameter],
        lr: float,
        adapters: list[nn.Parameter] | None = None,
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups. ``groups`` are the backbone's, stem first; ``head`` the new head's."""
        params = [p for g in groups for p in g]
        return [{"params": params, "lr": lr}, {"params": head, "lr": lr}]

    def loss(self, model: nn.Module, batch: tuple[Any, torch.Tensor], criterion: Criterion) -> dict[str, torch.Tensor]:
        """One supervised step: ``{"loss": scalar, "logits": (N, C)}``.

        Args:
            model: the transfer model (backbone + head).
            batch: ``(inputs, targets)``; inputs are a tensor (images) or a dict of tensors (text).
            criterion: the task's loss, ``criterion(logits, targets) -> scalar`` (label smoothing included).
        """
        x, y = batch
        logits = model(x)
        return {"loss": criterion(logits, y), "logits": logits}

    def lr_for(self, modality: str) -> float:
        """Default base learning rate for a modality."""
        return self.default_lrs.get(modality, self.default_lr)

    def for_modality(self, modality: str) -> Strategy:
        """Fill the parameters left at ``None`` whose default depends on the modality (``image``, ``text``, ...).

        Called by the estimators on their own copy before training; returns ``self``.
        """
        return self


_STRATEGIES: dict[str, type[Strategy]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9\-]*$")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: register a strategy under its lower-case, unique ``name``."""
    if not _NAME.match(cls.name):
        raise ValueError(f"strategy names are lower-case with dashes; got {cls.name!r}")
    if cls.name in _STRATEGIES and _STRATEGIES[cls.name] is not cls:
        raise ValueError(f"strategy {cls.name!r} is already registered")
    _STRATEGIES[cls.name] = cls
    return cls


def list_strategies(adaptation: bool | None = None) -> list[str]:
    """Registered strategy names; ``adaptation=True``/``False`` keeps only domain-adaptation / supervised ones."""
    return sorted(
        n
        for n, cls in _STRATEGIES.items()
        if adaptation is None or bool(getattr(cls, "adaptation", False)) == adaptation
    )


def get_strategy(name: str) -> type[Strategy]:
    key = name.lower().replace("_", "-")
    aliases = {"finetune": "fine-tune", "fe": "feature-extraction", "linear-probe": "feature-extraction"}
    key = aliases.get(key, key)
    if key not in _STRATEGIES:
        raise ConfigError(
            f"Unknown strategy '{name}'.{did_you_mean(key, _STRATEGIES)} Available: {', '.join(list_strategies())}."
        )
    return _STRATEGIES[key]


def resolve_strategy(strategy: str | Strategy, **overrides: Any) -> Strategy:
    """A strategy object from a name or an instance (instances are copied, then overridden)."""
    if isinstance(strategy, Strategy):
        obj = type(strategy)(**strategy.get_params())
    elif isinstance(strategy, str):
        obj = get_strategy(strategy)()
    else:
        raise ConfigError(f"strategy must be a name or a graft.strategies.Strategy; got {type(strategy).__name__}")
    return obj.set_params(**overrides) if overrides else obj
