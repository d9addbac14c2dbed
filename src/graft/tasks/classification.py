"""Single-label classification: a linear head on pooled backbone features, cross-entropy loss, the task's metrics."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import DataError
from .base import Criterion, Task, label_key, softmax_rows

__all__ = ["ClassificationHead", "TransferModel", "classification_loss", "SingleLabel"]


class ClassificationHead(nn.Module):
    """Dropout + linear layer, optionally after a bottleneck (Linear → BatchNorm → ReLU).

    The bottleneck gives domain adaptation a trainable feature space on top of a frozen backbone. ``normalize``
    scales each input to unit L2 norm first (heads on sentence embeddings tuned for cosine similarity).
    Shape: features ``(N, in_features)`` → logits ``(N, num_classes)``; :meth:`features` returns the bottleneck
    output ``(N, hidden)`` (or the, possibly normalised, input when there is none).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        dropout: float = 0.0,
        hidden: int | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.in_features, self.num_classes, self.dropout_p, self.hidden = in_features, num_classes, dropout, hidden
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = (
            nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()) if hidden else None
        )
        self.fc = nn.Linear(hidden or in_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = F.normalize(x, dim=-1)
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
            **({"normalize": True} if self.normalize else {}),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ClassificationHead:
        hidden = cfg.get("hidden")
        return cls(
            int(cfg["in_features"]),
            int(cfg["num_classes"]),
            float(cfg.get("dropout", 0.0)),
            None if hidden is None else int(hidden),
            normalize=bool(cfg.get("normalize", False)),
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


class SingleLabel(Task):
    """One class per example: softmax over the classes, cross-entropy, accuracy / balanced accuracy / macro-F1."""

    name: ClassVar[str] = "single-label"

    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "examples"
    ) -> np.ndarray:
        from ..data.labels import check_labels

        check_labels(
            [label_key(v) for v in train_labels],
            None if val_labels is None else [label_key(v) for v in val_labels],
            noun=noun,
        )
        return np.asarray(sorted(set(train_labels), key=lambda v: (str(type(v)), v)))

    def encode(self, labels: Sequence[Any], classes: np.ndarray, *, where: str) -> np.ndarray:
        index = {label_key(c): i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in labels if label_key(v) not in index})
        if unknown:
            raise DataError(
                f"{where} has labels the model was not trained on: {', '.join(unknown[:10])}. "
                f"Known labels: {', '.join(map(str, classes[:20]))}."
            )
        return np.asarray([index[label_key(v)] for v in labels], dtype=np.int64)

    def split(
        self, labels: Sequence[Any], fraction: float, seed: int, *, noun: str = "examples"
    ) -> tuple[list[int], list[int]]:
        from ..data.labels import stratified_split

        return stratified_split([label_key(v) for v in labels], fraction, seed, noun=noun)

    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        return functools.partial(classification_loss, label_smoothing=label_smoothing)

    def epoch_metrics(self, logits: torch.Tensor, y: Any, classes: np.ndarray) -> dict[str, float]:
        logits, y = torch.as_tensor(logits), torch.as_tensor(y)
        return {
            "val_loss": float(classification_loss(logits, y)),
            "val_accuracy": float((logits.argmax(1) == y).float().mean()),
        }

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax_rows(logits)

    def predict(self, logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return classes[np.asarray(logits).argmax(1)]

    def metrics(self, logits: np.ndarray, y: Any, classes: np.ndarray) -> dict[str, Any]:
        from ..evaluation.metrics import classification_metrics

        return classification_metrics(y, self.probabilities(logits), [str(c) for c in classes])
