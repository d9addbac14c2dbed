"""DANN and CDAN: gradient signs, a discriminator that learns, shapes, randomized maps, entropy conditioning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.errors import ConfigError
from graft.strategies.adaptation import (
    ConditionalDomainAdversarialLoss,
    DomainAdversarialLoss,
    DomainDiscriminator,
    GradientReverseLayer,
    MultiLinearMap,
    RandomizedMultiLinearMap,
    entropy_weights,
)


def _shifted_gaussians(n: int = 32, dim: int = 4, shift: float = 2.0, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g) + shift


# -- discriminator ----------------------------------------------------------------------------------------------
def test_discriminator_shapes_and_batch_of_one() -> None:
    disc = DomainDiscriminator(6, hidden=8, n_layers=2)
    assert disc(torch.randn(5, 6)).shape == (5, 1)
    assert disc.train()(torch.randn(1, 6)).shape == (1, 1)  # no BatchNorm: batches of one work in training
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    assert sum(isinstance(m, nn.Linear) for m in DomainDiscriminator(6, hidden=8, n_layers=0).modules()) == 1
    with pytest.raises(ConfigError):
        DomainDiscriminator(6, n_layers=-1)
    with pytest.raises(ConfigError):
        DomainDiscriminator(0)


# -- DANN -------------------------------------------------------------------------------------------------------
def _dann_grads(grl: nn.Module) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Gradients of the DANN loss w.r.t. a Linear feature extractor and the discriminator's first layer."""
    torch.manual_seed(0)
    extractor = nn.Linear(3, 4)
    disc = DomainDiscriminator(4, hidden=8).eval()  # eval: no dropout, the same function in every call
    x_s, x_t = _shifted_gaussians(8, 3)
    loss = DomainAdversarialLoss(disc, grl=grl)(extractor(x_s), extractor(x_t))
    loss.backward()
    first = disc[0]
    assert isinstance(first, nn.Linear)
    assert extractor.weight.grad is not None and first.weight.grad is not None
    return extractor.weight.grad, first.weight.grad, loss.item()


def test_dann_reverses_the_feature_gradient_only() -> None:
    feat_id, disc_id, loss_id = _dann_grads(nn.Identity())
    feat_rev, disc_rev, loss_rev = _dann_grads(GradientReverseLayer(1.0))
    feat_zero, disc_zero, _ = _dann_grads(GradientReverseLayer(0.0))
    assert loss_rev == pytest.approx(loss_id)
    assert feat_id.abs().sum() > 0
    torch.testing.assert_close(feat_rev, -feat_id)  # the features are pushed to *increase* the domain loss
    torch.testing.assert_close(disc_rev, disc_id)  # the discriminator still minimises it
    torch.testing.assert_close(disc_zero, disc_id)
    assert torch.count_nonzero(feat_zero) == 0


def test_dann_default_grl_starts_at_zero() -> None:
    f_s = torch.randn(4, 3, requires_grad=True)
    loss_fn = DomainAdversarialLoss(DomainDiscriminator(3, hidden=8))
    loss_fn(f_s, torch.randn(4, 3)).backward()
    assert f_s.grad is not None and torch.count_nonzero(f_s.grad) == 0
    assert loss_fn.grl.iter_num == 1  # type: ignore[union-attr]


def test_discriminator_learns_to_separate_shifted_gaussians() -> None:
    torch.manual_seed(0)
    f_s, f_t = _shifted_gaussians(32, 4, shift=2.0)
    disc = DomainDiscriminator(4, hidden=16, n_layers=1, dropout=0.0)
    loss_fn = DomainAdversarialLoss(disc, grl=GradientReverseLayer(1.0))
    opt = torch.optim.Adam(disc.parameters(), lr=0.02)
    with torch.no_grad():
        first_loss = loss_fn(f_s, f_t).item()
    first_acc = loss_fn.domain_accuracy
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(f_s, f_t)
        loss.backward()
        opt.step()
    with torch.no_grad():
        last_loss = loss_fn(f_s, f_t).item()
    assert 0.0 <= first_acc <= 1.0
    assert loss_fn.domain_accuracy > max(first_acc, 0.9)
    assert last_loss < 0.5 * first_loss


def test_dann_weights_reduction_and_unequal_batches() -> None:
    torch.manual_seed(0)
    disc = DomainDiscriminator(3, hidden=8).eval()
    f_s, f_t = torch.randn(5, 3), torch.randn(7, 3)
    per_sample = DomainAdversarialLoss(disc, grl=nn.Identity(), reduction="none")(f_s, f_t)
    assert per_sample.shape == (12,) and (per_sample > 0).all()
    mean = DomainAdversarialLoss(disc, grl=nn.Identity())(f_s, f_t)
    torch.testing.assert_close(mean, 0.5 * (per_sample[:5].mean() + per_sample[5:].mean()))
    total = DomainAdversarialLoss(disc, grl=nn.Identity(), reduction="sum")(f_s, f_t)
    torch.testing.assert_close(total, per_sample.sum())
    # zero source weights leave only the target half of the mean
    only_t = DomainAdversarialLoss(disc, grl=nn.Identity())(f_s, f_t, w_s=torch.zeros(5))
    torch.testing.assert_close(only_t, 0.5 * per_sample[5:].mean())
    doubled = DomainAdversarialLoss(disc, grl=nn.Identity())(f_s, f_t, torch.full((5, 1), 2.0), torch.full((7,), 2.0))
    torch.testing.assert_close(doubled, 2 * mean)
    with pytest.raises(ValueError, match="w_s"):
        DomainAdversarialLoss(disc)(f_s, f_t, w_s=torch.ones(3))
    with pytest.raises(ValueError):
        DomainAdversarialLoss(disc)(f_s, torch.randn(7, 4))
    with pytest.raises(ConfigError):
        DomainAdversarialLoss(disc, reduction="avg")


