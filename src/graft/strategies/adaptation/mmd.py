"""MK-MMD: the multiple-kernel maximum mean discrepancy between source and target features (DAN).

``MMD^2(P, Q) = E k(s, s') + E k(t, t') - 2 E k(s, t)`` is the squared distance between the kernel mean
embeddings of the two distributions; with a characteristic kernel it is zero only when they are equal. DAN sums
Gaussian kernels whose bandwidths are multiples of the mean pairwise squared distance (Long et al., "Learning
Transferable Features with Deep Adaptation Networks", ICML 2015; Gretton et al., "A Kernel Two-Sample Test",
JMLR 2012). Modelled on the Transfer-Learning-Library's ``tllib/alignment/dan.py`` and ``tllib/modules/kernels.py``.

Estimators (``N_s`` source and ``N_t`` target samples):

* quadratic, biased (default): the means over *all* pairs of each block. Always >= 0, exactly 0 (up to rounding)
  when both batches hold the same points, and any batch sizes work.
* quadratic, unbiased (``unbiased=True``): the within-domain means leave out the diagonal ``k(x, x)``. Unbiased,
  but negative about half the time when the domains match (tllib adds ``2 / (N - 1)`` to hide this; we don't).
* linear (``linear=True``): Gretton et al.'s linear-time estimate over consecutive pairs, as tllib's
  ``linear=True``; needs ``N_s == N_t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ..base import register_strategy
from ._common import check_pair
from .base import AdaptationStrategy

__all__ = ["GaussianKernel", "MultipleKernelMaximumMeanDiscrepancy", "mk_mmd", "squared_distances", "DAN"]


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances of the rows of ``x`` (centred first, for precision).

    Shape:
        x: (N, F); output: (N, N), symmetric, zero diagonal.
    """
    x = x - x.mean(dim=0, keepdim=True).detach()
    sq = (x * x).sum(dim=1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())).clamp_min(0.0)
    d2 = 0.5 * (d2 + d2.t())
    return d2 * (1.0 - torch.eye(x.shape[0], dtype=x.dtype, device=x.device))


class GaussianKernel(nn.Module):
    """The Gaussian kernel matrix ``k(x_i, x_j) = exp(-||x_i - x_j||^2 / (2 sigma^2))``.

    Args:
        sigma: a fixed bandwidth; used when ``track_running_stats=False``.
        track_running_stats: set ``sigma^2 = alpha * mean(||x_i - x_j||^2)`` from each batch (no gradient; the
            last value is kept in ``sigma_square``), as DAN and tllib do.
        alpha: the multiple of the mean squared distance used as ``sigma^2``.

    Shape:
        x: (N, F); output: (N, N).
    """

    def __init__(self, sigma: float | None = None, track_running_stats: bool = True, alpha: float = 1.0) -> None:
        super().__init__()
        if not track_running_stats and sigma is None:
            raise ConfigError("GaussianKernel needs a sigma when track_running_stats=False.")
        if sigma is not None and (not math.isfinite(sigma) or sigma <= 0):
            raise ConfigError(f"GaussianKernel sigma must be > 0; got {sigma}.")
        if not math.isfinite(alpha) or alpha <= 0:
            raise ConfigError(f"GaussianKernel alpha must be > 0; got {alpha}.")
        self.sigma = sigma
        self.track_running_stats = track_running_stats
        self.alpha = float(alpha)
        self.sigma_square: float | None = None if sigma is None else float(sigma) ** 2

    def from_squared_distances(self, d2: torch.Tensor) -> torch.Tensor:
        """The kernel matrix from precomputed pairwise squared distances ``(N, N)``."""
        if self.track_running_stats:
            self.sigma_square = max(self.alpha * float(d2.detach().mean()), 1e-12)
        assert self.sigma_square is not None
        return torch.exp(-d2 / (2.0 * self.sigma_square))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_squared_distances(squared_distances(x))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, track_running_stats={self.track_running_stats}, alpha={self.alpha}"


