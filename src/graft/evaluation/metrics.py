"""Classification metrics as plain, JSON-serialisable dictionaries, and a terminal summary of them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["classification_metrics", "format_metrics"]

# Probabilities are clipped to [_EPS, 1] before the log loss so that one confident mistake gives a large but
# finite number instead of ``inf`` (which JSON cannot hold).
_EPS = 1e-15


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    labels: Sequence[str],
    *,
    top_k: Sequence[int] = (1, 3, 5),
    predicted: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compute the standard metrics of a single-label classifier.

    The predicted class of each row is the arg-max of ``proba``. Per-class numbers and the confusion matrix
    cover every class in ``labels``, including classes absent from ``y_true`` (support 0). ``macro_f1`` is
    the unweighted mean F1 over the classes that occur in ``y_true`` or in the predictions (scikit-learn's
    default), so a class that is neither present nor predicted does not drag it down; ``balanced_accuracy``
    is the mean recall over the classes present in ``y_true``.

    Args:
        y_true: True class indices into ``labels``, shape ``(N,)``.
        proba: Predicted class probabilities, shape ``(N, C)`` with ``C == len(labels)``.
        labels: Class names, in class-index order. Must be unique.
        top_k: Values of k for top-k accuracy. Only ``1 < k < C`` are reported (top-1 is ``accuracy``, and
            top-k for ``k >= C`` is trivially 1).
        predicted: The predicted class indices when they are not the arg-max (a tuned decision threshold).

    Returns:
        A dict of plain Python ints, floats, strings and lists: ``n``, ``accuracy``, ``balanced_accuracy``,
        ``macro_f1``, ``weighted_f1``, ``log_loss``, ``top_k`` (``{"top_3": ...}``), ``per_class``
        (``{label: {"precision", "recall", "f1", "support"}}``), ``confusion_matrix`` (rows are true
        classes, columns predicted classes, both in ``labels`` order), ``labels``, and for binary problems
        whose ``y_true`` holds both classes, ``roc_auc`` (of class index 1).

    Raises:
        DataError: If the input is empty, shapes disagree, labels are duplicated, probabilities are not
            finite, or a class index is out of range.
    """
    from sklearn import metrics as skm

    label_list = [str(label) for label in labels]
    y, p = _validate(y_true, proba, label_list)
    n, c = p.shape
    class_ids = list(range(c))
    y_pred = p.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)

    with warnings.catch_warnings():
        # Absent classes trigger "y_pred contains classes not in y_true" and similar warnings; the
        # documented handling above is intended, so keep the user's terminal quiet.
        warnings.simplefilter("ignore")
        accuracy = float(skm.accuracy_score(y, y_pred))
        balanced = float(skm.balanced_accuracy_score(y, y_pred))
        macro_f1 = float(skm.f1_score(y, y_pred, average="macro", zero_division=0))
        weighted_f1 = float(skm.f1_score(y, y_pred, labels=class_ids, average="weighted", zero_division=0))
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            y, y_pred, labels=class_ids, average=None, zero_division=0
        )
        clipped = np.clip(p, _EPS, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        log_loss = float(skm.log_loss(y, clipped, labels=class_ids))
        top = {}
        for k in sorted({int(k) for k in top_k}):
            if 1 < k < c:
                top[f"top_{k}"] = float(skm.top_k_accuracy_score(y, p, k=k, labels=class_ids))
        cm = skm.confusion_matrix(y, y_pred, labels=class_ids)

    result: dict[str, Any] = {
        "n": int(n),
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "log_loss": log_loss,
        "top_k": top,
    }
    if c == 2 and len(np.unique(y)) == 2:
        result["roc_auc"] = float(skm.roc_auc_score(y, p[:, 1]))
    result["per_class"] = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(label_list)
    }
    result["confusion_matrix"] = [[int(v) for v in row] for row in cm]
    result["labels"] = label_list
    return result


