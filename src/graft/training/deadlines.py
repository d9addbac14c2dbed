"""Wall-clock deadlines for training: the loop stops between steps once the deadline has passed.

A deadline is a :func:`time.perf_counter` value. :func:`deadline` sets one for every training phase started inside
it (the fit of any estimator reads it into :class:`~graft.training.loop.TrainConfig`): the epoch under way is cut
between two steps, evaluated, and the run ends with the best epoch's weights, as with early stopping.

Example:
    >>> from graft.training import deadline_after
    >>> with deadline_after(60):  # doctest: +SKIP
    ...     clf.fit("data/ants_bees")  # training stops about a minute from now; the best epoch is kept
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["deadline", "deadline_after", "current_deadline", "past", "until"]

T = TypeVar("T")
_DEADLINE: ContextVar[float | None] = ContextVar("graft_training_deadline", default=None)


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Training phases started inside stop by ``at`` (a ``time.perf_counter()`` value; ``None``: no deadline).

    A deadline set inside another one cannot extend it: the earlier of the two applies.
    """
    outer = _DEADLINE.get()
    if at is not None and outer is not None:
        at = min(at, outer)
    token = _DEADLINE.set(outer if at is None else at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline_after(seconds: float) -> AbstractContextManager[None]:
    """:func:`deadline` ``seconds`` from now."""
    return deadline(time.perf_counter() + float(seconds))


def current_deadline() -> float | None:
    """The deadline in force here (``None``: none)."""
    return _DEADLINE.get()


def past(at: float | None) -> bool:
    """Whether the deadline ``at`` has passed (never, for ``None``)."""
    return at is not None and time.perf_counter() >= at


def until(batches: Iterable[T], at: float | None) -> Iterator[T]:
    """The items of ``batches`` while the deadline ``at`` has not passed; checked before each item is drawn, so a
    cut epoch ends between two steps (and no batch is loaded for nothing)."""
    if at is None:
        yield from batches
        return
    for batch in batches:
        yield batch
        if past(at):
            return
