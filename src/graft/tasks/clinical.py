"""Clinical classification: per-class operating thresholds tuned on validation, AUROC with bootstrap confidence
intervals, sensitivity / specificity / PPV / NPV at the operating points, calibration error, and for graded
findings (diabetic retinopathy 0-4, tumour grade) an ordinal loss and ordinal metrics.

Predictions stay those of :class:`~graft.tasks.decision.ClassDecision` (arg-max, or the binary decision threshold);
the per-class thresholds are the operating points the metrics report, one-vs-rest, as a screening study would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import ConfigError
from .base import Criterion
from .decision import ClassDecision

__all__ = ["Clinical", "sord_targets"]


def sord_targets(num_classes: int, alpha: float = 1.0) -> torch.Tensor:
    """Soft ordinal (SORD) target distributions, one row per true grade: ``softmax(-alpha * (i - t)^2)`` over
    grades ``i`` for true grade ``t`` (Díaz & Marathe, CVPR 2019). Shape ``(C, C)``, rows sum to 1."""
    grades = torch.arange(num_classes, dtype=torch.float32)
    return torch.softmax(-alpha * (grades[None, :] - grades[:, None]) ** 2, dim=1)


def _quadratic_kappa(y: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """Cohen's kappa with quadratic weights; NaN when undefined (one grade in both truth and prediction)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(y, pred, weights="quadratic", labels=list(range(num_classes))))


