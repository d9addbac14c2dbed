"""Classical domain adaptation around any scikit-learn estimator: importance weighting, CORAL, TrAdaBoost.

When a model trained on one population (the source) is used on another (the target), these methods reuse the
source labels for the target without training a network:

* :class:`ImportanceWeighting` fits the estimator with each source row weighted by the density ratio
  ``p_target(x) / p_source(x)``, estimated by a domain classifier, kernel mean matching (KMM; Huang et al., NIPS
  2006) or KLIEP (Sugiyama et al., NIPS 2007);
* :class:`CORAL` re-colours the source features with the target covariance (Sun et al., AAAI 2016);
* :class:`TrAdaBoost` boosts with a few target labels, down-weighting source rows the target disagrees with (Dai et
  al., ICML 2007).

Inputs are numeric matrices (``(N, F)``; encode tables first, e.g. with a scikit-learn ``ColumnTransformer``).

Example:
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = ImportanceWeighting(LogisticRegression(), method="kliep")  # doctest: +SKIP
    >>> clf.fit(X_src, y_src, X_target=X_tgt)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone

from .errors import ConfigError, DataError

__all__ = ["ImportanceWeighting", "CORAL", "TrAdaBoost", "density_ratio"]

METHODS = ("classifier", "kmm", "kliep")


def _matrix(X: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{what} must be numeric (N, F); encode categorical columns first (e.g. OneHotEncoder)."
        ) from None
    if arr.ndim != 2 or len(arr) == 0:
        raise DataError(f"{what} must be a non-empty 2-D array (N, F); got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise DataError(f"{what} has NaN or infinite values; impute them first.")
    return arr


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T, 0.0)


def _median_width(Xs: np.ndarray, Xt: np.ndarray, rng: np.random.Generator) -> float:
    """The median distance between sampled rows of both domains (the usual kernel width)."""
    pool = np.vstack([Xs[rng.choice(len(Xs), min(500, len(Xs)), replace=False)], Xt[: min(500, len(Xt))]])
    d = np.sqrt(_sq_dists(pool, pool))
    return float(np.median(d[d > 0])) if (d > 0).any() else 1.0


def _kernel_mean(A: np.ndarray, B: np.ndarray, gamma: float, chunk: int = 2048) -> np.ndarray:
    """``mean_j exp(-gamma |a_i - b_j|^2)`` for every row of A, in chunks (memory ``chunk x len(B)``)."""
    out = np.empty(len(A))
    for s in range(0, len(A), chunk):
        out[s : s + chunk] = np.exp(-gamma * _sq_dists(A[s : s + chunk], B)).mean(1)
    return out


def _kmm(Xs: np.ndarray, Xt: np.ndarray, gamma: float, B: float, eps: float, block: int, seed: int) -> np.ndarray:
    """Kernel mean matching in blocks of ``block`` source rows (memory ``O(block^2)`` instead of ``O(n^2)``): in each
    block, weights in ``[0, B]`` with mean ``1 ± eps`` make the block's kernel mean match the target's."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    Xt_ref = Xt[rng.choice(len(Xt), min(len(Xt), 2 * block), replace=False)]
    order = rng.permutation(len(Xs))
    w = np.empty(len(Xs))
    for s in range(0, len(Xs), block):
        idx = order[s : s + block]
        m = len(idx)
        K = np.exp(-gamma * _sq_dists(Xs[idx], Xs[idx]))
        kappa = m * _kernel_mean(Xs[idx], Xt_ref, gamma)
        penalty = 10.0 * m

        def f(
            beta: np.ndarray, K: np.ndarray = K, kappa: np.ndarray = kappa, m: int = m, penalty: float = penalty
        ) -> tuple[float, np.ndarray]:
            excess = max(0.0, abs(beta.sum() - m) - m * eps)
            sign = np.sign(beta.sum() - m)
            Kb = K @ beta
            value = 0.5 * beta @ Kb - kappa @ beta + penalty * excess**2 / m
            grad = Kb - kappa + 2 * penalty * excess * sign / m
            return float(value), grad

        res = minimize(f, np.ones(m), jac=True, method="L-BFGS-B", bounds=[(0.0, B)] * m, options={"maxiter": 500})
        w[idx] = res.x
    return w


