"""What a training run leaves in its directory besides checkpoints: the bundle, plots and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_run"]


def write_run(est: Any, run_dir: Path) -> None:
    """Write the fitted ``est`` as a bundle into ``run_dir``, with ``history.png``, ``confusion_matrix.png`` (single-
    label tasks) and ``report.html`` (when there was a validation split)."""
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
