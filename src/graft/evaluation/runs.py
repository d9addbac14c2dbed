"""What a training run leaves in its directory besides checkpoints: the bundle, plots and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_run"]


def write_run(est: Any, run_dir: Path, val: tuple[Any, Any] | None = None) -> None:
    """Write the fitted ``est`` as a bundle into ``run_dir``, with ``history.png``, ``confusion_matrix.png`` (single-
    label tasks), ``report.html`` (when there was a validation split) and, for images, ``confident_errors.png``:
    Grad-CAM overlays of the most confidently wrong validation images (``val``: the validation data and logits)."""
    from ..estimators._fitting import release_lock
    from .plots import plot_confusion_matrix, plot_history
    from .report import write_html_report

    est.save(run_dir)
    release_lock(run_dir)
    metrics = est.val_metrics_
    images: dict[str, Path] = {}
    if metrics is not None and "confusion_matrix" in metrics:
        images["Confusion matrix (validation)"] = plot_confusion_matrix(
            metrics["confusion_matrix"],
            [str(c) for c in est.classes_],
            run_dir / "confusion_matrix.png",
            title="validation",
        )
    if est.history_:
        images["Training curves"] = plot_history(
            est.history_, run_dir / "history.png", best_epochs=getattr(est, "best_epochs_", None)
        )
    reliability = reliability_diagram(est, val, run_dir / "reliability.png")
    if reliability is not None:
        images["Calibration (validation)"] = reliability
    errors = confident_error_grid(est, val, run_dir / "confident_errors.png")
    if errors is not None:
        images["Most confidently wrong validation images (Grad-CAM: where the model looked)"] = errors
    if (run_dir / "domain_features.png").exists():
        images["Source and target features"] = run_dir / "domain_features.png"
    if metrics is not None:
        info = {
            "backbone": est.backbone,
            "strategy": repr(est.strategy_),
            "classes": ", ".join(map(str, est.classes_[:50])),
            **{k: v for k, v in est.training_summary().items() if k not in ("val", "best")},
        }
        write_html_report(
            run_dir / "report.html",
            title=f"Graft run: {run_dir.name}",
            metrics=metrics,
            info=info,
            images=images,
        )


def confident_error_grid(est: Any, split: tuple[Any, Any] | None, path: Path) -> Path | None:
    """Grad-CAM overlays of the most confidently wrong images of ``split`` = ``(data, logits)`` (image models with a
    single label per image); ``None`` when there is nothing to show. A backbone Grad-CAM cannot read is warned about,
    and the run is written without the grid."""
    if split is None or split[0] is None or split[1] is None or est.modality != "image" or split[0].y is None:
        return None
    from ..errors import ConfigError
    from .explain import plot_confident_errors

    data, logits = split
    proba = est.task_.probabilities(logits)
    if getattr(proba, "ndim", 0) != 2 or np.asarray(data.y).ndim != 1:
        return None
    try:
        return plot_confident_errors(est, data, proba, path)
    except ConfigError as e:
        import warnings

        warnings.warn(f"no Grad-CAM overlays of the worst errors: {e}", stacklevel=2)
        return None


def reliability_diagram(est: Any, split: tuple[Any, Any] | None, path: Path) -> Path | None:
    """The reliability diagram (with top-label ECE) of ``split`` = ``(data, logits)`` for single-label tasks."""
    if split is None or split[0] is None or split[1] is None or split[0].y is None:
        return None
    data, logits = split
    proba = est.task_.probabilities(logits)
    if getattr(proba, "ndim", 0) != 2 or np.asarray(data.y).ndim != 1 or len(data.y) == 0:
        return None
    from .plots import plot_reliability

    return plot_reliability(proba, np.asarray(data.y), path)
