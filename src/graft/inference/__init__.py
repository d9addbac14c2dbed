"""Inference backends for frozen networks: eager PyTorch, onnxruntime, OpenVINO, or ``auto`` (the fastest)."""

from __future__ import annotations

from .backends import BACKENDS, NamedInputs, Runner, make_runner, runner_for

__all__ = ["BACKENDS", "NamedInputs", "Runner", "make_runner", "runner_for"]
