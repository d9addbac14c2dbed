"""Choosing a backbone before training: transferability scores and ``rank``."""

from __future__ import annotations

from .lr_find import lr_find
from .rank import rank
from .scores import SCORES, hscore, leep, linear_probe, logme, nce

__all__ = ["SCORES", "hscore", "leep", "linear_probe", "logme", "lr_find", "nce", "rank"]
