"""Inference backends for frozen networks: eager PyTorch, onnxruntime, or ``auto`` (the fastest that agrees)."""

from __future__ import annotations

from .backends import BACKENDS, NamedInputs, Runner, make_runner, runner_for

__all__ = ["BACKENDS", "NamedInputs", "Runner", "make_runner", "runner_for"]
