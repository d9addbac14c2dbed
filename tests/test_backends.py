"""Inference backends: onnxruntime and ``auto`` give the eager PyTorch predictions within the stated tolerance, and
``auto`` times the backends once per machine and model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graft

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_image_predictions_through_onnxruntime_and_auto(helpers: Any, tmp_path: Path, graft_cache_dir: Path) -> None:
    X, y = helpers.color_arrays(8, 2)
    clf = helpers.tiny_classifier("feature-extraction", epochs=3, output_dir=tmp_path / "run").fit(X, y)
    eager = clf.predict_proba(X)
    ort = graft.load(tmp_path / "run", backend="onnxruntime")
    np.testing.assert_allclose(ort.predict_proba(X), eager, atol=1e-5)
    assert ort.backend_used_ == "onnxruntime"
    auto = graft.load(tmp_path / "run", backend="auto")
    np.testing.assert_allclose(auto.predict_proba(X), eager, atol=1e-5)
    decisions = json.loads((graft_cache_dir / "backends.json").read_text())
    (entry,) = decisions.values()
    assert entry["backend"] == auto.backend_used_ and entry["onnx_rel_error"] <= 1e-4
    assert set(entry["seconds_per_batch"]) == {"torch", "onnxruntime"}
    assert list((graft_cache_dir / "onnx").glob("*.onnx")), "the exported network is cached"


@pytest.mark.slow
def test_text_and_feature_extraction_through_onnxruntime(text_helpers: Any) -> None:
    X, y = text_helpers.sentiment(24)
    clf = text_helpers.tiny("bert", "feature-extraction", epochs=3).fit(X, y)
    eager = clf.predict_proba(X)
    clf.backend = "onnxruntime"
    np.testing.assert_allclose(
        clf.predict_proba(X + ["a longer text than the others, to vary the length"])[:-1], eager, atol=1e-5
    )
    clf.cache = True
    feats = clf._embed_uncached(clf._read(X, None, what="input")[0], list(range(len(X))))
    assert feats.shape == (len(X), clf.backbone_.feature_dim) and clf.backend_used_ == "onnxruntime"


def test_an_unknown_backend_is_refused(helpers: Any, tmp_path: Path) -> None:
    from graft.errors import BundleError, ConfigError

    X, y = helpers.color_arrays(4, 2)
    with pytest.raises(ConfigError, match="backend must be torch, onnxruntime or auto"):
        helpers.tiny_classifier(backend="tensorrt").fit(X, y)
    helpers.tiny_classifier(epochs=2, output_dir=tmp_path / "r").fit(X, y)
    with pytest.raises(BundleError, match="backend must be one of"):
        graft.load(tmp_path / "r", backend="tensorrt")
