"""What to predict: heads, losses and decoding per task."""

from __future__ import annotations

from .classification import ClassificationHead, TransferModel

__all__ = ["ClassificationHead", "TransferModel"]
