"""The contrastive pair phase (:class:`~graft.training.plan.PairPhase`): the backbone alone trains on pairs of
labelled examples, the strategy's loss pulling the embeddings of same-label pairs together and pushing the others
apart (SetFit, Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts"). A head phase then learns on the
tuned embeddings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from .loop import LoopResult, run_loop
from .plan import PairPhase

if TYPE_CHECKING:
    from .phases import FitContext

__all__ = [
    "contrastive_pairs",
    "default_rounds",
    "pair_lr",
    "PairSet",
    "run_pairs",
    "PAIR_LR",
    "PAIR_LR_MAX",
    "PAIR_LR_STEPS",
]

#: the encoder's learning rate when the pairs take ``PAIR_LR_STEPS`` steps or more (SetFit's 2e-5), scaled up in
#: proportion as there are fewer steps, to at most ``PAIR_LR_MAX``. Chosen on held-out SST-2 texts (part of the GLUE
#: training split) with MiniLM: at 64 texts per class (320 steps) 2e-5 beat 1e-4 (0.782 vs 0.760, 3 samples); at 8
#: per class (40 steps) 1e-4 beat 2e-5, 5e-5 and 2e-4 (0.678 vs 0.657 / 0.654 / 0.651, 6 samples).
PAIR_LR, PAIR_LR_STEPS, PAIR_LR_MAX = 2e-5, 320, 1e-4


def pair_lr(steps: int) -> float:
    """The default learning rate of a pair phase of ``steps`` optimizer steps: ``PAIR_LR * PAIR_LR_STEPS / steps``
    within ``[PAIR_LR, PAIR_LR_MAX]``, so the encoder moves about as far on a few texts as on more.

    Example:
        >>> pair_lr(320), pair_lr(40), pair_lr(160)
        (2e-05, 0.0001, 4e-05)
    """
    return float(min(PAIR_LR_MAX, max(PAIR_LR, PAIR_LR * PAIR_LR_STEPS / max(1, steps))))


def default_rounds(n: int) -> int:
    """Rounds of pairing for ``n`` examples when none are set: ``max(20, n // 4)``. Twenty for a few examples; for
    more, about as many pairs (``2 * rounds * n``) as SetFit's default sampling of every two examples (``n ** 2 / 2``).

    Example:
        >>> default_rounds(16), default_rounds(128)
        (20, 32)
    """
    return max(20, n // 4)


def contrastive_pairs(
    y: Any, iterations: int, seed: int, max_pairs: int | None = None, *, labels: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SetFit's pair sampling, balanced: in each of ``iterations`` rounds every example is paired with a random other
    example of its own label (target 1) and a random example of another label (target 0).

    With ``labels``, every pair is of one label and its target is that label's value: each example is paired twice
    per round with random others of its own label (the two views of a supervised contrastive batch).

    These random partners and SetFit 1.x's sampling (every distinct pair once, the rarer target repeated to balance
    them) tied on held-out SST-2 sentences: 0.803 and 0.804 (64 per class, draws 108 to 110, 8,192 pairs).

    An example is its own positive only when its label has no other example. ``max_pairs`` caps the total: fewer
    rounds (at least one), and when one round is already too many, an equal share of ``max_pairs`` of each target
    (half positive, half negative; with ``labels``, of each label).

    Args:
        y: integer labels ``(N,)``, at least two distinct values.
        iterations: rounds of pairing; ``2 * iterations * N`` pairs in all, half of them positive.
        seed: seeds the draws (the same seed gives the same pairs).
        max_pairs: at most this many pairs (``None``: no cap).

    Returns:
        ``(first, second, target)``: index arrays ``(P,)`` into ``y`` and float32 targets,
        ``P = 2 * iterations * N`` without a cap.

    Example:
        >>> first, second, target = contrastive_pairs([0, 0, 1, 1], iterations=2, seed=0)
        >>> len(first), float(target.mean())
        (16, 0.5)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"Pair training needs one label per example, an array of shape (N,); got shape {y.shape}.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError("Pair training needs examples of at least two labels (negative pairs have different labels).")
    if max_pairs is not None:
        iterations = min(iterations, max(1, max_pairs // (2 * len(y))))
    rng = np.random.default_rng(seed)

    def same_label(own: np.ndarray) -> np.ndarray:
        """A random other member of ``own`` for each anchor (draw among m - 1, skip the anchor's own position)."""
        if len(own) == 1:
            return np.tile(own, iterations)
        draw = rng.integers(0, len(own) - 1, size=iterations * len(own))
        return own[draw + (draw >= np.tile(np.arange(len(own)), iterations))]

    firsts, seconds, targets = [], [], []
    for label in classes:
        own, other = np.flatnonzero(y == label), np.flatnonzero(y != label)
        anchors, positives = np.tile(own, iterations), same_label(own)
        if labels:  # a second same-label partner in place of the negative; the target is the label
            seconds += [positives, same_label(own)]
            targets += [np.full(len(anchors), label, np.float32)] * 2
        else:
            seconds += [positives, other[rng.integers(0, len(other), size=len(anchors))]]
            targets += [np.ones(len(anchors), np.float32), np.zeros(len(anchors), np.float32)]
        firsts += [anchors, anchors]
    first, second, target = np.concatenate(firsts), np.concatenate(seconds), np.concatenate(targets)
    order = rng.permutation(len(first))
    if max_pairs is not None and len(order) > max_pairs:  # one round is too many: an equal share of each target
        kinds = np.unique(target)
        share = max(1, max_pairs // len(kinds))
        order = np.sort(np.concatenate([order[target[order] == t][:share] for t in kinds]))
        order = order[rng.permutation(len(order))]
    return first[order], second[order], target[order]


class PairSet(Dataset):
    """Pairs of items of a training set: item ``k`` is ``(inputs of first[k], inputs of second[k], target[k])``.

    ``lengths`` (the two items' token counts summed) pass through for length-grouped batches when the items have them.
    On held-out SST-2 sentences (64 per class, MiniLM, label prompts) the batch order moved accuracy by about a point:
    mega-batches of 50 (the loop's default) scored 0.803 / 0.799 / 0.799, random batches 0.790 / 0.792 (and took about
    1.5x as long), batches sorted over the whole epoch 0.782 / 0.787 / 0.787 (the same draws).
    """

    def __init__(self, items: Dataset, first: np.ndarray, second: np.ndarray, target: np.ndarray) -> None:
        self.items, self.first, self.second, self.target = items, first, second, target
        lengths = getattr(items, "lengths", None)
        if lengths is not None:
            self.lengths = [lengths[a] + lengths[b] for a, b in zip(first.tolist(), second.tolist())]

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, k: int) -> tuple[Any, Any, float]:
        return self.items[int(self.first[k])][0], self.items[int(self.second[k])][0], float(self.target[k])


def pair_collate(base: Callable[[list[Any]], Any] | None) -> Callable[[list[tuple[Any, Any, float]]], Any]:
    """Batches of ``N`` pairs as ``(inputs, targets)``: the ``2N`` inputs in one batch (first items, then second
    items, so one backbone pass embeds both) and the targets ``(N,)``."""
    collate = base or torch.utils.data.default_collate

    def run(items: list[tuple[Any, Any, float]]) -> tuple[Any, torch.Tensor]:
        inputs, _ = collate([(a, 0) for a, _, _ in items] + [(b, 0) for _, b, _ in items])
        return inputs, torch.tensor([t for _, _, t in items], dtype=torch.float32)

    return run


def run_pairs(phase: PairPhase, ctx: FitContext) -> LoopResult:
    """Train the backbone on the training split's pairs with the strategy's loss (its parameter groups, at the
    phase's learning rate); the head is untouched. Frozen-backbone features computed before are forgotten."""
    est, strategy = ctx.est, ctx.strategy
    if np.asarray(ctx.train.y).ndim != 1:
        raise ConfigError(
            f"The '{strategy.name}' strategy pairs examples by whether their labels are the same, so it needs one "
            "label per example; multi-label data has label sets. Use fine-tune or feature-extraction for it."
        )
    rounds = default_rounds(len(ctx.train.y)) if phase.iterations is None else phase.iterations
    first, second, target = contrastive_pairs(ctx.train.y, rounds, est.seed, phase.max_pairs, labels=phase.labels)
    backbone = est.backbone_
    steps = phase.epochs * max(1, len(first) // phase.batch_size)  # the loop drops a last partial batch
    config = ctx.config(head=False, epochs=phase.epochs, lr=pair_lr(steps) if phase.lr is None else phase.lr)
    config.batch_size = phase.batch_size
    groups = backbone.layer_groups()

    set_trainable = functools.partial(strategy.set_trainable, groups)

    if est._verbose():  # the pair phase is one long epoch: say its size before it starts
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(
            f"{phase.name}: the encoder trains on {len(first):,} pairs of {len(ctx.train.y)} texts ({steps} steps of "
            f"{phase.batch_size}); fewer pairs, less time: --set max_pairs=N",
            highlight=False,
        )
    set_trainable(0)
    result = run_loop(
        backbone.module,
        train_set=PairSet(est._train_dataset(ctx.train), first, second, target),
        param_groups=strategy.param_groups(groups, [], config.lr),
        loss_fn=functools.partial(strategy.loss, criterion=ctx.task.criterion(strategy.label_smoothing)),
        collate_fn=pair_collate(est._collate_fn()),
        config=config,
        on_epoch_start=set_trainable,
        run_dir=ctx.run_dir,
        phase=phase.name,
        resume=ctx.resume,
        on_epoch_end=ctx.hook(phase.name),
    )
    backbone.module.eval()
    ctx.backbone_changed()
    return result
