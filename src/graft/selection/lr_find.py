"""``graft lr-find`` / :func:`lr_find`: the learning-rate range test of an estimator's strategy on its training data."""

from __future__ import annotations

from typing import Any

from ..training.lr_find import LRFinderResult, range_test_on

__all__ = ["lr_find"]

#: the fewest steps a sweep is run with
MIN_STEPS = 10


def lr_find(
    est: Any, X: Any, y: Any = None, *, steps: int = 100, start: float = 1e-7, end: float = 1.0
) -> LRFinderResult:
    """Run the range test for ``est`` (not fitted: its settings say the backbone and strategy) on ``X``/``y``.

    Example:
        >>> result = graft.selection.lr_find(graft.ImageClassifier(strategy="fine-tune"), "data/")  # doctest: +SKIP
        >>> result.suggestion, result.plot("lr.png")  # doctest: +SKIP
    """
    from ..errors import ConfigError

    if steps < MIN_STEPS:
        raise ConfigError(
            f"the range test needs at least {MIN_STEPS} steps (points on both sides of the loss's valley); got {steps}."
        )
    strategy = est._strategy()
    strategy.validate()
    if any(phase.needs_target for phase in strategy.plan()):
        raise ConfigError(
            f"lr-find sweeps a strategy trained on labelled examples alone; '{strategy.name}' also needs unlabelled "
            "target data. Sweep fine-tune or feature-extraction (the adaptation methods start from their defaults)."
        )
    est.strategy_ = strategy
    est.backbone_ = est._build_backbone(pretrained=est.pretrained)
    X_train, y_train, _, _ = est._read_fit_data(X, y, None)
    data, labels = est._read(X_train, y_train, what="training data")
    task = est._make_task()
    classes = task.label_space(labels, None, noun=est.noun)
    data.y = task.encode(labels, classes, where="training data")
    return range_test_on(est, strategy, task, classes, data, steps=steps, start=start, end=end)
