"""How far apart two domains are, and how much each source sample resembles the target.

* :func:`a_distance`: the proxy A-distance ``2 (1 - 2 err)`` of a linear domain classifier trained on half of a
  balanced sample and tested on the other half (Ben-David et al., "Analysis of Representations for Domain
  Adaptation", NeurIPS 2007). 0: indistinguishable domains; 2: perfectly separable.
* :func:`domain_density_ratio`: importance weights ``w(x) = p_t(x) / p_s(x)`` of source validation samples from a
  probabilistic domain classifier, for importance-weighted validation (Sugiyama et al., "Covariate Shift
  Adaptation by Importance Weighted Cross Validation", JMLR 2007) and Deep Embedded Validation (You et al.,
  "Towards Accurate Model Selection in Deep Unsupervised Domain Adaptation", ICML 2019).

Both take torch tensors or NumPy arrays of shape (N, F) and run scikit-learn on the CPU.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...errors import ConfigError

__all__ = ["a_distance", "domain_density_ratio"]


def _as_2d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, F) with N >= 1; got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _domain_classifier(c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000, random_state=seed))


def _fit_quietly(clf: Any, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(x, y)


def a_distance(f_s: Any, f_t: Any, *, seed: int = 0, c: float = 1.0) -> float:
    """The proxy A-distance between source and target features, in [0, 2].

    ``min(N_s, N_t)`` samples are drawn from each domain (balanced), split 50/50 (stratified) into a training and
    a test half; a standardised logistic regression learns the domain on the first half and its test error
    ``err`` on the second gives ``2 (1 - 2 err)``. Errors above 0.5 (chance) count as 0.5, so the result is >= 0.

    Args:
        f_s: source features, shape (N_s, F).
        f_t: target features, shape (N_t, F).
        seed: seeds the subsampling, the split and the classifier.
        c: the inverse L2 regularisation strength of the logistic regression.

    Raises:
        ValueError: if the feature widths differ or a domain has fewer than 2 samples.
    """
    from sklearn.model_selection import train_test_split

    xs, xt = _as_2d(f_s, "f_s"), _as_2d(f_t, "f_t")
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(f"f_s and f_t must have the same width; got {xs.shape[1]} and {xt.shape[1]}.")
    n = min(len(xs), len(xt))
    if n < 2:
        raise ValueError(f"a_distance needs at least 2 samples per domain; got {len(xs)} and {len(xt)}.")
    rng = np.random.default_rng(seed)
    xs = xs[rng.choice(len(xs), n, replace=False)]
    xt = xt[rng.choice(len(xt), n, replace=False)]
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    clf = _fit_quietly(_domain_classifier(c, seed), x_train, y_train)
    err = min(float(np.mean(clf.predict(x_test) != y_test)), 0.5)
    return 2.0 * (1.0 - 2.0 * err)


def domain_density_ratio(
    f_s_train: Any,
    f_t: Any,
    f_s_val: Any,
    *,
    clip: tuple[float, float] = (0.1, 10.0),
    seed: int = 0,
    c: float = 1.0,
) -> np.ndarray:
    """Importance weights ``w(x) = p_t(x) / p_s(x)`` of the source validation samples.

    A standardised logistic regression learns source (``f_s_train``) against target (``f_t``); by Bayes' rule
    ``p_t(x) / p_s(x) = (N_s / N_t) * P(target | x) / P(source | x)``. The weights are clipped to ``clip`` and
    then normalised to mean 1 (so after normalisation a few may lie slightly outside ``clip``). Weighting the
    validation losses by them estimates the target risk (IWCV; DEV adds a control variate on top).

    Args:
        f_s_train: source features the classifier learns from, shape (N_s, F).
        f_t: target features, shape (N_t, F).
        f_s_val: source validation features to weigh, shape (N_v, F); may overlap ``f_s_train``, but held-out
            features give less over-confident weights.
        clip: the (low, high) bounds applied before normalisation.
        seed: seeds the classifier.
        c: the inverse L2 regularisation strength of the logistic regression (smaller: smoother weights).

    Returns:
        ``(N_v,)`` float64 weights with mean 1.
    """
    lo, hi = clip
    if not 0.0 < lo <= hi:
        raise ConfigError(f"domain_density_ratio clip must satisfy 0 < low <= high; got {clip}.")
    xs, xt, xv = _as_2d(f_s_train, "f_s_train"), _as_2d(f_t, "f_t"), _as_2d(f_s_val, "f_s_val")
    if not xs.shape[1] == xt.shape[1] == xv.shape[1]:
        raise ValueError(
            f"f_s_train, f_t and f_s_val must have the same width; got {xs.shape[1]}, {xt.shape[1]}, {xv.shape[1]}."
        )
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.zeros(len(xs), dtype=np.int64), np.ones(len(xt), dtype=np.int64)])
    clf = _fit_quietly(_domain_classifier(c, seed), x, y)
    # log-odds of "target" avoid dividing by probabilities that underflow to 0
    log_odds = clf.decision_function(xv)
    w = np.exp(np.clip(log_odds + np.log(len(xs) / len(xt)), np.log(lo), np.log(hi)))
    return w / w.mean()
