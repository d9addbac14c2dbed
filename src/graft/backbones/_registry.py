"""Backbone registry: named sources of pretrained networks, listed with fnmatch like ``timm.list_models``."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, did_you_mean
from .base import Backbone

__all__ = ["BackboneEntry", "register_backbone", "list_backbones", "get_entry", "create_backbone"]

BackboneFactory = Callable[..., Backbone]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    factory: BackboneFactory
    modality: str
    description: str
    offline: Callable[[], bool]  # True when the weights are on this machine


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(
    name: str,
    factory: BackboneFactory,
    *,
    modality: str,
    description: str,
    offline: Callable[[], bool] = lambda: False,
) -> BackboneEntry:
    """Register a named backbone. Names are lower-case and unique.

    Example:
        >>> register_backbone("my_net", build_my_net, modality="image", description="...")  # doctest: +SKIP
    """
    if not _NAME.match(name):
        raise ValueError(f"backbone names are lower-case ([a-z0-9_.-]); got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} is already registered")
    entry = BackboneEntry(name, factory, modality, description, offline)
    _REGISTRY[name] = entry
    return entry


def list_backbones(pattern: str = "*", modality: str | None = None) -> list[BackboneEntry]:
    """Registered backbones whose name matches ``pattern`` (fnmatch), sorted by name."""
    _ensure_builtins()
    return [
        e
        for n, e in sorted(_REGISTRY.items())
        if fnmatch.fnmatch(n, pattern) and (modality is None or e.modality == modality)
    ]


def get_entry(name: str) -> BackboneEntry | None:
    _ensure_builtins()
    return _REGISTRY.get(name)


def create_backbone(
    name: str, *, modality: str = "image", pretrained: bool = True, weights: str | None = None, **kwargs: Any
) -> Backbone:
    """Build a headless backbone by name.

    Lookup order: a registered name (the offline embedded models); for images ``timm:NAME`` or any timm
    architecture (``hf-hub:`` ids included); for text any Hugging Face model id or local folder.

    Args:
        name: registered name, timm model name, or ``hf-hub:org/repo``.
        modality: the task's modality; used to pick the source and in error messages.
        pretrained: load pretrained weights (``False`` builds the architecture with random weights).
        weights: path to a local checkpoint (safetensors, or a PyTorch file loaded with ``weights_only``).

    Raises:
        ConfigError: unknown name, or pretrained weights that cannot be had offline.
    """
    entry = get_entry(name)
    if entry is not None:
        if entry.modality != modality:
            raise ConfigError(
                f"backbone '{name}' is {_article(entry.modality)} {entry.modality} model; this task needs "
                f"{_article(modality)} {modality} model."
            )
        return entry.factory(pretrained=pretrained, weights=weights, **kwargs)
    if modality == "image":
        from .timm import create_timm_backbone, is_timm_name

        timm_name = name.removeprefix("timm:")
        if is_timm_name(timm_name):
            return create_timm_backbone(timm_name, pretrained=pretrained, weights=weights, **kwargs)
        from .timm import timm_names

        options = [e.name for e in list_backbones(modality="image")] + timm_names()
        raise ConfigError(
            f"Unknown image backbone '{name}'.{did_you_mean(timm_name, options)} "
            "Run `graft models` for the offline models, or `graft models '*resnet*' --all` for timm names."
        )
    if modality == "text":
        from .huggingface import create_hf_backbone

        return create_hf_backbone(name.removeprefix("hf:"), pretrained=pretrained, weights=weights, **kwargs)
    options = [e.name for e in list_backbones(modality=modality)]
    raise ConfigError(f"Unknown {modality} backbone '{name}'.{did_you_mean(name, options)} Run `graft models`.")


def backbone_rows(pattern: str = "*", with_timm: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """``graft models``: the registered backbones matching ``pattern`` as rows, and (``with_timm``) the timm names
    with pretrained weights that match it."""
    rows = [
        {"name": e.name, "modality": e.modality, "offline": e.offline(), "description": e.description}
        for e in list_backbones(pattern)
    ]
    timm_rows: list[str] = []
    if with_timm:
        from .timm import timm_names

        timm_rows = timm_names(pattern, pretrained=True)
    return rows, timm_rows


_BUILTINS_LOADED = False
#: modules whose import registers the built-in (embedded, offline) backbones, as plugins do
_BUILTIN_MODULES = ("graft.backbones.embedded", "graft.backbones.wordllama")


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        import importlib

        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
