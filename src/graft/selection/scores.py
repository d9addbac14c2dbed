"""Transferability scores: how well a frozen backbone's features suit a labelled target task, without training it.

Every score reads the features ``(N, D)`` of the target's labelled examples (and, for LEEP and NCE, the source
classifier's probabilities ``(N, Z)`` on them); higher is better for all of them.

* :func:`logme` — the log marginal evidence of a Bayesian linear model on the features, per class one-vs-rest, by
  fixed-point iteration (You et al., "LogME", ICML 2021).
* :func:`leep` — the log expected empirical prediction of the source classifier's label distribution mapped to the
  target labels (Nguyen et al., ICML 2020).
* :func:`nce` — the negative conditional entropy of target labels given the source classifier's hard labels (Tran et
  al., ICCV 2019).
* :func:`hscore` — ``tr(cov(f)^-1 cov(E[f|y]))`` with a Ledoit-Wolf shrunk covariance (Bao et al. 2019; shrinkage:
  Ibrahim et al., ICLR 2023).
* :func:`linear_probe` — held-out accuracy of a logistic regression on the features, the plain baseline.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logme", "leep", "nce", "hscore", "linear_probe", "SCORES"]


def logme(features: np.ndarray, y: np.ndarray) -> float:
    """Mean over classes of the per-example log evidence of ``one-hot(y)[:, k] ~ features``."""
    f = np.asarray(features, np.float64)
    y = np.asarray(y)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for k in np.unique(y):
        t_k = (y == k).astype(np.float64)
        x = u.T @ t_k
        x2 = x**2
        res_x2 = float(t_k @ t_k - x2.sum())  # the part of the target outside the features' span
        alpha, beta = 1.0, 1.0
        for _ in range(50):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
            res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - logdet / 2
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def leep(source_proba: np.ndarray, y: np.ndarray) -> float:
    """``mean_i log sum_z P(y_i | z) theta_z(x_i)`` with ``P(y | z)`` estimated from the soft source labels."""
    theta = np.asarray(source_proba, np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    joint = np.stack([theta[y == c].sum(0) for c in classes], 1) / len(y)  # (Z, C)
    cond = joint / np.maximum(joint.sum(1, keepdims=True), 1e-12)  # P(y | z)
    eep = theta @ cond  # (N, C)
    idx = np.searchsorted(classes, y)
    return float(np.mean(np.log(np.maximum(eep[np.arange(len(y)), idx], 1e-12))))


def nce(source_proba: np.ndarray, y: np.ndarray) -> float:
    """``-H(Y | Z)`` with ``Z`` the source classifier's arg-max label."""
    z = np.asarray(source_proba).argmax(1)
    y = np.asarray(y)
    n = len(y)
    h = 0.0
    for zv in np.unique(z):
        mask = z == zv
        _, counts = np.unique(y[mask], return_counts=True)
        p = counts / mask.sum()
        h -= mask.sum() / n * float((p * np.log(p)).sum())
    return -h


def hscore(features: np.ndarray, y: np.ndarray) -> float:
    """``tr(cov(f)^-1 cov(E[f|y]))``, the covariance shrunk (Ledoit-Wolf) so that few examples in many dimensions
    stay well conditioned."""
    from sklearn.covariance import ledoit_wolf

    f = np.asarray(features, np.float64)
    f = f - f.mean(0)
    y = np.asarray(y)
    cov, _ = ledoit_wolf(f, assume_centered=True)  # the shrunk covariance alone (no precision matrix)
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(0)
    between = means.T @ means / len(f)
    return float(np.trace(np.linalg.solve(cov, between)))


def linear_probe(features: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    """Mean held-out accuracy of a logistic regression over 3 stratified folds (fewer when a class is smaller)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    folds = int(min(3, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    if folds < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-3, max_iter=500))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, y, cv=cv).mean())


#: name -> (function, needs the source classifier's probabilities)
SCORES = {
    "logme": (logme, False),
    "leep": (leep, True),
    "nce": (nce, True),
    "hscore": (hscore, False),
    "linear_probe": (linear_probe, False),
}
