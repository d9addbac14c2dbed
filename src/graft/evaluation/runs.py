"""What a training run leaves in its directory besides checkpoints: the bundle, plots and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_run", "confident_error_grid", "confident_error_texts", "reliability_diagram"]


def write_run(est: Any, run_dir: Path, val: tuple[Any, Any] | None = None) -> None:
    """Write the fitted ``est`` as a bundle into ``run_dir``, with ``history.png``, ``confusion_matrix.png`` (single-
    label tasks), ``report.html`` (when there was a validation split) and the most confidently wrong validation
    examples (``val``: the validation data and logits): for images ``confident_errors.png`` (Grad-CAM overlays), for
    texts ``confident_errors.json``. The report is rendered from the saved folder, as ``graft report RUN`` does."""
    from .._utils import atomic_write_json
    from ..estimators._fitting import release_lock
    from .run_report import TEXT_ERRORS, write_run_report

    est.save(run_dir)
    release_lock(run_dir)
    reliability_diagram(est, val, run_dir / "reliability.png")
    confident_error_grid(est, val, run_dir / "confident_errors.png")
    texts = confident_error_texts(est, val)
    if texts is not None:
        atomic_write_json(run_dir / TEXT_ERRORS, {"split": "validation", "examples": texts})
    if est.val_metrics_ is not None:
        info = {
            "backbone": est.backbone,
            "strategy": repr(est.strategy_),
            "classes": ", ".join(map(str, est.classes_[:50])),
            **{k: v for k, v in est.training_summary().items() if k not in ("val", "best")},
        }
        write_run_report(run_dir, info=info, plots_dir=run_dir)
    elif est.history_:
        from .plots import plot_history

        plot_history(est.history_, run_dir / "history.png", best_epochs=getattr(est, "best_epochs_", None))


def _single_label(est: Any, split: tuple[Any, Any] | None) -> tuple[Any, np.ndarray] | None:
    """``(data, probabilities)`` of a labelled single-label ``split`` = ``(data, logits)``, else ``None``."""
    if split is None or split[0] is None or split[1] is None or split[0].y is None:
        return None
    data, logits = split
    proba = est.task_.probabilities(logits)
    if getattr(proba, "ndim", 0) != 2 or np.asarray(data.y).ndim != 1 or len(data.y) == 0:
        return None
    return data, proba


def confident_error_texts(est: Any, split: tuple[Any, Any] | None, k: int = 10) -> list[dict[str, Any]] | None:
    """The ``k`` most confidently wrong texts of ``split`` = ``(data, logits)`` of a single-label text model, most
    confident first: ``text`` (and ``pair``), ``source``, ``true``, ``predicted``, ``probability``. ``None`` for
    other models or unlabelled data; ``[]`` when nothing is wrong."""
    found = _single_label(est, split) if est.modality == "text" else None
    if found is None:
        return None
    from .explain import confident_errors
    from .report_sections import TEXT_LIMIT

    data, proba = found
    items, out = data.items, []
    for row in confident_errors(proba, np.asarray(data.y), k):
        pred = int(proba[row].argmax())
        example = {
            "text": str(items.texts[row])[: 4 * TEXT_LIMIT],
            "source": str(data.sources[row]),
            "true": str(est.classes_[int(data.y[row])]),
            "predicted": str(est.classes_[pred]),
            "probability": round(float(proba[row, pred]), 4),
        }
        if getattr(items, "pairs", None) is not None:
            example["pair"] = str(items.pairs[row])[: 4 * TEXT_LIMIT]
        out.append(example)
    return out


def confident_error_grid(est: Any, split: tuple[Any, Any] | None, path: Path) -> Path | None:
    """Grad-CAM overlays of the most confidently wrong images of ``split`` = ``(data, logits)`` (image models with a
    single label per image); ``None`` when there is nothing to show. A backbone Grad-CAM cannot read is warned about,
    and the run is written without the grid."""
    found = _single_label(est, split) if est.modality == "image" else None
    if found is None:
        return None
    from ..errors import ConfigError
    from .explain import plot_confident_errors

    data, proba = found
    try:
        return plot_confident_errors(est, data, proba, path)
    except ConfigError as e:
        import warnings

        warnings.warn(f"no Grad-CAM overlays of the worst errors: {e}", stacklevel=2)
        return None


def reliability_diagram(est: Any, split: tuple[Any, Any] | None, path: Path) -> Path | None:
    """The reliability diagram (with top-label ECE) of ``split`` = ``(data, logits)`` for single-label tasks."""
    found = _single_label(est, split)
    if found is None:
        return None
    from .plots import plot_reliability

    return plot_reliability(found[1], np.asarray(found[0].y), path)
