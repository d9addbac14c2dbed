"""Statistic-matching and target-only losses: Deep CORAL, MK-MMD, MCC and entropy."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from graft.errors import ConfigError
from graft.strategies.adaptation import (
    CorrelationAlignmentLoss,
    EntropyMinimizationLoss,
    GaussianKernel,
    MinimumClassConfusionLoss,
    MultipleKernelMaximumMeanDiscrepancy,
    entropy,
    mk_mmd,
    squared_distances,
)

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _samples(n: int = 64, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)


def _dan_kernels() -> list[GaussianKernel]:
    return [GaussianKernel(alpha=2.0**k) for k in range(-3, 2)]


DISTANCES: dict[str, Distance] = {
    "coral": CorrelationAlignmentLoss(),
    "coral-paper": CorrelationAlignmentLoss(include_mean=False),
    "mk-mmd": mk_mmd,
    "mk-mmd-linear": lambda a, b: mk_mmd(a, b, linear=True),
    "mk-mmd-module": MultipleKernelMaximumMeanDiscrepancy(_dan_kernels()),
}


@pytest.mark.parametrize("name", list(DISTANCES))
def test_zero_for_identical_batches_small_for_same_distribution(name: str) -> None:
    f_s, f_t = _samples()
    dist = DISTANCES[name]
    assert abs(dist(f_s, f_s).item()) < 1e-5
    same = dist(f_s, f_t).item()
    assert same < 0.5 * dist(f_s, f_t * 2.0).item()  # a real covariance change is far larger


@pytest.mark.parametrize("name", ["coral", "mk-mmd", "mk-mmd-linear", "mk-mmd-module"])
def test_grows_with_a_mean_shift(name: str) -> None:
    f_s, f_t = _samples()
    values = [DISTANCES[name](f_s, f_t + shift).item() for shift in (0.0, 1.0, 2.0, 4.0)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    # same distribution vs a shift of one standard deviation (the linear-time estimate is noisier)
    assert values[0] < (0.3 if name == "mk-mmd-linear" else 0.15) * values[1]


@pytest.mark.parametrize("name", list(DISTANCES))
def test_grows_with_a_scale_change(name: str) -> None:
    f_s, f_t = _samples()
    values = [DISTANCES[name](f_s, f_t * scale).item() for scale in (1.0, 2.0, 3.0, 4.0)]
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_coral_matches_its_formulas() -> None:
    f_s, f_t = _samples(16, 3)
    cov_s, cov_t = torch.cov(f_s.t()), torch.cov(f_t.t())
    paper = ((cov_s - cov_t) ** 2).sum() / (4 * 3**2)
    torch.testing.assert_close(CorrelationAlignmentLoss(include_mean=False)(f_s, f_t), paper)
    tllib = ((f_s.mean(0) - f_t.mean(0)) ** 2).mean() + ((cov_s - cov_t) ** 2).mean()
    torch.testing.assert_close(CorrelationAlignmentLoss()(f_s, f_t), tllib)
    # the paper's loss ignores a mean shift
    shifted = CorrelationAlignmentLoss(include_mean=False)(f_s, f_t + 3.0)
    torch.testing.assert_close(shifted, paper)
    with pytest.raises(ValueError, match="at least 2"):
        CorrelationAlignmentLoss()(f_s[:1], f_t)


def test_losses_pass_gradients_to_both_sides() -> None:
    for dist in (CorrelationAlignmentLoss(), mk_mmd):
        f_s = torch.randn(8, 4, requires_grad=True)
        f_t = (torch.randn(8, 4) + 1.0).requires_grad_()
        dist(f_s, f_t).backward()
        assert f_s.grad is not None and f_t.grad is not None
        assert torch.isfinite(f_s.grad).all() and f_s.grad.abs().sum() > 0


def test_mmd_estimators() -> None:
    f_s, f_t = _samples(32, 4)
    mmd = MultipleKernelMaximumMeanDiscrepancy(_dan_kernels())
    unbiased = MultipleKernelMaximumMeanDiscrepancy(_dan_kernels(), unbiased=True)
    # biased >= 0 always; unbiased is smaller (it drops the k(x, x) = 1 diagonal) and can be negative
    assert mmd(f_s, f_t).item() >= 0.0
    assert unbiased(f_s, f_s).item() < 0.0
    assert unbiased(f_s, f_t + 2).item() > 10 * abs(unbiased(f_s, f_t).item())
    assert mmd(f_s, f_t[:20]).item() >= 0.0  # unequal batch sizes are fine for the quadratic estimate
    with pytest.raises(ValueError, match="equal batch sizes"):
        mk_mmd(f_s, f_t[:20], linear=True)
    with pytest.raises(ConfigError):
        MultipleKernelMaximumMeanDiscrepancy([])


def test_gaussian_kernel() -> None:
    x = torch.randn(6, 3)
    d2 = squared_distances(x)
    torch.testing.assert_close(d2, torch.cdist(x, x) ** 2, atol=1e-5, rtol=1e-4)
    k = GaussianKernel(alpha=0.5)(x)
    assert k.shape == (6, 6)
    torch.testing.assert_close(k.diagonal(), torch.ones(6))
    torch.testing.assert_close(k, torch.exp(-d2 / (2 * 0.5 * d2.mean())))
    fixed = GaussianKernel(sigma=2.0, track_running_stats=False)
    torch.testing.assert_close(fixed(x), torch.exp(-d2 / 8.0))
    with pytest.raises(ConfigError):
        GaussianKernel(track_running_stats=False)
    # identical points: no division by zero
    assert torch.isfinite(GaussianKernel()(torch.ones(4, 2))).all()


# -- MCC --------------------------------------------------------------------------------------------------------
def test_mcc_low_for_confident_diverse_predictions() -> None:
    n_classes = 4
    mcc = MinimumClassConfusionLoss()
    confident_diverse = torch.eye(n_classes).repeat(4, 1) * 20.0
    uniform = torch.zeros(16, n_classes)
    collapsed = torch.eye(n_classes)[[0] * 16] * 20.0
    confused = torch.randn(16, n_classes, generator=torch.Generator().manual_seed(0))
    low = mcc(confident_diverse).item()
    assert low < 0.02
    assert mcc(uniform).item() == pytest.approx((n_classes - 1) / n_classes)
    assert mcc(collapsed).item() > 0.7  # one class for everything is confusion too
    assert low < mcc(confused).item() < mcc(uniform).item() + 1e-6


def test_mcc_gradient_reduces_confusion() -> None:
    torch.manual_seed(0)
    logits = torch.randn(16, 3, requires_grad=True)
    mcc = MinimumClassConfusionLoss(temperature=2.5)
    opt = torch.optim.Adam([logits], lr=0.2)
    first = mcc(logits).item()
    for _ in range(30):
        opt.zero_grad()
        mcc(logits).backward()
        opt.step()
    assert mcc(logits).item() < 0.2 * first
    assert len(logits.argmax(1).unique()) == 3  # it did not collapse onto one class
    with pytest.raises(ConfigError):
        MinimumClassConfusionLoss(temperature=0.0)


# -- entropy ----------------------------------------------------------------------------------------------------
def test_entropy_values() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0]])
    h = entropy(logits)
    assert h.shape == (2,)
    assert h[0].item() == pytest.approx(math.log(4))
    assert h[1].item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(entropy(logits, normalized=True), torch.tensor([1.0, 0.0]))
    loss = EntropyMinimizationLoss()
    assert loss(logits).item() == pytest.approx(math.log(4) / 2)
    assert EntropyMinimizationLoss(reduction="none")(logits).shape == (2,)
    assert EntropyMinimizationLoss(reduction="sum")(logits).item() == pytest.approx(math.log(4))
    with pytest.raises(ConfigError):
        EntropyMinimizationLoss(reduction="max")
