"""Training batch samplers, and batches cut into micro-batches."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import Sampler

__all__ = ["LengthGroupedBatchSampler", "micro_batches"]


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Random batches of similar length, the ``group_by_length`` of ``transformers.Trainer``.

    Each epoch: a seeded permutation is cut into mega-batches of ``batch_size * mega`` items, each mega-batch is
    sorted by length and cut into batches, and the order of the batches is shuffled. Items of a batch have
    nearly the same length (padding is small) while every epoch still sees a new random grouping. The order is
    a function of ``seed`` and the epoch (:meth:`set_epoch`) alone, so a resumed run replays it exactly.

    Args:
        lengths: length of each item (e.g. tokens).
        batch_size: items per batch.
        seed: seeds the order.
        drop_last: drop the one incomplete batch.
        mega: mega-batch size in batches (larger: less padding, less randomness).
    """

    def __init__(self, lengths: list[int], batch_size: int, *, seed: int = 0, drop_last: bool = False, mega: int = 50):
        self.lengths, self.batch_size, self.seed, self.drop_last, self.mega = (
            list(lengths),
            batch_size,
            seed,
            drop_last,
            mega,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):  # type: ignore[override]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        size = self.batch_size * self.mega
        order = [
            i
            for s in range(0, len(perm), size)
            for i in sorted(perm[s : s + size], key=lambda k: self.lengths[k], reverse=True)
        ]
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        for b in torch.randperm(len(batches), generator=g).tolist():
            yield batches[b]


def micro_batches(batch: Any, size: int | None) -> list[tuple[Any, float]]:
    """``batch`` as ``(chunk, share of the batch)`` pieces of at most ``size`` examples; whole unless it is an
    ``(inputs, targets)`` pair of tensors longer than ``size``."""
    if (
        size is None
        or not isinstance(batch, (list, tuple))
        or len(batch) != 2
        or not all(isinstance(t, torch.Tensor) for t in batch)
        or len(batch[0]) != len(batch[1])
        or len(batch[1]) <= size
    ):
        return [(batch, 1.0)]
    n = len(batch[1])
    return [(type(batch)(t[s : s + size] for t in batch), min(size, n - s) / n) for s in range(0, n, size)]
