"""Training and inference loops: :func:`run_loop` (the one training loop), :func:`predict_batches` (the one
inference loop) and the phases that strategies plan (:mod:`graft.training.phases`)."""

from __future__ import annotations

from .deadlines import deadline, deadline_after
from .loop import EvalFn, LoopResult, TrainConfig, make_accelerator, run_loop
from .plan import AdaptPhase, BackbonePhase, DeepAdaptPhase, HeadPhase, LogisticHeadPhase, PairPhase, Phase
from .predict import gather_rows, predict_batches, to_device
from .samplers import LengthGroupedBatchSampler

__all__ = [
    "AdaptPhase",
    "BackbonePhase",
    "DeepAdaptPhase",
    "deadline",
    "deadline_after",
    "HeadPhase",
    "LogisticHeadPhase",
    "PairPhase",
    "Phase",
    "EvalFn",
    "LengthGroupedBatchSampler",
    "LoopResult",
    "TrainConfig",
    "gather_rows",
    "make_accelerator",
    "predict_batches",
    "run_loop",
    "to_device",
]
