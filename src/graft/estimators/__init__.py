"""Graft's estimators: one scikit-learn facade per kind of input, registered by the task name bundles record."""

from __future__ import annotations

from .bundles import ESTIMATORS, estimator_class, load

__all__ = ["ESTIMATORS", "estimator_class", "load"]