class MultipleKernelMaximumMeanDiscrepancy(nn.Module):
    """The MK-MMD between source and target features: MMD^2 with the sum of ``kernels``.

    Args:
        kernels: modules mapping ``(N, F)`` to an ``(N, N)`` kernel matrix, e.g.
            ``[GaussianKernel(alpha=2.0**k) for k in range(-3, 2)]`` as in DAN.
        linear: the linear-time estimate (needs equal batch sizes).
        unbiased: the unbiased quadratic estimate (ignored when ``linear``); see the module docstring.

    Shape:
        z_s: (N_s, F); z_t: (N_t, F); output: scalar.
    """

    def __init__(self, kernels: Sequence[nn.Module], linear: bool = False, unbiased: bool = False) -> None:
        super().__init__()
        if len(kernels) == 0:
            raise ConfigError("MultipleKernelMaximumMeanDiscrepancy needs at least one kernel.")
        self.kernels = nn.ModuleList(kernels)
        self.linear = linear
        self.unbiased = unbiased

    def kernel_matrix(self, features: torch.Tensor) -> torch.Tensor:
        """The summed kernel matrix ``(N, N)``; distances are computed once when every kernel is Gaussian."""
        if all(isinstance(k, GaussianKernel) for k in self.kernels):
            d2 = squared_distances(features)
            return sum(k.from_squared_distances(d2) for k in self.kernels)  # type: ignore[union-attr,return-value]
        return sum(k(features) for k in self.kernels)  # type: ignore[return-value]

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        check_pair(z_s, z_t, min_rows=2 if self.unbiased and not self.linear else 1, names=("z_s", "z_t"))
        n_s, n_t = z_s.shape[0], z_t.shape[0]
        if self.linear and n_s != n_t:
            raise ValueError(f"the linear MK-MMD estimate needs equal batch sizes; got {n_s} and {n_t}.")
        k = self.kernel_matrix(torch.cat([z_s, z_t], dim=0))
        k_ss, k_tt, k_st = k[:n_s, :n_s], k[n_s:, n_s:], k[:n_s, n_s:]
        if self.linear:
            nxt = torch.roll(torch.arange(n_s, device=k.device), -1)
            idx = torch.arange(n_s, device=k.device)
            terms = k_ss[idx, nxt] + k_tt[idx, nxt] - k_st[idx, nxt] - k_st[nxt, idx]
            return terms.mean()
        if self.unbiased:
            off_ss = (k_ss.sum() - k_ss.diagonal().sum()) / (n_s * (n_s - 1))
            off_tt = (k_tt.sum() - k_tt.diagonal().sum()) / (n_t * (n_t - 1))
            return off_ss + off_tt - 2.0 * k_st.mean()
        return k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean()

    def extra_repr(self) -> str:
        return f"linear={self.linear}, unbiased={self.unbiased}"


def mk_mmd(f_s: torch.Tensor, f_t: torch.Tensor, n_kernels: int = 5, linear: bool = False) -> torch.Tensor:
    """MK-MMD with DAN's kernels: Gaussians with ``sigma^2 = 2**k * mean squared distance``, ``k = -3, -2, ...``
    (``n_kernels=5``: ``k = -3..1``), biased quadratic estimate unless ``linear``.

    Shape:
        f_s: (N_s, F); f_t: (N_t, F); output: scalar.
    """
    if n_kernels < 1:
        raise ConfigError(f"mk_mmd n_kernels must be >= 1; got {n_kernels}.")
    kernels = [GaussianKernel(alpha=2.0**k) for k in range(-3, -3 + n_kernels)]
    return MultipleKernelMaximumMeanDiscrepancy(kernels, linear=linear)(f_s, f_t)


@register_strategy
class DAN(AdaptationStrategy):
    """Deep adaptation network (Long et al., ICML 2015): multi-kernel MMD between the bottleneck features."""

    name: ClassVar[str] = "mmd"

    def adaptation_loss(
        self, extra: nn.ModuleDict, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor
    ) -> torch.Tensor:
        return mk_mmd(f_s, f_t)