def _kliep(Xs: np.ndarray, Xt: np.ndarray, widths: list[float], centers: int, seed: int) -> np.ndarray:
    """KLIEP: ``w(x) = sum_l a_l k(x, c_l)`` (centres: target rows), maximising the target log-likelihood subject to
    a mean source weight of 1, ``a >= 0``; the kernel width is chosen by likelihood cross-validation."""
    rng = np.random.default_rng(seed)
    C = Xt[rng.choice(len(Xt), min(centers, len(Xt)), replace=False)]

    def fit(Kt: np.ndarray, Ks_mean: np.ndarray) -> np.ndarray:
        a = np.ones(Kt.shape[1])
        a /= Ks_mean @ a
        step = 1e-3
        for _ in range(2000):
            grad = Kt.T @ (1.0 / np.maximum(Kt @ a, 1e-12))
            a_new = np.maximum(a + step * grad / len(Kt), 0)
            a_new += (1 - Ks_mean @ a_new) * Ks_mean / (Ks_mean @ Ks_mean)
            a_new = np.maximum(a_new, 0)
            a_new /= max(Ks_mean @ a_new, 1e-12)
            if np.abs(a_new - a).max() < 1e-7:
                a = a_new
                break
            a = a_new
            step = min(step * 1.1, 1.0)
        return a

    best, best_score = widths[0], -np.inf
    folds = np.array_split(rng.permutation(len(Xt)), 5)
    for width in widths:
        gamma = 1.0 / (2 * width**2)
        Ks_mean = np.exp(-gamma * _sq_dists(Xs, C)).mean(0) if len(Xs) <= 20000 else _chunked_mean(Xs, C, gamma)
        Kt_all = np.exp(-gamma * _sq_dists(Xt, C))
        score = 0.0
        for k in range(len(folds)):
            held = folds[k]
            train = np.concatenate([folds[j] for j in range(len(folds)) if j != k])
            a = fit(Kt_all[train], Ks_mean)
            score += float(np.mean(np.log(np.maximum(Kt_all[held] @ a, 1e-12))))
        if score > best_score:
            best, best_score = width, score
    gamma = 1.0 / (2 * best**2)
    Ks = np.exp(-gamma * _sq_dists(Xs, C)) if len(Xs) <= 20000 else None
    Ks_mean = Ks.mean(0) if Ks is not None else _chunked_mean(Xs, C, gamma)
    a = fit(np.exp(-gamma * _sq_dists(Xt, C)), Ks_mean)
    if Ks is not None:
        return Ks @ a
    return np.concatenate([np.exp(-gamma * _sq_dists(Xs[s : s + 4096], C)) @ a for s in range(0, len(Xs), 4096)])


def _chunked_mean(Xs: np.ndarray, C: np.ndarray, gamma: float) -> np.ndarray:
    total = np.zeros(len(C))
    for s in range(0, len(Xs), 4096):
        total += np.exp(-gamma * _sq_dists(Xs[s : s + 4096], C)).sum(0)
    return total / len(Xs)


def _classifier_ratio(Xs: np.ndarray, Xt: np.ndarray, seed: int) -> np.ndarray:
    """``p(target|x) / p(source|x) * n_s / n_t`` from a logistic-regression domain classifier on the features and
    their squares (a Gaussian shift is linear in those), cross-fitted so no row scores itself."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.vstack([Xs, Xt])
    X = np.hstack([X, X**2])
    d = np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    p = cross_val_predict(model, X, d, cv=5, method="predict_proba")[: len(Xs), 1]
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return p / (1 - p) * len(Xs) / len(Xt)


def density_ratio(
    X_source: Any,
    X_target: Any,
    *,
    method: str = "kliep",
    kernel_width: float | None = None,
    max_weight: float = 1000.0,
    block: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Importance weights ``w_i ≈ p_target(x_i) / p_source(x_i)`` of the source rows (mean ≈ 1).

    Args:
        method: ``classifier`` (a domain classifier), ``kmm`` or ``kliep``.
        kernel_width: the Gaussian kernel width (KMM, KLIEP); default: the median distance (KMM) or chosen by
            likelihood cross-validation around it (KLIEP).
        max_weight: the upper bound of a weight (KMM's ``B``; a clip for the others).
        block: KMM solves blocks of this many source rows (memory ``O(block^2)``, not ``O(n^2)``).
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got '{method}'.")
    Xs, Xt = _matrix(X_source, "X_source"), _matrix(X_target, "X_target")
    if Xs.shape[1] != Xt.shape[1]:
        raise DataError(f"X_source has {Xs.shape[1]} features and X_target {Xt.shape[1]}; they must match.")
    mu, sd = Xs.mean(0), Xs.std(0)
    sd[sd < 1e-12] = 1.0
    Xs, Xt = (Xs - mu) / sd, (Xt - mu) / sd
    rng = np.random.default_rng(seed)
    width = kernel_width or _median_width(Xs, Xt, rng)
    if method == "classifier":
        w = _classifier_ratio(Xs, Xt, seed)
    elif method == "kmm":
        w = _kmm(Xs, Xt, 1.0 / (2 * width**2), max_weight, eps=0.01, block=block, seed=seed)
    else:
        widths = [width] if kernel_width else [width * f for f in (0.25, 0.5, 1.0, 2.0)]
        w = _kliep(Xs, Xt, widths, centers=100, seed=seed)
    w = np.clip(w, 0.0, max_weight)
    return w / max(w.mean(), 1e-12)


class _Wrapper(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A wrapper whose fitted ``estimator_`` predicts the rows as they are."""

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(_matrix(X, "X"))  # type: ignore[attr-defined, no-any-return]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(_matrix(X, "X"))  # type: ignore[attr-defined, no-any-return]


