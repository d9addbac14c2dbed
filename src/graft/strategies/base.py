"""The strategy contract: how pretrained weights are reused, answered for the one training loop.

A strategy answers four questions (and nothing else):

0. Which phases train, in which order (:meth:`Strategy.plan`: plain :mod:`graft.training.plan` objects).
1. Which parameters train at a given epoch (:meth:`Strategy.trainable_at`).
2. Which parameter groups, at which learning rates (:meth:`Strategy.param_groups`).
3. What the loss of a step is (:meth:`Strategy.loss`; a dict that must contain ``"loss"``).

Its settings are typed: a keyword-only ``__init__`` that only stores its annotated arguments, so
``get_params``/``set_params``, cloning and config round-trips come free, as for scikit-learn estimators, and
:meth:`Strategy.validate` checks every value against its annotation. The settings the phases read are declared on
the base class with neutral defaults (``label_smoothing``, ``dropout``, ``tta``, ``freeze_bn``, ``optimizer``,
``bottleneck``, ``deep``, ``normalize``): the phases read attributes, never probe for them or compare names.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, did_you_mean
from ..training.plan import BackbonePhase, Phase

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Criterion", "Strategy", "register_strategy", "get_strategy", "list_strategies", "resolve_strategy"]


class Strategy:
    """Base class. Subclasses set ``name`` and are registered with :func:`register_strategy`."""

    name: ClassVar[str] = ""
    #: a domain-adaptation strategy: trains on labelled source and unlabelled target data
    adaptation: ClassVar[bool] = False
    #: ``deep=True`` is allowed (the backbone trains with the adaptation loss)
    supports_deep: ClassVar[bool] = False
    #: the views of each unlabelled target example that a deep phase's loss takes (``("weak", "strong")``:
    #: two augmentations, FixMatch style; ``("train",)``: the training augmentation)
    target_views: ClassVar[tuple[str, ...]] = ("train",)
    #: the estimator tasks it applies to (``text-classification``, ...); empty: every task
    tasks: ClassVar[tuple[str, ...]] = ()
    #: :meth:`after_training` changes the head (e.g. AdaBN's target statistics)
    adapts_after_training: ClassVar[bool] = False
    #: the validation metric that picks the best epoch, when the strategy decides it (``None``: the task's)
    monitor: ClassVar[str | None] = None
    default_epochs: ClassVar[int] = 10
    default_lr: ClassVar[float] = 1e-3
    default_lrs: ClassVar[dict[str, float]] = {}
    #: epochs of a deep adaptation phase when ``epochs`` is not given
    deep_epochs: ClassVar[int] = 5

    # -- settings the phases read; subclasses that take them as parameters set them in __init__ ---------------
    label_smoothing: float = 0.0
    dropout: float = 0.0
    tta: bool = False
    #: after a head warm-up, a backbone phase that ends worse on validation gives the warm-up's model back
    best_of_phases: bool = False
    freeze_bn: bool = False
    optimizer: str = "adamw"
    bottleneck: int | None = None
    deep: bool = False
    normalize: bool = False
    label_prompts: bool | None = None

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
        """Raise :class:`ConfigError` for invalid settings; called by ``fit`` before any work.

        The base checks every parameter against its annotation; subclasses add range checks after
        ``super().validate()``.
        """
        hints = typing.get_type_hints(type(self).__init__)
        for k in self._param_names():
            if k in hints and not _matches(getattr(self, k), hints[k]):
                raise ConfigError(
                    f"{type(self).__name__} {k} must be {_type_name(hints[k])}; got {getattr(self, k)!r} "
                    f"({type(getattr(self, k)).__name__})."
                )
        # the shared settings torch would refuse deep inside training
        for k in ("dropout", "label_smoothing"):
            value = getattr(self, k)
            if isinstance(value, (int, float)) and not 0.0 <= value < 1.0:
                raise ConfigError(f"{type(self).__name__} {k} must be in [0, 1); got {value}.")

    # -- the plan ----------------------------------------------------------------------------------------------
    def plan(self) -> list[Phase]:
        """The training phases, in order (default: one phase that trains the backbone with the head)."""
        return [BackbonePhase(self.name)]

    def prompt_examples(self, classes: Sequence[Any]) -> list[tuple[str, int]]:
        """Labelled examples the strategy writes from the class names, ``(text, class index)``, trained on beside
        the data (the few-shot strategy's label prompts); none by default."""
        return []

    @property
    def frozen_backbone(self) -> bool:
        """Whether the fitted model is the pretrained backbone, unchanged, plus a head."""
        return not any(p.trains_backbone for p in self.plan())

    # -- the three questions -------------------------------------------------------------------------
    def trainable_at(self, epoch: int, n_groups: int) -> int:
        """How many backbone layer groups, counted from the top, train in ``epoch`` (0-based).

        ``0`` freezes the backbone; ``n_groups`` trains all of it. Must be a pure function of the epoch so a
        resumed run gets the same state back.
        """
        return n_groups

    def set_trainable(self, groups: list[list[nn.Parameter]], epoch: int) -> None:
        """Let the top :meth:`trainable_at` ``(epoch)`` layer groups train and freeze the rest."""
        k = self.trainable_at(epoch, len(groups))
        for i, params in enumerate(groups):
            for p in params:
                p.requires_grad_(i >= len(groups) - k)

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


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (ints pass as floats; bools never pass as numbers)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "None"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(hint, str(hint))


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


def list_strategies(adaptation: bool | None = None, task: str | None = None) -> list[str]:
    """Registered strategy names; ``adaptation=True`` keeps the domain-adaptation methods of the adaptation loop
    (``dann``, ``coral``, ...), ``False`` the supervised ones (no target data; importance weighting is in neither).
    ``task`` (an estimator's, e.g. ``image-classification``) leaves out the strategies made for other tasks only
    (``few-shot`` is for ``text-classification``)."""

    def keep(cls: type[Strategy]) -> bool:
        if task is not None and cls.tasks and task not in cls.tasks:
            return False
        if adaptation is None:
            return True
        if adaptation:
            return cls.adaptation
        return not cls.adaptation and not any(p.needs_target for p in cls().plan())

    return sorted(n for n, cls in _STRATEGIES.items() if keep(cls))


def get_strategy(name: str) -> type[Strategy]:
    key = name.lower().replace("_", "-")
    aliases = {
        "finetune": "fine-tune",
        "fe": "feature-extraction",
        "linear-probe": "feature-extraction",
        "fewshot": "few-shot",
        "setfit": "few-shot",
    }
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
