"""Evaluation: classification metrics, plots and a self-contained HTML report."""

from __future__ import annotations

from .metrics import classification_metrics, format_metrics
from .plots import plot_confusion_matrix, plot_domain_features, plot_history
from .report import write_html_report

__all__ = [
    "classification_metrics",
    "format_metrics",
    "plot_confusion_matrix",
    "plot_domain_features",
    "plot_history",
    "write_html_report",
]
