"""Any timm image model as a headless backbone (hub weights, a local checkpoint, or random init)."""

from __future__ import annotations

import functools
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .base import Backbone, Preprocessing

__all__ = ["create_timm_backbone", "from_timm_model", "is_timm_name", "load_state_dict_file", "timm_names"]


@functools.lru_cache(maxsize=1)
def _all_names() -> frozenset[str]:
    import timm

    return frozenset(timm.list_models())


def timm_names(pattern: str = "*", pretrained: bool = False) -> list[str]:
    import timm

    return list(timm.list_models(pattern, pretrained=pretrained))


def is_timm_name(name: str) -> bool:
    if name.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        return True
    return name.split(".")[0] in _all_names()


def from_timm_model(model: nn.Module, spec: dict[str, Any]) -> Backbone:
    """Wrap a timm model (classifier already removed with ``num_classes=0``) as a :class:`Backbone`."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    pre = Preprocessing(
        input_size=int(cfg["input_size"][-1]),
        mean=tuple(cfg["mean"]),  # type: ignore[arg-type]
        std=tuple(cfg["std"]),  # type: ignore[arg-type]
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
    )
    return Backbone(
        module=model,
        modality="image",
        feature_dim=int(model.num_features),
        spec=spec,
        preprocessing=pre,
        groups=_layer_groups(model),
    )


def _layer_groups(model: nn.Module) -> list[list[str]]:
    """Stem → stages → final layers, from timm's own ``group_matcher`` (coarse)."""
    matcher = getattr(model, "group_matcher", None)
    if matcher is None:
        return []
    from timm.models import group_parameters

    try:
        grouped = group_parameters(model, matcher(coarse=True))
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):  # a matcher that does not fit: one group
        return []
    return [list(names) for names in grouped.values()]


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely: safetensors, or a PyTorch file with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Weights file '{path}' does not exist. Give the path of a .safetensors or .pth file.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, zipfile.BadZipFile) as e:
        # pickled code objects are refused by weights_only; a damaged file fails to unpickle or unzip
        raise ConfigError(
            f"Could not read '{path}' as plain tensors ({type(e).__name__}: {e}). Graft loads only safetensors "
            "or weights-only PyTorch files; re-save it with `torch.save(model.state_dict(), ...)`."
        ) from None
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"'{path}' does not hold a state dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    bad_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or bad_shape:
        detail = (f"missing {len(missing)} tensors (e.g. {missing[:3]})" if missing else "") + (
            f" shape mismatches: {bad_shape[:3]}" if bad_shape else ""
        )
        raise ConfigError(
            f"Weights in '{source}' do not fit this architecture: {detail.strip()}. "
            "Check the model name matches the checkpoint."
        )
    model.load_state_dict({k: state[k] for k in own}, strict=True)


def create_timm_backbone(name: str, *, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """Build ``timm.create_model(name, num_classes=0)`` with weights from the hub, a file, or none.

    Args:
        name: timm model name (``resnet50``, ``hf-hub:timm/...``).
        pretrained: fetch timm's pretrained weights (needs internet or a filled Hugging Face cache).
        weights: local checkpoint; overrides ``pretrained``. Classifier tensors in it are ignored.
    """
    import timm

    use_hub = pretrained and weights is None
    try:
        model = timm.create_model(name, pretrained=use_hub, num_classes=0, **kwargs)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, ImportError) as e:
        # no network or cache (huggingface_hub's errors are OSErrors), an unknown name, bad keyword arguments
        if use_hub:
            raise ConfigError(
                f"Could not load pretrained weights for '{name}' ({type(e).__name__}: {str(e)[:200]}). "
                "Without internet, use a model whose weights are on this machine: the offline "
                "'efficientnet_lite0' (see `graft models`), `--weights FILE` with a local checkpoint, "
                "or a Hugging Face cache that holds it."
            ) from None
        raise ConfigError(f"timm could not build '{name}': {e}") from None
    if weights is not None:
        _load_into(model, load_state_dict_file(weights), weights)
    spec = {"source": "timm", "name": name, "kwargs": kwargs}
    return from_timm_model(model, spec)
