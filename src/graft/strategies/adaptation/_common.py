"""Argument checks shared by the adaptation losses (shape mistakes are ``ValueError``, settings ``ConfigError``)."""

from __future__ import annotations

import torch

from ...errors import ConfigError

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}.")
    return reduction


def check_pair(
    f_s: torch.Tensor, f_t: torch.Tensor, min_rows: int = 1, names: tuple[str, str] = ("f_s", "f_t")
) -> None:
    """Both ``(N, F)`` with the same ``F`` and at least ``min_rows`` rows each."""
    for name, f in zip(names, (f_s, f_t)):
        if f.dim() != 2:
            raise ValueError(f"{name} must have shape (N, F); got {tuple(f.shape)}.")
        if f.shape[0] < min_rows:
            raise ValueError(f"{name} needs at least {min_rows} rows; got {f.shape[0]}.")
    if f_s.shape[1] != f_t.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same width; got {f_s.shape[1]} and {f_t.shape[1]}.")


def check_weights(w: torch.Tensor | None, n: int, name: str) -> torch.Tensor | None:
    """``None`` or a tensor of ``n`` per-sample weights, returned flattened to ``(n,)``."""
    if w is None:
        return None
    if w.numel() != n:
        raise ValueError(f"{name} must hold one weight per sample ({n}); got shape {tuple(w.shape)}.")
    return w.reshape(n)
