"""Confidence-thresholded pseudo-labels and FixMatch's unlabelled loss."""

from __future__ import annotations

import pytest
import torch

from graft.errors import ConfigError
from graft.strategies.adaptation import ConfidenceThresholdPseudoLabels, pseudo_label_loss


def _weak() -> torch.Tensor:
    return torch.tensor(
        [
            [8.0, 0.0, 0.0],  # confident: class 0
            [0.3, 0.2, 0.1],  # unsure
            [0.0, 0.0, 9.0],  # confident: class 2
            [1.0, 1.2, 0.0],  # unsure
        ]
    )


def test_mask_selects_only_confident_rows() -> None:
    labels, mask = ConfidenceThresholdPseudoLabels(threshold=0.9)(_weak())
    assert mask.dtype == torch.bool and mask.tolist() == [True, False, True, False]
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 0, 2, 1]
    _, none = ConfidenceThresholdPseudoLabels(threshold=1.0)(_weak())
    assert not none.any()
    _, all_rows = ConfidenceThresholdPseudoLabels(threshold=0.0)(_weak())
    assert all_rows.all()
    with pytest.raises(ConfigError):
        ConfidenceThresholdPseudoLabels(threshold=1.5)


def test_loss_is_zero_when_nothing_passes() -> None:
    strong = torch.randn(4, 3, requires_grad=True)
    loss, ratio = pseudo_label_loss(strong, torch.zeros(4, 3), threshold=0.9)
    assert loss.item() == 0.0 and ratio.item() == 0.0
    loss.backward()
    assert strong.grad is not None and torch.count_nonzero(strong.grad) == 0


def test_loss_counts_masked_rows_as_zero() -> None:
    strong = torch.randn(4, 3)
    loss, ratio = pseudo_label_loss(strong, _weak(), threshold=0.9)
    assert ratio.item() == pytest.approx(0.5)
    ce = torch.nn.functional.cross_entropy(strong[[0, 2]], torch.tensor([0, 2]), reduction="sum")
    assert loss.item() == pytest.approx(ce.item() / 4)


def test_loss_decreases_as_strong_logits_agree() -> None:
    weak = _weak().requires_grad_()
    agree = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, 0.0]])
    disagree = agree.flip(1)
    assert pseudo_label_loss(agree, weak, 0.9)[0] < pseudo_label_loss(disagree, weak, 0.9)[0]

    strong = torch.zeros(4, 3, requires_grad=True)
    opt = torch.optim.SGD([strong], lr=2.0)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss, _ = pseudo_label_loss(strong, weak, threshold=0.9)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert weak.grad is None  # no gradient through the weak view
    assert strong.argmax(1)[[0, 2]].tolist() == [0, 2]


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        pseudo_label_loss(torch.randn(4, 3), torch.randn(4, 2))
