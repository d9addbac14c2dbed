"""PNG plots: source/target feature maps before and after domain adaptation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import graft
from graft.evaluation import plot_domain_features

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _features(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 2.0, rng.normal(size=(40, 3)), rng.normal(size=(30, 3))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_plot_domain_features_writes_a_png(tmp_path: Path, method: str) -> None:
    bs, bt, as_, at = _features()
    out = plot_domain_features(
        bs,
        torch.from_numpy(bt),
        as_,
        at,
        tmp_path / "sub" / "domain.png",
        source_labels=np.arange(40) % 3,
        a_distance_before=1.6,
        a_distance_after=0.2,
        method=method,
    )
    assert out == tmp_path / "sub" / "domain.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["domain.png"]  # no temporary file left behind


def test_plot_domain_features_handles_one_dimensional_features(tmp_path: Path) -> None:
    bs, bt, _, _ = _features()
    out = plot_domain_features(bs, bt, bs[:, :1], bt[:, :1], tmp_path / "d.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_plot_domain_features_rejects_bad_inputs(tmp_path: Path) -> None:
    bs, bt, as_, at = _features()
    with pytest.raises(graft.ConfigError, match="Did you mean 'tsne'"):
        plot_domain_features(bs, bt, as_, at, tmp_path / "d.png", method="tnse")
    with pytest.raises(graft.DataError, match="width"):
        plot_domain_features(bs, bt[:, :2], as_, at, tmp_path / "d.png")
    with pytest.raises(graft.DataError, match="same rows"):
        plot_domain_features(bs, bt, as_[:10], at, tmp_path / "d.png")
    with pytest.raises(graft.DataError, match="source_labels"):
        plot_domain_features(bs, bt, as_, at, tmp_path / "d.png", source_labels=[0, 1])
    assert not (tmp_path / "d.png").exists()
