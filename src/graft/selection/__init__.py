"""Choosing before training: transferability scores and ``rank``, ``lr_find``, and ``compare`` (the gain of transfer
over training from scratch, by label budget)."""

from __future__ import annotations

from .budget import train_within_budget
from .compare import compare
from .lr_find import lr_find
from .rank import rank
from .scores import SCORES, hscore, leep, linear_probe, logme, nce

__all__ = [
    "SCORES",
    "compare",
    "hscore",
    "leep",
    "linear_probe",
    "logme",
    "lr_find",
    "nce",
    "rank",
    "train_within_budget",
]
