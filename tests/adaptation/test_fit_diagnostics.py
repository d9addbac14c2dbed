"""A domain-adaptation fit reports how far apart the domains are before and after, and draws them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graft
from graft.strategies.adaptation import diagnostics
from graft.strategies.adaptation.adabn import SourceOnly
from graft.strategies.adaptation.dann import DANN

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _shifted_blobs(n: int = 120, shift: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    Xs = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 2.0, -2.0) * np.array([1, 0, 0, 0])
    Xt = rng.normal(size=(n, 4)) + np.where(rng.permutation(y)[:, None] == 1, 2.0, -2.0) * np.array([1, 0, 0, 0])
    Xt[:, 1] += shift
    return Xs, y, Xt


def test_diagnostics_are_finite_and_written_to_the_run(tmp_path: Path) -> None:
    Xs, ys, Xt = _shifted_blobs()
    run = tmp_path / "run"
    clf = graft.EmbeddingClassifier(DANN(bottleneck=16), epochs=3, output_dir=run).fit(Xs, ys, target=Xt)
    diag = clf.adaptation_diagnostics_
    for key in ("a_distance_before", "a_distance_after"):
        assert np.isfinite(diag[key]) and 0.0 <= diag[key] <= 2.0, diag
    assert diag["a_distance_before"] > 1.0  # the target is shifted by 4 standard deviations
    assert diag["n_target"] == len(Xt) and diag["n_source"] == clf.n_train_
    assert (run / "domain_features.png").read_bytes()[:8] == PNG_MAGIC
    assert "Source and target features" in (run / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((run / "graft.json").read_text())
    assert manifest["training"]["adaptation"] == diag
    assert clf.training_summary()["adaptation"] == diag
    assert graft.load(run).training_summary()["adaptation"] == diag


def test_after_distance_is_measured_on_the_heads_bottleneck(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = diagnostics.a_distance

    def spy(f_s: Any, f_t: Any, **kwargs: Any) -> float:
        calls.append((f_s, f_t))
        return real(f_s, f_t, **kwargs)

    monkeypatch.setattr("graft.training.adapt.a_distance", spy)
    Xs, ys, Xt = _shifted_blobs()
    clf = graft.EmbeddingClassifier(SourceOnly(bottleneck=8), epochs=2).fit(Xs, ys, target=Xt)
    assert len(calls) == 2
    (before_s, before_t), (after_s, after_t) = calls
    assert before_s.shape[1] == before_t.shape[1] == 4  # frozen embeddings: the head's inputs
    assert after_s.shape[1] == after_t.shape[1] == 8  # the bottleneck
    head = clf.model_.head.eval()
    assert not head.training
    with torch.no_grad():
        torch.testing.assert_close(after_t, head.features(before_t))
        torch.testing.assert_close(after_s, head.features(before_s))
    assert clf.adaptation_diagnostics_["a_distance_after"] == pytest.approx(real(after_s, after_t, seed=0), abs=1e-4)


def test_diagnostics_subsample_each_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("graft.training.adapt.DIAG_ROWS", 30)
    Xs, ys, Xt = _shifted_blobs()
    clf = graft.EmbeddingClassifier("coral", epochs=1).fit(Xs, ys, target=Xt)
    assert clf.adaptation_diagnostics_["n_source"] == 30 and clf.adaptation_diagnostics_["n_target"] == 30
    again = graft.EmbeddingClassifier("coral", epochs=1).fit(Xs, ys, target=Xt)
    assert again.adaptation_diagnostics_ == clf.adaptation_diagnostics_  # seeded


def test_no_diagnostics_without_adaptation() -> None:
    Xs, ys, _ = _shifted_blobs(40)
    clf = graft.EmbeddingClassifier("feature-extraction", epochs=2).fit(Xs, ys)
    assert "adaptation" not in clf.training_summary()


def test_weights_that_collapse_to_one_value_are_recorded_and_warned_about() -> None:
    Xs, ys, Xt = _shifted_blobs(shift=60.0)  # no overlap: every source example is certainly not target
    with pytest.warns(UserWarning, match="importance weights are all equal"):
        far = graft.EmbeddingClassifier(SourceOnly(bottleneck=8), epochs=2).fit(Xs, ys, target=Xt)
    lo, hi = far.adaptation_diagnostics_["density_ratio_range"]
    assert lo == hi == pytest.approx(1.0)
    Xs, ys, Xt = _shifted_blobs(shift=0.5)  # overlapping domains: the weights spread
    near = graft.EmbeddingClassifier(SourceOnly(bottleneck=8), epochs=2).fit(Xs, ys, target=Xt)
    lo, hi = near.adaptation_diagnostics_["density_ratio_range"]
    assert lo < hi and [lo, hi] == [round(v, 4) for v in near.density_ratio_range_]


def test_a_target_of_a_few_examples_is_warned_about() -> None:
    Xs, ys, Xt = _shifted_blobs()
    with pytest.warns(UserWarning, match=r"the target domain holds 3 example\(s\)"):
        graft.EmbeddingClassifier(SourceOnly(bottleneck=8), epochs=1).fit(Xs, ys, target=Xt[:3])
