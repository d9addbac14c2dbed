"""The :class:`Backbone` contract: a pretrained network with its head removed, plus how to feed it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Backbone", "Preprocessing"]


@dataclass(frozen=True)
class Preprocessing:
    """How raw images become the tensors a backbone was pretrained on (timm ``data_config`` terms)."""

    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    @property
    def resize_size(self) -> int:
        """Shortest side before the centre crop (224 / 0.875 = 256)."""
        return int(round(self.input_size / self.crop_pct))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(
            input_size=int(d["input_size"]),
            mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bicubic")),
            crop_pct=float(d.get("crop_pct", 0.875)),
        )

    def timm_config(self) -> dict[str, Any]:
        return {
            "input_size": (3, self.input_size, self.input_size),
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "crop_mode": "center",
        }


@dataclass
class Backbone:
    """A headless pretrained network.

    Attributes:
        module: maps a batch of inputs to pooled features of shape ``(N, feature_dim)``.
        modality: ``"image"`` or ``"text"``.
        feature_dim: size of the pooled feature vector.
        spec: JSON-able description that rebuilds the architecture without weights (stored in bundles).
        preprocessing: input preparation the weights expect (images).
        groups: parameter-name groups ordered from the input (stem) to the top; used for freezing
            and layer-wise learning-rate decay.
        pretrained_head: the original classifier, when the source has one (e.g. ImageNet 1000 classes);
            not part of the transfer model, kept only to check the weights are real.
        tokenizer: the text tokenizer (text backbones).
        config: the source's own architecture config, when it has one (a ``transformers`` config), saved in
            bundles so the architecture can be rebuilt without the original files.
    """

    module: nn.Module
    modality: str
    feature_dim: int
    spec: dict[str, Any]
    preprocessing: Preprocessing | None = None
    groups: list[list[str]] = field(default_factory=list)
    pretrained_head: nn.Module | None = None
    tokenizer: Any = None
    config: Any = None

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped from stem to top (one group holding everything when unknown)."""
        named = dict(self.module.named_parameters())
        if not self.groups:
            return [list(named.values())]
        seen: set[str] = set()
        out: list[list[nn.Parameter]] = []
        for names in self.groups:
            params = [named[n] for n in names if n in named and n not in seen]
            seen.update(names)
            if params:
                out.append(params)
        rest = [p for n, p in named.items() if n not in seen]
        if rest:  # parameters no matcher claimed go with the top group
            out[-1].extend(rest) if out else out.append(rest)
        return out

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)