# -- CDAN -------------------------------------------------------------------------------------------------------
def test_multilinear_map_is_the_flattened_outer_product() -> None:
    f, g = torch.randn(3, 4), torch.softmax(torch.randn(3, 2), dim=1)
    out = MultiLinearMap()(f, g)
    assert out.shape == (3, 8)
    torch.testing.assert_close(out.view(3, 2, 4), g[:, :, None] * f[:, None, :])


def test_randomized_map_approximates_multilinear_inner_products() -> None:
    torch.manual_seed(0)
    f, g = torch.randn(2, 4), torch.softmax(torch.randn(2, 3), dim=1)
    exact = MultiLinearMap()(f, g)
    rand = RandomizedMultiLinearMap(4, 3, output_dim=4096)
    approx = rand(f, g)
    assert approx.shape == (2, 4096)
    assert {"Rf", "Rg"} <= set(rand.state_dict())
    torch.testing.assert_close(approx @ approx.t(), exact @ exact.t(), atol=0.15, rtol=0.15)


@pytest.mark.parametrize("randomized", [False, True])
@pytest.mark.parametrize("entropy_conditioning", [False, True])
def test_cdan_output_is_finite_and_trains_features_only(randomized: bool, entropy_conditioning: bool) -> None:
    torch.manual_seed(0)
    n_classes, width = 3, 5
    disc = DomainDiscriminator(64 if randomized else n_classes * width, hidden=8)
    loss_fn = ConditionalDomainAdversarialLoss(
        disc,
        entropy_conditioning=entropy_conditioning,
        randomized=randomized,
        num_classes=n_classes,
        features_dim=width,
        randomized_dim=64,
        grl=GradientReverseLayer(1.0),
    )
    f_s, f_t = torch.randn(6, width, requires_grad=True), torch.randn(4, width, requires_grad=True)
    g_s, g_t = torch.randn(6, n_classes, requires_grad=True), torch.randn(4, n_classes, requires_grad=True)
    loss = loss_fn(g_s, f_s, g_t, f_t)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    assert 0.0 <= loss_fn.domain_accuracy <= 1.0
    loss.backward()
    assert f_s.grad is not None and f_s.grad.abs().sum() > 0
    assert g_s.grad is None  # predictions are detached, as in the paper's code


def test_cdan_entropy_weights_sum_to_each_domain_size() -> None:
    torch.manual_seed(0)
    disc = DomainDiscriminator(6, hidden=8).eval()
    f_s, f_t = torch.randn(5, 3), torch.randn(7, 3)
    g_s = torch.cat([torch.tensor([[9.0, -9.0]]), torch.zeros(4, 2)])  # one confident row, four uniform ones
    g_t = torch.randn(7, 2)
    plain = ConditionalDomainAdversarialLoss(disc, grl=nn.Identity(), reduction="none")(g_s, f_s, g_t, f_t)
    weighted = ConditionalDomainAdversarialLoss(disc, entropy_conditioning=True, grl=nn.Identity(), reduction="none")(
        g_s, f_s, g_t, f_t
    )
    w = weighted / plain
    torch.testing.assert_close(w[:5].sum(), torch.tensor(5.0))
    torch.testing.assert_close(w[5:].sum(), torch.tensor(7.0))
    assert w[0] > w[1] and torch.allclose(w[1:5], w[1].expand(4))  # confident rows weigh more
    torch.testing.assert_close(w[:5], entropy_weights(torch.softmax(g_s, dim=1)))


def test_entropy_weights_range() -> None:
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    w = entropy_weights(p)
    assert w.sum().item() == pytest.approx(2.0)
    raw = 1 + torch.exp(-torch.tensor([0.0, torch.log(torch.tensor(2.0)).item()]))
    torch.testing.assert_close(w, raw * 2 / raw.sum(), atol=1e-4, rtol=1e-4)


def test_cdan_settings_and_shape_errors() -> None:
    disc = DomainDiscriminator(6, hidden=8)
    with pytest.raises(ConfigError, match="num_classes"):
        ConditionalDomainAdversarialLoss(disc, randomized=True)
    loss_fn = ConditionalDomainAdversarialLoss(disc, num_classes=2, features_dim=3)
    with pytest.raises(ValueError, match="classes"):
        loss_fn(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="rows"):
        loss_fn(torch.randn(3, 2), torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 3))
