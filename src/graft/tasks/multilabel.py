"""Multi-label classification: any number of labels per example, one sigmoid per label, thresholds tuned for F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError
from .base import Criterion, Task, random_split, sigmoid

__all__ = ["MultiLabel"]

#: candidate thresholds of :meth:`MultiLabel.calibrate`
_GRID = np.linspace(0.05, 0.95, 19)


class MultiLabel(Task):
    """Labels are lists; targets a ``(N, C)`` 0/1 matrix; loss binary cross-entropy; each label's probability
    threshold is the one that maximises its F1 on the validation split (0.5 without one)."""

    name: ClassVar[str] = "multi-label"
    monitor: ClassVar[str] = "val_f1"
    summary_keys: ClassVar[tuple[str, ...]] = ("accuracy", "subset_accuracy", "micro_f1", "macro_f1")

    def __init__(self) -> None:
        self.thresholds: np.ndarray | None = None

    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "examples"
    ) -> np.ndarray:
        classes = sorted({str(v) for labels in train_labels for v in labels})
        if not classes:
            raise DataError("multi-label training data has no labels at all.")
        if val_labels is not None:
            unseen = sorted({str(v) for labels in val_labels for v in labels} - set(classes))
            if unseen:
                raise DataError(f"validation data has labels never seen in training data: {', '.join(unseen[:10])}.")
        self.thresholds = None  # tuned again on this fit's validation split
        return np.asarray(classes)

    def encode(self, labels: Sequence[Any], classes: np.ndarray, *, where: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(classes)}
        out = np.zeros((len(labels), len(classes)), np.float32)
        for r, row in enumerate(labels):
            for v in row:
                if str(v) not in index:
                    raise DataError(f"{where}, row {r + 1}: unknown label '{v}'; known: {', '.join(classes[:20])}.")
                out[r, index[str(v)]] = 1.0
        return out

    def split(
        self, labels: Sequence[Any], fraction: float, seed: int, *, noun: str = "examples"
    ) -> tuple[list[int], list[int]]:
        """A seeded random split in which every label is in training (an example whose label would be only in
        validation moves back), and every label held by two or more examples is in validation too (its F1 and
        threshold are measured there): for a label missing from it, one of its examples moves over when every
        label of that example keeps an example in training."""
        from collections import Counter

        train, val = random_split(len(labels), fraction, seed)
        sets = [{str(v) for v in row} for row in labels]
        in_train = Counter(v for i in train for v in sets[i])
        back = [i for i in val if any(in_train[v] == 0 for v in sets[i])]  # a label only here: it trains
        if back and len(back) < len(val):
            train, val = sorted(train + back), [i for i in val if i not in set(back)]
            in_train = Counter(v for i in train for v in sets[i])
        in_val = {v for i in val for v in sets[i]}
        rng = np.random.default_rng(seed)
        moved: set[int] = set()
        for label in sorted(in_train):
            if label in in_val or in_train[label] < 2:
                continue
            holders = [
                i for i in train if label in sets[i] and i not in moved and all(in_train[v] > 1 for v in sets[i])
            ]
            if holders:
                pick = holders[int(rng.integers(len(holders)))]
                moved.add(pick)
                in_train.subtract(sets[pick])
                in_val |= sets[pick]
        return [i for i in train if i not in moved], sorted(val + sorted(moved))

    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits.float(), y.float())

    def epoch_metrics(self, logits: torch.Tensor, y: Any, classes: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import f1_score

        logits, y = torch.as_tensor(logits), torch.as_tensor(y)
        pred = (logits > 0).numpy()
        truth = y.numpy() > 0.5
        return {
            "val_loss": float(F.binary_cross_entropy_with_logits(logits.float(), y.float())),
            "val_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
            "val_accuracy": float((pred == truth).all(axis=1).mean()),
        }

    def calibrate(self, logits: np.ndarray, y: np.ndarray) -> None:
        proba = self.probabilities(logits)
        truth = np.asarray(y) > 0.5
        pred = proba[None, :, :] >= _GRID[:, None, None]  # (thresholds, N, C)
        tp = (pred & truth[None]).sum(axis=1)
        f1 = 2 * tp / np.maximum(pred.sum(axis=1) + truth.sum(axis=0)[None], 1)  # per threshold and label
        self.thresholds = np.where(truth.any(axis=0), _GRID[f1.argmax(axis=0)], 0.5)

    def _thresholds(self, n: int) -> np.ndarray:
        return np.full(n, 0.5) if self.thresholds is None else np.asarray(self.thresholds)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits)

    def predict(self, logits: np.ndarray, classes: np.ndarray) -> list[list[Any]]:
        return self.decide(self.probabilities(logits), classes)

    def decide(self, proba: np.ndarray, classes: np.ndarray) -> list[list[Any]]:
        """The labels whose probability reaches their threshold, per row."""
        thresholds = self._thresholds(len(classes))
        return [[classes[j].item() for j in np.flatnonzero(row >= thresholds)] for row in proba]

    def metrics(self, logits: np.ndarray, y: Any, classes: np.ndarray) -> dict[str, Any]:
        from sklearn.metrics import f1_score, precision_recall_fscore_support

        thresholds = self._thresholds(len(classes))
        pred = self.probabilities(logits) >= thresholds
        truth = np.asarray(y) > 0.5
        p, r, f, sup = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
        return {
            "n": int(len(truth)),
            "subset_accuracy": float((pred == truth).all(axis=1).mean()),
            "accuracy": float((pred == truth).mean()),
            "micro_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
            # over the labels present here (in the truth or the predictions): one absent from both is not a miss
            "macro_f1": float(f1_score(truth, pred, average="macro", labels=present, zero_division=0))
            if (present := [i for i in range(len(classes)) if truth[:, i].any() or pred[:, i].any()])
            else 0.0,
            "per_label": {
                str(c): {
                    "precision": float(p[i]),
                    "recall": float(r[i]),
                    "f1": float(f[i]),
                    "support": int(sup[i]),
                    "threshold": float(thresholds[i]),
                }
                for i, c in enumerate(classes)
            },
            "labels": [str(c) for c in classes],
        }

    def state(self) -> dict[str, Any]:
        return {} if self.thresholds is None else {"thresholds": [float(t) for t in self.thresholds]}

    def load_state(self, state: dict[str, Any]) -> None:
        t = state.get("thresholds")
        self.thresholds = None if t is None else np.asarray(t, dtype=float)
