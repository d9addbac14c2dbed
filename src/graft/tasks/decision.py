"""Single-label classification with decisions under imbalance: class weights or focal loss, and for two classes a
calibrated probability and an operating threshold chosen on validation by a cost matrix or a target recall/precision.

Credit scoring and fraud ask "at which score do we refuse?", not "which class is likelier?": the threshold that
minimises expected cost (german.doc: accepting a bad applicant costs 5, refusing a good one 1) is far from 0.5.
The metrics add what such users read: ROC-AUC, PR-AUC (average precision), the KS statistic, the Brier score,
expected calibration error, and precision, recall and cost at the threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import ConfigError
from .base import Criterion, label_key
from .classification import SingleLabel

__all__ = ["ClassDecision", "binary_metrics", "expected_calibration_error"]

_CALIBRATIONS = (None, "platt", "isotonic")


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - predicted probability| over equal-width probability bins, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(float(y[m].mean()) - float(p[m].mean()))
    return float(err)


def binary_metrics(
    p: np.ndarray, y: np.ndarray, threshold: float, cost: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Ranking, calibration and decision metrics of positive-class probabilities ``p`` against 0/1 truth ``y``."""
    from scipy.stats import ks_2samp
    from sklearn import metrics as skm

    y = np.asarray(y).astype(int)
    out: dict[str, Any] = {"threshold": float(threshold), "positive_rate": float(y.mean())}
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
        out["ks"] = float(ks_2samp(p[y == 1], p[y == 0]).statistic)
    out["brier"] = float(np.mean((p - y) ** 2))
    out["ece"] = expected_calibration_error(p, y)
    pred = p >= threshold
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn, tn = int((~pred & (y == 1)).sum()), int((~pred & (y == 0)).sum())
    out.update(
        precision=tp / max(1, tp + fp),
        recall=tp / max(1, tp + fn),
        specificity=tn / max(1, tn + fp),
        decision_counts={"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    )
    if cost is not None:
        out["cost_per_row"] = float((fp * cost[0] + fn * cost[1]) / max(1, len(y)))
    return out


_YES_NO = ({"0", "1"}, {"false", "true"}, {"no", "yes"}, {"n", "y"})


class ClassDecision(SingleLabel):
    """Softmax classification with an imbalance-aware loss and, for two classes, a tuned decision.

    Args:
        class_weight: ``"balanced"`` weighs each class's loss by ``n / (classes * count)`` of the training data; a
            dict ``{class: weight}`` gives the weights (classes not in it: 1).
        focal_gamma: > 0 uses the focal loss (Lin et al., 2017) with this focusing parameter.
        calibration: ``"platt"`` or ``"isotonic"`` maps validation scores to calibrated probabilities (two classes).
        cost: ``(cost of a false positive, cost of a false negative)``: the threshold minimises the expected cost on
            validation (two classes).
        target_recall / target_precision: the threshold is the highest one reaching this recall, or the lowest
            reaching this precision, on validation (two classes).
        positive: the positive class (default: ``1``/``True``/``yes``/``y`` when the labels are 0/1, booleans, yes/no
            or y/n in any case, else the rarer training class).
        sampler: ``"balanced"`` draws training examples with probability inverse to their class's count (with
            replacement; each epoch sees every class about equally often).
    """

    name: ClassVar[str] = "class-decision"
    summary_keys: ClassVar[tuple[str, ...]] = ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc")

    def __init__(
        self,
        *,
        class_weight: str | dict[Any, float] | None = None,
        focal_gamma: float = 0.0,
        calibration: str | None = None,
        cost: Sequence[float] | None = None,
        target_recall: float | None = None,
        target_precision: float | None = None,
        positive: Any = None,
        sampler: str | None = None,
    ) -> None:
        if sampler not in (None, "balanced"):
            raise ConfigError(f"sampler must be None or 'balanced'; got {sampler!r}.")
        self.sampler = sampler
        if class_weight is not None and class_weight != "balanced" and not isinstance(class_weight, dict):
            raise ConfigError(
                f"class_weight must be None, 'balanced' or a dict {{class: weight}}; got {class_weight!r}."
            )
        if calibration not in _CALIBRATIONS:
            raise ConfigError(f"calibration must be one of None, 'platt', 'isotonic'; got {calibration!r}.")
        if cost is not None and (len(cost) != 2 or min(cost) < 0 or max(cost) <= 0):
            raise ConfigError(f"cost must be (false-positive cost, false-negative cost), both >= 0; got {cost!r}.")
        if sum(v is not None for v in (cost, target_recall, target_precision)) > 1:
            raise ConfigError("give one of cost, target_recall and target_precision.")
        for name, v in (("target_recall", target_recall), ("target_precision", target_precision)):
            if v is not None and not 0 < v <= 1:
                raise ConfigError(f"{name} must be in (0, 1]; got {v}.")
        self.class_weight, self.focal_gamma, self.calibration = class_weight, float(focal_gamma), calibration
        self.cost = None if cost is None else (float(cost[0]), float(cost[1]))
        self.target_recall, self.target_precision, self.positive = target_recall, target_precision, positive
        self.weights: list[float] | None = None
        self.threshold = 0.5
        self.calibrator: dict[str, Any] | None = None
        self.positive_index = 1
        self.monitor = "val_accuracy"  # type: ignore[misc]

    # -- labels -------------------------------------------------------------------------------------------------
    def label_space(
        self, train_labels: Sequence[Any], val_labels: Sequence[Any] | None, *, noun: str = "examples"
    ) -> np.ndarray:
        classes = super().label_space(train_labels, val_labels, noun=noun)
        keys = [label_key(c) for c in classes]
        seen = Counter(label_key(v) for v in train_labels)  # one pass, however many classes
        counts = np.asarray([seen[k] for k in keys], float)
        if self.class_weight == "balanced":
            self.weights = (counts.sum() / (len(classes) * np.maximum(counts, 1))).tolist()
        elif isinstance(self.class_weight, dict):
            given = {label_key(k): float(v) for k, v in self.class_weight.items()}
            self.weights = [given.get(k, 1.0) for k in keys]
        if len(classes) == 2:
            if self.positive is not None:
                if label_key(self.positive) not in keys:
                    raise ConfigError(f"positive class {self.positive!r} is not a label; labels: {', '.join(keys)}.")
                self.positive_index = keys.index(label_key(self.positive))
            elif {k.lower() for k in keys} in _YES_NO:  # 0/1, False/True, no/yes, n/y: the second is positive
                self.positive_index = next(i for i, k in enumerate(keys) if k.lower() in ("1", "true", "yes", "y"))
            else:
                self.positive_index = int(counts.argmin())
            rate = counts[self.positive_index] / counts.sum()
            # rare positives: average precision tells models apart where accuracy cannot
            self.monitor = "val_pr_auc" if rate < 0.1 else "val_roc_auc"  # type: ignore[misc]
        if isinstance(self.class_weight, dict):  # the user's weights say what an error costs: pick epochs by them
            self.monitor = "val_weighted_loss"  # type: ignore[misc]
        return classes

    # -- training -----------------------------------------------------------------------------------------------
    def criterion(self, label_smoothing: float = 0.0) -> Criterion:
        weight = None if self.weights is None else torch.tensor(self.weights, dtype=torch.float32)
        gamma = self.focal_gamma

        def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            w = None if weight is None else weight.to(logits.device)
            if gamma <= 0:
                return F.cross_entropy(logits.float(), target, weight=w, label_smoothing=label_smoothing)
            logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
            focal = -((1 - logp.exp()) ** gamma) * logp
            if w is not None:
                focal = focal * w[target]
                return focal.sum() / w[target].sum()
            return focal.mean()

        return loss

    def sample_weights(self, y: Any) -> np.ndarray | None:
        if self.sampler != "balanced":
            return None
        y = np.asarray(y)
        counts = np.bincount(y)
        return 1.0 / counts[y]

    def epoch_metrics(self, logits: torch.Tensor, y: Any, classes: np.ndarray) -> dict[str, float]:
        out = super().epoch_metrics(logits, y, classes)
        if self.weights is not None:
            w = torch.tensor(self.weights, dtype=torch.float32)
            out["val_weighted_loss"] = float(
                F.cross_entropy(torch.as_tensor(logits).float(), torch.as_tensor(y), weight=w)
            )
        if len(classes) == 2:
            from sklearn import metrics as skm

            p = torch.softmax(torch.as_tensor(logits).float(), 1)[:, self.positive_index].numpy()
            t = np.asarray(y) == self.positive_index
            if 0 < t.sum() < len(t):
                out["val_roc_auc"] = float(skm.roc_auc_score(t, p))
                out["val_pr_auc"] = float(skm.average_precision_score(t, p))
            else:  # a validation split without both classes cannot rank: fall back to accuracy
                out["val_roc_auc"] = out["val_pr_auc"] = out["val_accuracy"]
        return out

    # -- decision -----------------------------------------------------------------------------------------------
    def _raw_positive(self, logits: np.ndarray) -> np.ndarray:
        return super().probabilities(logits)[:, self.positive_index].astype(np.float64)

    def _calibrated(self, p: np.ndarray) -> np.ndarray:
        c = self.calibrator
        if c is None:
            return p
        if c["kind"] == "platt":
            z = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
            return 1 / (1 + np.exp(-(c["a"] * z + c["b"])))
        return np.interp(p, c["x"], c["y"])

    def calibrate(self, logits: np.ndarray, y: np.ndarray) -> None:
        if np.asarray(logits).shape[1] != 2:
            return
        p, t = self._raw_positive(logits), (np.asarray(y) == self.positive_index).astype(int)
        both = 0 < t.sum() < len(t)
        if self.calibration == "platt" and both:
            from sklearn.linear_model import LogisticRegression

            z = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))[:, None]
            lr = LogisticRegression(C=1e4).fit(z, t)
            self.calibrator = {"kind": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
        elif self.calibration == "isotonic" and both:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, t)
            self.calibrator = {"kind": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        q = self._calibrated(p)
        self.threshold = self._choose_threshold(q, t) if both else 0.5

    def _choose_threshold(self, q: np.ndarray, t: np.ndarray) -> float:
        grid = np.unique(np.concatenate([q, [0.5]]))
        pred = q[None, :] >= grid[:, None]
        tp = (pred & (t == 1)).sum(1)
        fp = (pred & (t == 0)).sum(1)
        fn = t.sum() - tp
        if self.cost is not None:
            total = fp * self.cost[0] + fn * self.cost[1]
            best = np.flatnonzero(total == total.min())
            return float(grid[best[len(best) // 2]])  # the middle of a tie: a margin both ways
        if self.target_recall is not None:
            ok = np.flatnonzero(tp / max(1, t.sum()) >= self.target_recall)
            return float(grid[ok.max()]) if ok.size else float(grid[0])
        if self.target_precision is not None:
            ok = np.flatnonzero(tp / np.maximum(1, tp + fp) >= self.target_precision)
            return float(grid[ok.min()]) if ok.size else float(grid[-1])
        return 0.5

    # -- inference ----------------------------------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        proba = super().probabilities(logits)
        if proba.shape[1] != 2 or self.calibrator is None:
            return proba
        q = self._calibrated(proba[:, self.positive_index].astype(np.float64)).astype(np.float32)
        out = np.empty_like(proba)
        out[:, self.positive_index], out[:, 1 - self.positive_index] = q, 1 - q
        return out

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Class indices: for two classes, positive when its (calibrated) probability reaches the threshold."""
        if proba.shape[1] != 2:
            return proba.argmax(1)
        positive = proba[:, self.positive_index] >= self.threshold
        return np.where(positive, self.positive_index, 1 - self.positive_index)

    def predict(self, logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return classes[self.decide(self.probabilities(logits))]

    def metrics(self, logits: np.ndarray, y: Any, classes: np.ndarray) -> dict[str, Any]:
        from ..evaluation.metrics import classification_metrics

        proba = self.probabilities(logits)
        decided = self.decide(proba)  # accuracy, F1 and the confusion matrix are those of predict()
        out = classification_metrics(y, proba, [str(c) for c in classes], predicted=decided)
        if proba.shape[1] == 2:
            t = (np.asarray(y) == self.positive_index).astype(int)
            out["accuracy_at_0.5"] = float((proba.argmax(1) == np.asarray(y)).mean())
            out["positive_class"] = str(classes[self.positive_index])
            out.update(binary_metrics(proba[:, self.positive_index].astype(np.float64), t, self.threshold, self.cost))
        return out

    # -- persistence --------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "decision": {
                "threshold": self.threshold,
                "positive_index": self.positive_index,
                "calibrator": self.calibrator,
                "cost": None if self.cost is None else list(self.cost),
                "class_weights": self.weights,
                "monitor": self.monitor,
            }
        }

    def load_state(self, state: dict[str, Any]) -> None:
        d = state.get("decision") or {}
        self.threshold = float(d.get("threshold", 0.5))
        self.positive_index = int(d.get("positive_index", 1))
        self.calibrator = d.get("calibrator")
        self.cost = None if d.get("cost") is None else (float(d["cost"][0]), float(d["cost"][1]))
        self.weights = d.get("class_weights")
        self.monitor = d.get("monitor", "val_accuracy")  # type: ignore[misc]
