"""AdaBN: target BatchNorm statistics, nothing else changed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.errors import ConfigError
from graft.strategies.adaptation import adapt_batchnorm, batchnorm_layers


class _Probe(nn.Module):
    """Records its training flag and whether gradients were enabled in each call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return x


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.BatchNorm2d(3),
        nn.Conv2d(3, 4, 1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        _Probe(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 2),
    )


def _target_batches(n: int = 12, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [5.0 + 2.0 * torch.randn(16, 3, 4, 4, generator=g) for _ in range(n)]


def test_running_stats_match_the_target() -> None:
    model = _model()
    bn = model[0]
    assert isinstance(bn, nn.BatchNorm2d)
    with torch.no_grad():  # pretend source statistics
        bn.running_mean.fill_(-3.0)
        bn.running_var.fill_(0.25)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.train()
    model[4].eval()
    modes = {name: m.training for name, m in model.named_modules()}

    assert adapt_batchnorm(model, _target_batches()) == 2

    torch.testing.assert_close(bn.running_mean, torch.full((3,), 5.0), atol=0.1, rtol=0)
    torch.testing.assert_close(bn.running_var, torch.full((3,), 4.0), atol=0.3, rtol=0)
    assert bn.num_batches_tracked.item() == 12
    for name, p in model.named_parameters():
        assert torch.equal(p, params[name]), name
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(m.momentum == 0.1 for m in batchnorm_layers(model))
    # the rest of the model ran in eval mode (no dropout), without gradients
    assert model[5].calls and all(call == (False, False) for call in model[5].calls)


def test_cumulative_average_weighs_batches_equally() -> None:
    bn = nn.BatchNorm1d(2)
    a, b = torch.randn(8, 2), torch.randn(32, 2) + 10.0
    adapt_batchnorm(bn, [a, b])
    torch.testing.assert_close(bn.running_mean, (a.mean(0) + b.mean(0)) / 2)
    torch.testing.assert_close(bn.running_var, (a.var(0) + b.var(0)) / 2)
    adapt_batchnorm(bn, [a, b], momentum=1.0)  # exponential average with momentum 1: the last batch only
    torch.testing.assert_close(bn.running_mean, b.mean(0))
    assert bn.momentum == 0.1


def test_tuple_and_dict_batches() -> None:
    class DictModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.bn(batch["x"])

    x = torch.randn(10, 3) + 2.0
    model = DictModel()
    assert adapt_batchnorm(model, [{"x": x}], device="cpu") == 1
    torch.testing.assert_close(model.bn.running_mean, x.mean(0))
    bn = nn.BatchNorm1d(3)
    adapt_batchnorm(bn, [(x, torch.zeros(10, dtype=torch.long))])  # (inputs, labels) from a DataLoader
    torch.testing.assert_close(bn.running_mean, x.mean(0))


def test_errors_leave_the_model_unchanged() -> None:
    with pytest.raises(ConfigError, match="BatchNorm"):
        adapt_batchnorm(nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3)), [torch.randn(2, 3)])
    with pytest.raises(ConfigError, match="BatchNorm"):
        adapt_batchnorm(nn.BatchNorm1d(3, track_running_stats=False), [torch.randn(2, 3)])
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.running_mean.fill_(7.0)
    with pytest.raises(ConfigError, match="no batches"):
        adapt_batchnorm(bn, [])
    torch.testing.assert_close(bn.running_mean, torch.full((3,), 7.0))
    with pytest.raises(ConfigError, match="momentum"):
        adapt_batchnorm(bn, [torch.randn(2, 3)], momentum=0.0)


def test_modes_restored_when_the_forward_fails() -> None:
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(4, 2)).eval()
    with pytest.raises(RuntimeError):
        adapt_batchnorm(model, [torch.randn(5, 3)])
    assert not any(m.training for m in model.modules())
    assert model[0].momentum == 0.1