def _validate(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, labels: list[str]) -> tuple[np.ndarray, ...]:
    """Check and convert the inputs of :func:`classification_metrics`.

    Args:
        y_true: True class indices.
        proba: Class probabilities.
        labels: Class names, already converted to strings.

    Returns:
        ``(y, p)``: ``y`` as an int64 vector and ``p`` as a float64 ``(N, C)`` matrix.

    Raises:
        DataError: On any inconsistency, with a message saying what to fix.
    """
    y_raw = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if y_raw.size == 0 or p.size == 0:
        raise DataError("cannot compute metrics on an empty set: y_true and proba have no rows.")
    if y_raw.ndim != 1:
        raise DataError(f"y_true must be a 1-D sequence of class indices, got shape {y_raw.shape}.")
    if p.ndim != 2:
        raise DataError(f"proba must be a 2-D (N, C) array of probabilities, got shape {p.shape}.")
    if p.shape[0] != y_raw.shape[0]:
        raise DataError(f"y_true has {y_raw.shape[0]} rows but proba has {p.shape[0]}; they must match.")
    if p.shape[1] != len(labels):
        raise DataError(f"proba has {p.shape[1]} columns but {len(labels)} labels were given; they must match.")
    if len(labels) < 2:
        raise DataError(f"classification metrics need at least two classes, got {len(labels)}.")
    if len(set(labels)) != len(labels):
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        raise DataError(f"labels must be unique; duplicated: {dupes}.")
    if not np.all(np.isfinite(p)):
        raise DataError("proba contains NaN or infinite values; check the model output.")
    if y_raw.dtype.kind not in "iub":
        try:
            y_float = y_raw.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"y_true must hold integer class indices, got dtype {y_raw.dtype}.") from e
        if not np.all(np.isfinite(y_float)) or not np.all(y_float == np.round(y_float)):
            raise DataError("y_true must hold integer class indices, found non-integer values.")
        y_raw = y_float
    y = y_raw.astype(np.int64)
    bad = (y < 0) | (y >= len(labels))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"y_true[{first}] = {int(y[first])} is not a valid class index; expected 0..{len(labels) - 1}.")
    return y, p


def _fmt(value: Any, digits: int = 4) -> str:
    """Format a metric value for the terminal; missing or non-numeric values become ``-``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_metrics(m: dict[str, Any]) -> str:
    """Render a metrics dict from :func:`classification_metrics` as an aligned plain-text table.

    Keys that are missing (for example in metrics saved by an older version) are shown as ``-`` or left out.

    Args:
        m: The metrics dict.

    Returns:
        A multi-line string without a trailing newline: a headline block (n, accuracy, balanced accuracy,
        macro-F1, weighted-F1, log loss, ROC AUC and top-k where present), then one row per class with
        precision, recall, F1 and support.
    """
    multi = "subset_accuracy" in m  # multi-label: accuracy is per (example, label), subset accuracy per example
    headline: list[tuple[str, Any]] = [
        ("n", m.get("n")),
        ("label accuracy" if multi else "accuracy", m.get("accuracy")),
        *([("subset accuracy", m["subset_accuracy"]), ("micro-F1", m.get("micro_f1"))] if multi else []),
        *([] if multi else [("balanced acc", m.get("balanced_accuracy"))]),
        ("macro-F1", m.get("macro_f1")),
    ]
    if "weighted_f1" in m:
        headline.append(("weighted-F1", m["weighted_f1"]))
    if "log_loss" in m:
        headline.append(("log loss", m["log_loss"]))
    if "roc_auc" in m:
        headline.append(("ROC AUC", m["roc_auc"]))
    for key, value in (m.get("top_k") or {}).items():
        headline.append((str(key).replace("_", "-"), value))

    key_width = max(len(k) for k, _ in headline)
    lines = [f"{k:<{key_width}}  {_fmt(v)}" for k, v in headline]

    per_class = m.get("per_class") or {}
    if per_class:
        names = [str(name) for name in per_class]
        name_width = min(max(max(len(n) for n in names), len("class")), 40)
        cols = ("precision", "recall", "f1", "support")
        widths = [max(len(col), 9) for col in cols]
        header = f"{'class':<{name_width}}  " + "  ".join(f"{col:>{w}}" for col, w in zip(cols, widths, strict=True))
        lines += ["", header, "-" * len(header)]
        for name, row in per_class.items():
            shown = str(name)
            if len(shown) > name_width:
                shown = shown[: name_width - 1] + "…"
            row = row if isinstance(row, dict) else {}
            cells = [_fmt(row.get(col)) for col in cols[:3]] + [_fmt(row.get("support"))]
            lines.append(
                f"{shown:<{name_width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cells, widths, strict=True))
            )
    return "\n".join(lines)
