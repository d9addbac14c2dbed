"""The phases a strategy plans. Each names one :func:`~graft.training.loop.run_loop` call; the estimator runs the
plan in order (:func:`graft.training.phases.run_plan`). Plans are plain data, so strategies depend on nothing else.

* :class:`HeadPhase`: fit the head on frozen, cached embeddings (feature extraction; the warm-up of fine-tuning).
* :class:`BackbonePhase`: train the backbone with the head: layer groups at the strategy's learning rates, scheduled
  unfreezing, adapters injected before and merged after (fine-tuning, LoRA).
* :class:`WeightedPhase`: a backbone phase whose source rows are drawn by their importance weight (target / source
  density ratio, estimated with ``method``: ``classifier``, ``kmm`` or ``kliep``).
* :class:`AdaptPhase`: domain adaptation of a bottleneck and head on frozen source and target embeddings.
* :class:`DeepAdaptPhase`: domain adaptation of backbone and head together, source and target batches each step.
* :class:`PairPhase`: contrastive training of the backbone alone on pairs of training examples (same label or not).
* :class:`LogisticHeadPhase`: the linear head fitted as an L2-regularised logistic regression on cached embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "Phase",
    "HeadPhase",
    "BackbonePhase",
    "WeightedPhase",
    "AdaptPhase",
    "DeepAdaptPhase",
    "PairPhase",
    "LogisticHeadPhase",
]


@dataclass(frozen=True)
class Phase:
    """One training phase; ``name`` keys its checkpoints (``checkpoints/<name>/``) and history rows."""

    name: str
    #: the phase changes the backbone's weights (else the fitted model is the frozen backbone plus a head)
    trains_backbone: ClassVar[bool] = False
    #: the phase needs unlabelled target-domain data
    needs_target: ClassVar[bool] = False


@dataclass(frozen=True)
class HeadPhase(Phase):
    """Fit the head on cached embeddings. ``warmup``: an initialisation before a backbone phase (a fixed 60 epochs
    at 3e-3 on at most 10,000 examples); else the final model (the strategy's epochs and learning rate)."""

    name: str = "head"
    warmup: bool = False


@dataclass(frozen=True)
class BackbonePhase(Phase):
    """Train the backbone (or adapters in it) with the head."""

    trains_backbone: ClassVar[bool] = True


@dataclass(frozen=True)
class WeightedPhase(BackbonePhase):
    """Train backbone and head on source rows sampled in proportion to their importance weight."""

    needs_target: ClassVar[bool] = True
    method: str = "kliep"


@dataclass(frozen=True)
class AdaptPhase(Phase):
    """Adapt a bottleneck and head on frozen source/target embeddings. ``then_deep``: a deep phase follows (it
    measures the adaptation diagnostics instead)."""

    needs_target: ClassVar[bool] = True
    then_deep: bool = False


@dataclass(frozen=True)
class DeepAdaptPhase(Phase):
    """Adapt backbone and head together with the method's loss."""

    trains_backbone: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True


@dataclass(frozen=True)
class PairPhase(Phase):
    """Train the backbone alone on pairs of labelled examples: each of ``iterations`` rounds (``None``:
    :func:`graft.training.pairs.default_rounds`) pairs every example with
    one of its own label and one of another label; the strategy's loss scores a pair's embeddings against the target
    (1 same label, 0 not), at most ``max_pairs`` pairs. Its own ``epochs``, ``batch_size`` (pairs) and ``lr``
    (``None``: from the number of steps, :func:`graft.training.pairs.pair_lr`); the estimator's apply to the head.
    With ``labels``, both items of every pair share a label and the target is that label (supervised contrastive
    batches)."""

    trains_backbone: ClassVar[bool] = True
    iterations: int | None = None
    max_pairs: int | None = None
    epochs: int = 1
    batch_size: int = 16
    lr: float | None = None
    labels: bool = False


@dataclass(frozen=True)
class LogisticHeadPhase(Phase):
    """Fit the linear head on cached embeddings as a multinomial logistic regression with an L2 penalty of inverse
    strength ``c`` (scikit-learn's ``C``), solved to convergence (L-BFGS) instead of epochs of AdamW. A strong penalty
    keeps the weights near the class-mean differences: robust with a few examples per class."""

    name: str = "head"
    c: float = 1.0
