"""Proxy A-distance and importance weights from a domain classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graft.errors import ConfigError
from graft.strategies.adaptation import a_distance, domain_density_ratio


def _gaussian(n: int, dim: int, shift: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def test_a_distance_same_vs_separated() -> None:
    same = a_distance(_gaussian(400, 8, 0.0, 1), _gaussian(300, 8, 0.0, 2))
    far = a_distance(_gaussian(400, 8, 0.0, 1), _gaussian(300, 8, 3.0, 2))
    assert 0.0 <= same < 0.3
    assert 1.5 < far <= 2.0
    assert a_distance(_gaussian(400, 8, 0.0, 1), _gaussian(300, 8, 0.0, 2)) == same  # seeded
    as_tensor = a_distance(torch.from_numpy(_gaussian(400, 8, 0.0, 1)), torch.from_numpy(_gaussian(300, 8, 3.0, 2)))
    assert as_tensor == pytest.approx(far)


def test_a_distance_errors() -> None:
    with pytest.raises(ValueError, match="width"):
        a_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        a_distance(np.zeros((1, 3)), np.zeros((10, 3)))


def test_density_ratio_mean_one_and_larger_near_target() -> None:
    source = _gaussian(400, 2, 0.0, 1)
    target = _gaussian(300, 2, 1.0, 2)
    val = np.array([[1.0, 1.0], [0.5, 0.5], [0.0, 0.0], [-1.0, -1.0], [-2.0, -2.0]])
    w = domain_density_ratio(source, target, val)
    assert w.shape == (5,) and w.dtype == np.float64
    assert w.mean() == pytest.approx(1.0)
    assert w[0] > w[1] > w[2] > w[3]  # closer to the target mean: larger weight
    assert w[3] == pytest.approx(w[4])  # both far points hit the clipping floor
    # on random source points too, weights rise with the projection on the shift direction
    val = _gaussian(200, 2, 0.0, 3)
    w = domain_density_ratio(source, target, val)
    assert w.mean() == pytest.approx(1.0)
    assert np.corrcoef(w, val.sum(1))[0, 1] > 0.5
    assert w.min() > 0 and w.max() / w.min() <= 100.0 + 1e-9  # clipped to [0.1, 10] before normalising


def test_density_ratio_is_flat_for_matching_domains() -> None:
    w = domain_density_ratio(_gaussian(400, 3, 0.0, 1), _gaussian(400, 3, 0.0, 2), _gaussian(50, 3, 0.0, 3))
    assert np.abs(w - 1.0).max() < 0.3


def test_density_ratio_errors() -> None:
    with pytest.raises(ConfigError):
        domain_density_ratio(np.zeros((4, 2)), np.ones((4, 2)), np.zeros((2, 2)), clip=(0.0, 1.0))
    with pytest.raises(ValueError, match="width"):
        domain_density_ratio(np.zeros((4, 2)), np.ones((4, 3)), np.zeros((2, 2)))
