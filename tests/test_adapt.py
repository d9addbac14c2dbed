"""Classical domain adaptation around scikit-learn estimators (graft.adapt)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from graft.adapt import CORAL, ImportanceWeighting, TrAdaBoost, density_ratio
from graft.errors import ConfigError, DataError


def _shifted(n_s: int = 2000, n_t: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source N(0, I), target N(mu, I): the true ratio is exp(mu.x - |mu|^2 / 2)."""
    rng = np.random.default_rng(seed)
    mu = np.array([0.5, 0.5])
    Xs, Xt = rng.normal(0, 1, (n_s, 2)), rng.normal(0, 1, (n_t, 2)) + mu
    true = np.exp(Xs @ mu - mu @ mu / 2)
    return Xs, Xt, true / true.mean()


@pytest.mark.parametrize(("method", "rho", "err"), [("classifier", 0.95, 0.2), ("kliep", 0.95, 0.2), ("kmm", 0.8, 0.3)])
def test_importance_weights_recover_a_known_density_ratio(method: str, rho: float, err: float) -> None:
    Xs, Xt, true = _shifted()
    w = density_ratio(Xs, Xt, method=method)
    assert w.shape == (len(Xs),) and abs(w.mean() - 1) < 1e-6 and (w >= 0).all()
    assert spearmanr(w, true).statistic >= rho
    assert np.median(np.abs(w - true) / true) <= err


def test_importance_weighting_helps_under_covariate_shift() -> None:
    # the label depends on x through a curve; a linear model fitted where the target lives does better there
    rng = np.random.default_rng(1)
    Xs = rng.normal(0, 1, (3000, 1))
    Xt = rng.normal(1.5, 0.5, (1000, 1))

    def label(X: np.ndarray) -> np.ndarray:
        return (X[:, 0] ** 2 - 1.5 * X[:, 0] + rng.normal(0, 0.3, len(X)) > 0).astype(int)

    ys, yt = label(Xs), label(Xt)
    plain = LogisticRegression().fit(Xs, ys).score(Xt, yt)
    weighted = ImportanceWeighting(LogisticRegression(), method="kliep").fit(Xs, ys, X_target=Xt)
    assert weighted.weights_.shape == (3000,)
    assert weighted.score(Xt, yt) > plain + 0.05


def test_coral_aligns_second_moments() -> None:
    rng = np.random.default_rng(2)
    Xs = rng.normal(0, 1, (500, 3))
    Xt = rng.normal(0, 1, (500, 3)) @ np.diag([3.0, 0.5, 1.0]) + 2
    y = (Xs[:, 0] > 0).astype(int)
    clf = CORAL(LogisticRegression(), regularization=1e-3).fit(Xs, y, X_target=Xt)
    moved = (Xs - Xs.mean(0)) @ clf.transform_ + Xt.mean(0)
    assert np.allclose(np.cov(moved, rowvar=False), np.cov(Xt, rowvar=False), atol=0.05)
    assert clf.predict_proba(Xt).shape == (500, 2)


def test_tradaboost_uses_a_few_target_labels() -> None:
    # half of the source follows the target's concept, half another one; 30 target labels tell them apart
    rng = np.random.default_rng(3)
    Xs = rng.normal(0, 1, (600, 2))
    ys = np.where(np.arange(600) < 300, Xs[:, 0] + Xs[:, 1] > 0, Xs[:, 0] - Xs[:, 1] > 0).astype(int)
    Xt = rng.normal(0, 1, (300, 2))
    yt = (Xt[:, 0] + Xt[:, 1] > 0).astype(int)
    few, rest = np.arange(30), np.arange(30, 300)
    tree = DecisionTreeClassifier(max_depth=2)
    boosted = TrAdaBoost(tree, n_estimators=20).fit(Xs, ys, Xt[few], yt[few]).score(Xt[rest], yt[rest])
    pooled = DecisionTreeClassifier(max_depth=2).fit(np.vstack([Xs, Xt[few]]), np.r_[ys, yt[few]])
    assert boosted > pooled.score(Xt[rest], yt[rest]) + 0.1


def test_clear_errors() -> None:
    Xs, Xt, _ = _shifted(50, 50)
    with pytest.raises(ConfigError, match="method"):
        density_ratio(Xs, Xt, method="magic")
    with pytest.raises(DataError, match="features"):
        density_ratio(Xs, Xt[:, :1])
    with pytest.raises(DataError, match="numeric"):
        density_ratio([["a", "b"]], Xt)
    with pytest.raises(ConfigError, match="X_target"):
        ImportanceWeighting(LogisticRegression()).fit(Xs, (Xs[:, 0] > 0).astype(int))


@pytest.mark.slow
def test_kmm_on_50000_rows_stays_within_4_gib() -> None:
    code = (
        "import numpy as np, resource\n"
        "from graft.adapt import density_ratio\n"
        "rng = np.random.default_rng(0)\n"
        "w = density_ratio(rng.normal(0, 1, (50000, 10)), rng.normal(0.3, 1, (20000, 10)), method='kmm')\n"
        "assert w.shape == (50000,)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    peak_mb = int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert peak_mb < 4096, peak_mb