class Clinical(ClassDecision):
    """Single-label classification reported as a diagnostic test.

    After training, :meth:`calibrate` chooses one threshold per class on the validation outputs (one-vs-rest, on
    that class's probability); :meth:`metrics` adds ``"clinical"`` (:func:`~graft.evaluation.clinical.
    clinical_metrics`: AUROC and its bootstrap interval per class, the macro AUROC, accuracy's interval, and the
    confusion matrix, sensitivity, specificity, PPV, NPV and F1 at each threshold), a top-label ``"ece"``, and a
    top-level ``"macro_auroc"``.

    Args:
        operating_point: ``"youden"`` (maximise sensitivity + specificity - 1) or a target sensitivity in (0, 1]
            (the highest threshold reaching it, e.g. 0.95 for screening).
        ordinal: The classes are grades, ordered as the labels sort (``0 < 1 < 2``; name string labels so that they
            sort in grade order, e.g. ``"0-none"``, ``"1-mild"``). Trains with soft ordinal labels (SORD): a
            mistake by one grade costs less than one by three. Picks epochs by validation quadratic-weighted kappa
            and adds ``"quadratic_kappa"`` and ``"mae_grade"`` (mean absolute grade error) to the metrics.
        n_boot: Bootstrap resamples of the intervals; 0 skips them.
        sord_alpha: The sharpness of the SORD targets (larger: closer to one-hot).
        **decision: The arguments of :class:`~graft.tasks.decision.ClassDecision` (``class_weight``,
            ``focal_gamma``, ``calibration``, ``cost``, ``target_recall``, ``target_precision``, ``positive``).
    """

    name: ClassVar[str] = "clinical"
    summary_keys: ClassVar[tuple[str, ...]] = ("accuracy", "balanced_accuracy", "macro_auroc")

    def __init__(
        self,
        *,
        operating_point: str | float = "youden",
        ordinal: bool = False,
        n_boot: int = 1000,
        sord_alpha: float = 1.0,
        **decision: Any,
    ) -> None:
        super().__init__(**decision)
        youden = isinstance(operating_point, str) and operating_point == "youden"
        if not youden and (
            isinstance(operating_point, (bool, str))
            or not isinstance(operating_point, (int, float))
            or not 0 < operating_point <= 1
        ):
            raise ConfigError(
                "operating_point must be 'youden' or a target sensitivity in (0, 1] such as 0.95; "
                f"got {operating_point!r}."
            )
        if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
            raise ConfigError(f"n_boot must be an integer >= 0 (0 skips the confidence intervals); got {n_boot!r}.")
        if not isinstance(sord_alpha, (int, float)) or not sord_alpha > 0:
            raise ConfigError(f"sord_alpha must be a positive number (1.0 by default); got {sord_alpha!r}.")
        if ordinal and self.focal_gamma > 0:
            raise ConfigError("ordinal=True trains with soft ordinal labels; it cannot be combined with focal_gamma.")
        self.operating_point: str | float = "youden" if youden else float(operating_point)
        self.ordinal, self.n_boot, self.sord_alpha = bool(ordinal), int(n_boot), float(sord_alpha)
        self.thresholds: list[float] | None = None
        if self.ordinal:
            self.monitor = "val_quadratic_kappa"  # type: ignore[misc]

    # -- labels -------------------------------------------------------------------------------------------------
    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "examples"
    ) -> np.ndarray:
        classes = super().label_space(train_labels, val_labels, noun=noun)
        if self.ordinal:
            self.monitor = "val_quadratic_kappa"  # type: ignore[misc]
        return classes

    # -- training -----------------------------------------------------------------------------------------------
    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        if not self.ordinal:
            return super().criterion(label_smoothing)
        weight = None if self.weights is None else torch.tensor(self.weights, dtype=torch.float32)
        alpha = self.sord_alpha

        def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            """KL divergence from the SORD target of each row's grade, weighted by the true grade's weight."""
            logits = logits.float()
            n_classes = logits.shape[1]
            soft = sord_targets(n_classes, alpha).to(logits.device)[target]
            if label_smoothing > 0:
                soft = (1 - label_smoothing) * soft + label_smoothing / n_classes
            per_row = F.kl_div(F.log_softmax(logits, dim=1), soft, reduction="none").sum(1)
            if weight is None:
                return per_row.mean()
            w = weight.to(logits.device)[target]
            return (per_row * w).sum() / w.sum()

        return loss

    def epoch_metrics(self, logits: torch.Tensor, y: Any, classes: np.ndarray) -> dict[str, float]:
        out = super().epoch_metrics(logits, y, classes)
        if self.ordinal:
            pred = torch.as_tensor(logits).argmax(1).numpy()
            kappa = _quadratic_kappa(np.asarray(y), pred, len(classes))
            out["val_quadratic_kappa"] = kappa if math.isfinite(kappa) else 0.0  # undefined: no agreement shown
        return out

    # -- decision -----------------------------------------------------------------------------------------------
    def calibrate(self, logits: np.ndarray, y: np.ndarray) -> None:
        from ..evaluation.clinical import operating_thresholds

        super().calibrate(logits, y)
        self.thresholds = operating_thresholds(y, self.probabilities(logits), self.operating_point)

    def metrics(self, logits: np.ndarray, y: Any, classes: np.ndarray) -> dict[str, Any]:
        from ..evaluation.clinical import clinical_metrics, top_label_ece

        out = super().metrics(logits, y, classes)
        proba = self.probabilities(logits)
        y = np.asarray(y)
        decided = self.decide(proba)
        n_classes = proba.shape[1]
        thresholds = self.thresholds if self.thresholds and len(self.thresholds) == n_classes else [0.5] * n_classes
        out["clinical"] = clinical_metrics(
            y,
            proba,
            [str(c) for c in classes],
            thresholds,
            n_boot=self.n_boot,
            seed=0,
            positive=self.positive_index,
            predicted=decided,
        )
        out["macro_auroc"] = out["clinical"]["macro_auroc"]
        if "ece" in out:  # two classes: the parent's calibration error of the positive class's probability
            out["positive_class_ece"] = out.pop("ece")
        out["ece"] = top_label_ece(y, proba)
        if self.ordinal:
            kappa = _quadratic_kappa(y, decided, n_classes)
            out["quadratic_kappa"] = kappa if math.isfinite(kappa) else None
            out["mae_grade"] = float(np.abs(decided - y).mean())
        return out

    # -- persistence --------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        out = super().state()
        out["clinical"] = {
            "thresholds": None if self.thresholds is None else [float(t) for t in self.thresholds],
            "operating_point": self.operating_point,
            "ordinal": self.ordinal,
            "sord_alpha": self.sord_alpha,
            "n_boot": self.n_boot,
        }
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        c = state.get("clinical") or {}
        thresholds = c.get("thresholds")
        self.thresholds = None if thresholds is None else [float(t) for t in thresholds]
        op = c.get("operating_point", "youden")
        self.operating_point = op if isinstance(op, str) else float(op)
        self.ordinal = bool(c.get("ordinal", False))
        self.sord_alpha = float(c.get("sord_alpha", 1.0))
        self.n_boot = int(c.get("n_boot", 1000))
        if self.ordinal:
            self.monitor = "val_quadratic_kappa"  # type: ignore[misc]