class ImportanceWeighting(_Wrapper):
    """Fit ``estimator`` on the source rows weighted by the estimated density ratio target / source.

    Args:
        estimator: any scikit-learn classifier whose ``fit`` takes ``sample_weight``.
        method: ``classifier``, ``kmm`` or ``kliep`` (see :func:`density_ratio`).
        kernel_width, max_weight, block, seed: as for :func:`density_ratio`.

    Attributes:
        weights_: the source rows' weights (mean 1).
    """

    def __init__(
        self,
        estimator: Any,
        method: str = "kliep",
        *,
        kernel_width: float | None = None,
        max_weight: float = 1000.0,
        block: int = 2000,
        seed: int = 0,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.kernel_width = kernel_width
        self.max_weight = max_weight
        self.block = block
        self.seed = seed

    def fit(self, X: Any, y: Any, X_target: Any = None) -> ImportanceWeighting:
        if X_target is None:
            raise ConfigError("ImportanceWeighting.fit needs X_target: unlabelled rows of the target population.")
        self.weights_ = density_ratio(
            X,
            X_target,
            method=self.method,
            kernel_width=self.kernel_width,
            max_weight=self.max_weight,
            block=self.block,
            seed=self.seed,
        )
        self.estimator_ = clone(self.estimator).fit(_matrix(X, "X"), y, sample_weight=self.weights_)
        self.classes_ = self.estimator_.classes_
        return self


def _sqrtm(C: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh(C)
    vals = np.maximum(vals, 1e-12)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


class CORAL(_Wrapper):
    """Fit ``estimator`` on source features whitened with the source covariance and re-coloured with the target's
    (both regularised by ``+ I``, as in the paper); target rows are predicted as they are."""

    def __init__(self, estimator: Any, *, regularization: float = 1.0) -> None:
        self.estimator = estimator
        self.regularization = regularization

    def fit(self, X: Any, y: Any, X_target: Any = None) -> CORAL:
        if X_target is None:
            raise ConfigError("CORAL.fit needs X_target: unlabelled rows of the target population.")
        Xs, Xt = _matrix(X, "X"), _matrix(X_target, "X_target")
        eye = self.regularization * np.eye(Xs.shape[1])
        self.transform_ = _sqrtm(np.cov(Xs, rowvar=False) + eye, inverse=True) @ _sqrtm(np.cov(Xt, rowvar=False) + eye)
        mean_s = Xs.mean(0)
        self.estimator_ = clone(self.estimator).fit((Xs - mean_s) @ self.transform_ + Xt.mean(0), y)
        self.classes_ = self.estimator_.classes_
        return self


class TrAdaBoost(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Boosting over source and a few labelled target rows (binary labels): misclassified target rows gain weight
    as in AdaBoost, misclassified source rows lose it; predictions vote with the later half of the rounds.

    Args:
        estimator: a classifier taking ``sample_weight`` (e.g. a shallow decision tree).
        n_estimators: boosting rounds.
    """

    def __init__(self, estimator: Any, *, n_estimators: int = 20) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators

    def fit(self, X: Any, y: Any, X_target: Any = None, y_target: Any = None) -> TrAdaBoost:
        if X_target is None or y_target is None:
            raise ConfigError("TrAdaBoost.fit needs X_target and y_target: a few labelled target rows.")
        Xs, Xt = _matrix(X, "X"), _matrix(X_target, "X_target")
        ys, yt = np.asarray(y), np.asarray(y_target)
        self.classes_ = np.unique(np.r_[ys, yt])
        if len(self.classes_) != 2:
            raise DataError(f"TrAdaBoost handles two classes; got {len(self.classes_)}.")
        Xall = np.vstack([Xs, Xt])
        yall = (np.r_[ys, yt] == self.classes_[1]).astype(int)
        n, m = len(Xs), len(Xt)
        # the few target rows start with the source's total weight, so the target error can steer the rounds
        w = np.r_[np.ones(n), np.full(m, n / m)]
        beta = 1.0 / (1.0 + np.sqrt(2.0 * np.log(n) / self.n_estimators))
        self.estimators_, self.betas_ = [], []
        for _ in range(self.n_estimators):
            p = w / w.sum()
            est = clone(self.estimator).fit(Xall, yall, sample_weight=p)
            wrong = (est.predict(Xall) != yall).astype(float)
            err = float((p[n:] * wrong[n:]).sum() / p[n:].sum())
            err = min(max(err, 1e-10), 0.499)
            beta_t = err / (1 - err)
            w[:n] *= beta ** wrong[:n]
            w[n:] *= beta_t ** (-wrong[n:])
            self.estimators_.append(est)
            self.betas_.append(beta_t)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = _matrix(X, "X")
        half = len(self.estimators_) // 2
        score = np.zeros(len(X))
        total = 0.0
        for est, b in zip(self.estimators_[half:], self.betas_[half:]):
            score += -np.log(b) * est.predict(X)
            total += -np.log(b)
        return score / max(total, 1e-12)

    def predict_proba(self, X: Any) -> np.ndarray:
        s = self.decision_function(X)
        return np.c_[1 - s, s]

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.decision_function(X) >= 0.5).astype(int)]
