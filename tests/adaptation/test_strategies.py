"""Every domain-adaptation strategy through the one loop: fit with a target, bundle round trip, validation signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graft
from graft.strategies import list_strategies


def _shifted_blobs(n: int = 160, shift: float = 2.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    Xs = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 2.0, -2.0) * np.array([1, 0, 0, 0])
    yt = rng.permutation(y)
    Xt = rng.normal(size=(n, 4)) + np.where(yt[:, None] == 1, 2.0, -2.0) * np.array([1, 0, 0, 0])
    Xt[:, 1] += shift
    return Xs, y, Xt, yt


@pytest.mark.parametrize("name", list_strategies(adaptation=True))
def test_adaptation_strategy_contract(name: str, tmp_path: Path) -> None:
    Xs, ys, Xt, yt = _shifted_blobs()
    clf = graft.EmbeddingClassifier(name, epochs=4, lr=3e-3, output_dir=tmp_path / "run")
    clf.fit(Xs, ys, target=Xt)
    assert clf.n_target_ == len(Xt)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["phase"] == name for r in rows)
    assert all(np.isfinite(r["val_iwcv_loss"]) and 0 <= r["val_target_entropy"] <= 1 for r in rows)
    losses = [r["train_loss"] for r in rows]
    assert np.isfinite(losses).all()
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2) and np.isfinite(proba).all()
    assert clf.score(Xt, yt) > 0.8  # the class signal is unshifted: every method keeps it
    loaded = graft.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict_proba(Xt), proba, atol=1e-6)


def test_target_is_required_and_only_for_adaptation() -> None:
    Xs, ys, Xt, _ = _shifted_blobs(40)
    with pytest.raises(graft.ConfigError, match="target="):
        graft.EmbeddingClassifier("dann").fit(Xs, ys)
    with pytest.raises(graft.ConfigError, match="domain-adaptation"):
        graft.EmbeddingClassifier("feature-extraction").fit(Xs, ys, target=Xt)


def test_adabn_moves_bottleneck_statistics_to_the_target() -> None:
    Xs, ys, Xt, _ = _shifted_blobs(shift=6.0)
    src = graft.EmbeddingClassifier("source-only", epochs=3, seed=1).fit(Xs, ys, target=Xt)
    ada = graft.EmbeddingClassifier("adabn", epochs=3, seed=1).fit(Xs, ys, target=Xt)
    bn_src = src.model_.head.bottleneck[1].running_mean
    bn_ada = ada.model_.head.bottleneck[1].running_mean
    assert not np.allclose(bn_src.numpy(), bn_ada.numpy())


def test_embedding_classifier_rejects_bad_vectors() -> None:
    with pytest.raises(graft.DataError, match="NaN"):
        graft.EmbeddingClassifier().fit(np.array([[1.0, np.nan], [0.0, 1.0]] * 4), [0, 1] * 4)
    with pytest.raises(graft.DataError, match="2-D"):
        graft.EmbeddingClassifier().fit(np.zeros(8), [0, 1] * 4)
