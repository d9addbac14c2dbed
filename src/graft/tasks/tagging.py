"""Token classification as a task: one IOB2 tag per word, cross-entropy over labelled sub-tokens, entity-level
precision/recall/F1, and constrained Viterbi decoding (only valid IOB2 sequences)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.special import log_softmax
from torch.nn import functional as F

from ..errors import DataError
from .base import Criterion, Task, random_split, softmax_rows
from .token_classification import IGNORE, entity_metrics, iob2_constraints, viterbi_iob2

__all__ = ["TokenTagging", "token_loss"]


def token_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over labelled sub-tokens. Shape: logits ``(..., C)``, target ``(...)`` with ``-100`` ignored."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        target.reshape(-1),
        ignore_index=IGNORE,
        label_smoothing=label_smoothing,
    )


class TokenTagging(Task):
    """Labels are tag sequences (one per word); ``y`` an object array of per-sentence int arrays; logits a list of
    per-sentence ``(n_words, C)`` arrays."""

    name: ClassVar[str] = "token-tagging"
    monitor: ClassVar[str] = "val_f1"
    summary_keys: ClassVar[tuple[str, ...]] = ("precision", "recall", "f1", "token_accuracy")

    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "sentences"
    ) -> np.ndarray:
        seen = {t for seq in train_labels for t in seq}
        if len(seen) < 2:
            raise DataError(f"training data needs at least 2 different tags; found {sorted(seen)}.")
        # every entity type seen gets both its tags: a type met only as one-word entities (B-LOC) can still be
        # evaluated on and predicted as a longer one (B-LOC I-LOC)
        kinds = {t[2:] for t in seen if t[:2] in ("B-", "I-")}
        tags = sorted(seen | {f"{p}-{k}" for k in kinds for p in ("B", "I")})
        if val_labels is not None:
            unseen = sorted({t for seq in val_labels for t in seq} - set(tags))
            if unseen:
                raise DataError(
                    f"validation data has tags never seen in training data: {', '.join(unseen[:10])}. "
                    "Add examples of them to the training data or remove them from validation."
                )
        return np.asarray(["O"] + [t for t in tags if t != "O"]) if "O" in tags else np.asarray(tags)

    def encode(self, labels: Sequence[Any], classes: np.ndarray, *, where: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(classes)}
        out = np.empty(len(labels), dtype=object)
        for i, seq in enumerate(labels):
            unknown = [t for t in seq if t not in index]
            if unknown:
                raise DataError(
                    f"{where}, sentence {i + 1}: unknown tags {sorted(set(unknown))[:5]}; known: "
                    f"{', '.join(classes[:20])}."
                )
            out[i] = np.asarray([index[t] for t in seq], dtype=np.int64)
        return out

    def split(
        self, labels: Sequence[Any], fraction: float, seed: int, *, noun: str = "sentences"
    ) -> tuple[list[int], list[int]]:
        train, val = random_split(len(labels), fraction, seed)
        if not train:
            raise DataError(
                f"Too few {noun} ({len(labels)}) to hold out a validation split. Give validation data (val=, CLI: "
                f"--val) or more {noun}; in a CoNLL file a blank line ends each sentence (a file without blank lines "
                "is one long sentence)."
            )
        return train, val

    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        return lambda logits, y: token_loss(logits, y, label_smoothing)

    def decode(self, logits: Sequence[np.ndarray], classes: np.ndarray) -> tuple[list[list[str]], list[np.ndarray]]:
        """Tags by constrained Viterbi over each word's log-softmax (only valid IOB2 sequences), and the
        probability of each chosen tag."""
        names = [str(c) for c in classes]
        allowed, start = iob2_constraints(names)
        tags, scores = [], []
        for z in logits:
            logp = log_softmax(np.asarray(z, dtype=np.float64), axis=1)
            path = viterbi_iob2(logp, allowed, start)
            tags.append([names[k] for k in path])
            scores.append(np.exp(logp[np.arange(len(path)), path]))
        return tags, scores

    def epoch_metrics(self, logits: Sequence[np.ndarray], y: Any, classes: np.ndarray) -> dict[str, float]:
        z = torch.from_numpy(np.concatenate(list(logits)).astype(np.float32))
        target = torch.from_numpy(np.concatenate(list(y)))
        m = self.metrics(logits, y, classes)
        return {
            "val_loss": float(F.cross_entropy(z, target)),
            "val_f1": m["f1"],
            "val_precision": m["precision"],
            "val_recall": m["recall"],
            "val_accuracy": m["token_accuracy"],
        }

    def probabilities(self, logits: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [softmax_rows(z) for z in logits]

    def predict(self, logits: Sequence[np.ndarray], classes: np.ndarray) -> list[list[str]]:
        return self.decode(logits, classes)[0]

    def metrics(self, logits: Sequence[np.ndarray], y: Any, classes: np.ndarray) -> dict[str, Any]:
        pred = self.predict(logits, classes)
        true = [[str(classes[k]) for k in seq] for seq in y]
        m = entity_metrics(true, pred)
        m["accuracy"] = m["token_accuracy"]
        return m
