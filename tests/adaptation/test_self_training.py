"""Confidence-thresholded pseudo-labels and FixMatch's unlabelled loss."""

from __future__ import annotations

import pytest
import torch

from graft.errors import ConfigError
from graft.strategies.adaptation import (
    ConfidenceThresholdPseudoLabels,
    DistributionAlignment,
    LinearRampUp,
    SelfTraining,
    pseudo_label_loss,
)


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


def test_distribution_alignment_rebalances_a_collapsed_target() -> None:
    align = DistributionAlignment(3, momentum=0.0)
    collapsed = torch.tensor([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.9, 0.05, 0.05]])
    align.update(collapsed, torch.tensor([0, 1, 2]))  # source classes balanced, target predictions skewed to 0
    out = align(collapsed)
    assert torch.allclose(out.sum(1), torch.ones(3))
    assert (out[:, 0] < collapsed[:, 0]).all() and (out[:, 1:] > collapsed[:, 1:]).all()
    torch.testing.assert_close(out.mean(0), torch.full((3,), 1 / 3), atol=0.1, rtol=0)


def test_distribution_alignment_is_the_identity_when_the_means_agree() -> None:
    align = DistributionAlignment(2, momentum=0.5)
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    torch.testing.assert_close(align(p), p)  # both running means start uniform
    with pytest.raises(ValueError, match="shape"):
        align(torch.ones(2, 3) / 3)
    with pytest.raises(ConfigError):
        DistributionAlignment(2, momentum=1.0)


def test_linear_ramp_up_rises_to_one_and_survives_a_state_dict_round_trip() -> None:
    ramp = LinearRampUp(4)
    weights = []
    for _ in range(6):
        weights.append(ramp.weight)
        ramp.step()
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    other = LinearRampUp(4)
    other.load_state_dict(ramp.state_dict())
    assert other.iter_num == 6 and other.weight == 1.0
    assert LinearRampUp(0).weight == 1.0
    with pytest.raises(ConfigError):
        LinearRampUp(-1)


def test_self_training_validates_its_settings() -> None:
    with pytest.raises(ConfigError, match="warmup"):
        SelfTraining(warmup=1.5).validate()
    with pytest.raises(ConfigError, match="threshold"):
        SelfTraining(threshold=2.0).validate()
    extra = SelfTraining(warmup=0.5).build(8, 3, total_steps=100)
    assert extra["ramp"].steps == 50 and isinstance(extra["align"], DistributionAlignment)
    assert "align" not in SelfTraining(distribution_alignment=False).build(8, 3, total_steps=100)
