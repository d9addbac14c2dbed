"""The task contract: what a model predicts, independent of where its inputs come from.

A task owns the label space and its encoding, the loss, the per-epoch validation metrics that pick the best epoch,
the final metrics, the conversion of logits to probabilities and to predictions, and any decision state tuned after
training (e.g. per-label thresholds). Modalities (images, texts, token sequences, vectors) never see labels beyond
handing them over; estimators never compute a metric themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.special import expit, softmax

__all__ = ["Task", "Criterion", "label_key", "softmax_rows", "sigmoid", "random_split"]

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def label_key(v: Any) -> str:
    """The canonical string of a label (numpy scalars as their Python value), used to match labels across splits."""
    return str(v.item() if isinstance(v, np.generic) else v)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` (or ``(..., C)``) logits, float32 in, float64-accurate, float32 out."""
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1).astype(np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return expit(np.asarray(logits, dtype=np.float64)).astype(np.float32)


def random_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded, unstratified ``(train, validation)`` split of ``n`` rows; validation gets at least one row."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class Task:
    """Base class of tasks. Subclasses are stateless apart from what :meth:`calibrate` tunes (saved in bundles).

    Label arguments are the raw labels read from the data; ``y`` is their encoding (:meth:`encode`).
    """

    #: the name recorded in bundles
    name: ClassVar[str] = ""
    #: the validation metric that picks the best epoch
    monitor: ClassVar[str] = "val_accuracy"
    #: the headline metrics of training summaries
    summary_keys: ClassVar[tuple[str, ...]] = ("accuracy", "balanced_accuracy", "macro_f1")

    # -- labels ---------------------------------------------------------------------------------------------
    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "examples"
    ) -> np.ndarray:
        """The classes, after checking that the training labels support the task and validation uses only them
        (``noun`` names the examples in messages: ``images``, ``texts``, ``rows``)."""
        raise NotImplementedError

    def encode(self, labels: Sequence[Any], classes: np.ndarray, *, where: str) -> Any:
        """Encoded targets of ``labels``; a :class:`~graft.errors.DataError` names labels outside ``classes``."""
        raise NotImplementedError

    def split(
        self, labels: Sequence[Any], fraction: float, seed: int, *, noun: str = "examples"
    ) -> tuple[list[int], list[int]]:
        """A seeded ``(train, validation)`` split of row indices."""
        raise NotImplementedError

    # -- training ---------------------------------------------------------------------------------------------
    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        """The training loss ``(logits, targets) -> scalar``."""
        raise NotImplementedError

    def epoch_metrics(self, logits: Any, y: Any, classes: np.ndarray) -> dict[str, float]:
        """Validation metrics after an epoch: ``val_loss`` plus the monitored one (``logits`` as the model gives
        them: a tensor ``(N, C)``, or per-sequence arrays for token tasks)."""
        raise NotImplementedError

    def sample_weights(self, y: Any) -> np.ndarray | None:
        """How often each training example is drawn (``None``: uniformly, each once an epoch)."""
        return None

    def calibrate(self, logits: Any, y: Any) -> None:
        """Tune decision state on validation outputs after training (default: nothing to tune)."""

    # -- inference ----------------------------------------------------------------------------------------------
    def probabilities(self, logits: Any) -> Any:
        """Probabilities from logits."""
        raise NotImplementedError

    def predict(self, logits: Any, classes: np.ndarray) -> Any:
        """Predictions in label space."""
        raise NotImplementedError

    def metrics(self, logits: Any, y: Any, classes: np.ndarray) -> dict[str, Any]:
        """The full metrics of a labelled split."""
        raise NotImplementedError

    # -- persistence -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What :meth:`calibrate` tuned, JSON-ready (saved in ``graft.json``)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
