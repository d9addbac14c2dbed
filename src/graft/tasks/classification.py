"""Single-label classification: a linear head on pooled backbone features, cross-entropy loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ClassificationHead", "TransferModel", "classification_loss"]


class ClassificationHead(nn.Module):
    """Dropout + linear layer, optionally after a bottleneck (Linear → BatchNorm → ReLU).

    The bottleneck gives domain adaptation a trainable feature space on top of a frozen backbone.
    Shape: features ``(N, in_features)`` → logits ``(N, num_classes)``; :meth:`features` returns the bottleneck
    output ``(N, hidden)`` (or the input when there is none).
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0, hidden: int | None = None) -> None:
        super().__init__()
        self.in_features, self.num_classes, self.dropout_p, self.hidden = in_features, num_classes, dropout, hidden
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = (
            nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()) if hidden else None
        )
        self.fc = nn.Linear(hidden or in_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(x) if self.bottleneck is not None else x

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(features)))

    def config(self) -> dict[str, Any]:
        return {
            "type": "linear" if self.hidden is None else "bottleneck",
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "dropout": self.dropout_p,
            "hidden": self.hidden,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ClassificationHead:
        hidden = cfg.get("hidden")
        return cls(
            int(cfg["in_features"]),
            int(cfg["num_classes"]),
            float(cfg.get("dropout", 0.0)),
            None if hidden is None else int(hidden),
        )


class TransferModel(nn.Module):
    """A pretrained backbone with a new task head: ``logits = head(backbone(x))``."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def classification_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy. Shape: logits ``(N, C)`` float, target ``(N,)`` int64 → scalar."""
    return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
