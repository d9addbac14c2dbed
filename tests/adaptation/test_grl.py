"""Gradient reversal: identity forward, ``-coeff`` times the gradient backward, DANN warm-start schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from graft.errors import ConfigError
from graft.strategies.adaptation import GradientReverseLayer, WarmStartGradientReverseLayer, grad_reverse


def _input_grads(layer: nn.Module | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. the input and the Linear's weight of ``sum(Linear(layer(x))**2)``."""
    torch.manual_seed(seed)
    lin = nn.Linear(3, 2)
    x = torch.randn(5, 3, requires_grad=True)
    h = x if layer is None else layer(x)
    (lin(h) ** 2).sum().backward()
    assert x.grad is not None and lin.weight.grad is not None
    return x.grad, lin.weight.grad


def test_forward_is_identity() -> None:
    x = torch.randn(4, 6)
    for layer in (GradientReverseLayer(0.7), WarmStartGradientReverseLayer()):
        assert torch.equal(layer(x), x)
    assert torch.equal(grad_reverse(x, 3.0), x)


@pytest.mark.parametrize("coeff", [0.0, 0.5, 1.0, 2.0])
def test_gradient_is_multiplied_by_minus_coeff(coeff: float) -> None:
    ref_x, ref_w = _input_grads(None)
    rev_x, rev_w = _input_grads(GradientReverseLayer(coeff))
    torch.testing.assert_close(rev_x, -coeff * ref_x)
    torch.testing.assert_close(rev_w, ref_w)  # layers after the GRL are unaffected


def test_negative_coeff_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        GradientReverseLayer(-1.0)
    with pytest.raises(ConfigError):
        WarmStartGradientReverseLayer(lo=0.5, hi=0.1)
    with pytest.raises(ConfigError):
        WarmStartGradientReverseLayer(max_iters=0)


def test_warm_start_schedule_rises_from_lo_to_hi() -> None:
    layer = WarmStartGradientReverseLayer(alpha=10.0, lo=0.1, hi=0.9, max_iters=100, auto_step=True)
    x = torch.randn(2, 3)
    coeffs = []
    for _ in range(300):
        coeffs.append(layer.coeff)
        layer(x)
    assert layer.iter_num == 300
    assert coeffs[0] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(coeffs, coeffs[1:]))
    assert coeffs[-1] == pytest.approx(0.9, abs=1e-3)
    # the DANN formula at half the progress
    i, span = 50, 0.8
    assert coeffs[i] == pytest.approx(2 * span / (1 + math.exp(-10 * i / 100)) - span + 0.1)


def test_warm_start_reverses_with_the_current_coeff() -> None:
    layer = WarmStartGradientReverseLayer(alpha=10.0, lo=0.0, hi=1.0, max_iters=10)
    for _ in range(4):
        layer.step()
    coeff = layer.coeff
    ref_x, _ = _input_grads(None)
    rev_x, _ = _input_grads(layer)
    torch.testing.assert_close(rev_x, -coeff * ref_x)
    assert layer.iter_num == 5  # auto_step advanced it after use


def test_warm_start_steps_only_when_training_and_auto_step() -> None:
    x = torch.randn(2, 3)
    layer = WarmStartGradientReverseLayer().eval()
    layer(x)
    assert layer.iter_num == 0
    manual = WarmStartGradientReverseLayer(auto_step=False)
    manual(x)
    assert manual.iter_num == 0
    manual.step()
    assert manual.iter_num == 1


def test_warm_start_iteration_is_in_the_state_dict() -> None:
    layer = WarmStartGradientReverseLayer(max_iters=50)
    for _ in range(7):
        layer.step()
    fresh = WarmStartGradientReverseLayer(max_iters=50)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.iter_num == 7 and fresh.coeff == layer.coeff
