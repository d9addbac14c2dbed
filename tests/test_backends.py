"""Inference backends: onnxruntime, OpenVINO and ``auto`` give the eager PyTorch predictions within the stated
tolerance, ``auto`` times the installed backends once per machine and model, and a backend's package is imported only
when it is chosen."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graft

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino is not installed (pip install openvino)"
)


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
    installed = {"onnxruntime"} | ({"openvino"} if importlib.util.find_spec("openvino") else set())
    assert entry["backend"] == auto.backend_used_ and set(entry["rel_error"]) == installed
    assert auto.backend_used_ == "torch" or entry["rel_error"][auto.backend_used_] <= 1e-4
    assert set(entry["seconds_per_batch"]) == {"torch"} | installed
    assert list((graft_cache_dir / "onnx").glob("*.onnx")), "the exported network is cached"


def test_onnxruntime_does_not_import_openvino(helpers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = helpers.color_arrays(4, 2)
    helpers.tiny_classifier(epochs=2, output_dir=tmp_path / "run").fit(X, y)
    monkeypatch.setitem(sys.modules, "openvino", None)  # any import of it now fails
    model = graft.load(tmp_path / "run", backend="onnxruntime")
    assert model.predict_proba(X).shape == (len(X), 2) and model.backend_used_ == "onnxruntime"


@needs_openvino
def test_image_predictions_through_openvino(helpers: Any, tmp_path: Path) -> None:
    X, y = helpers.color_arrays(8, 2)
    clf = helpers.tiny_classifier("feature-extraction", epochs=3, output_dir=tmp_path / "run").fit(X, y)
    eager = clf.predict_proba(X)
    ov = graft.load(tmp_path / "run", backend="openvino")
    np.testing.assert_allclose(ov.predict_proba(X), eager, atol=1e-5)
    np.testing.assert_allclose(ov.predict_proba(X[:1]), eager[:1], atol=1e-5)  # a batch of one
    assert ov.backend_used_ == "openvino"
    assert ov.evaluate(X, y)["accuracy"] == clf.evaluate(X, y)["accuracy"]


def test_a_missing_backend_package_is_named(helpers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from graft.errors import ConfigError
    from graft.inference import backends, make_runner

    monkeypatch.setattr(backends, "_installed", lambda backend: False)
    net = torch.nn.Linear(3, 2).eval()
    with pytest.raises(ConfigError, match="backend 'openvino' needs: pip install openvino"):
        make_runner(net, "openvino", torch.rand(2, 3))
    assert make_runner(net, "auto", torch.rand(2, 3)) == ("torch", None)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("openvino", marks=needs_openvino)])
def test_text_and_feature_extraction_through_exported_backends(text_helpers: Any, backend: str) -> None:
    X, y = text_helpers.sentiment(24)
    clf = text_helpers.tiny("bert", "feature-extraction", epochs=3).fit(X, y)
    eager = clf.predict_proba(X)
    data = clf._read(X, None, what="input")[0]
    eager_feats = clf._embed_uncached(data, list(range(len(X))))
    clf.backend = backend
    np.testing.assert_allclose(
        clf.predict_proba(X + ["a longer text than the others, to vary the length"])[:-1], eager, atol=1e-5
    )
    clf.cache = True
    feats = clf._embed_uncached(data, list(range(len(X))))
    assert feats.shape == (len(X), clf.backbone_.feature_dim) and clf.backend_used_ == backend
    np.testing.assert_allclose(feats, eager_feats, atol=1e-4)


def test_an_unknown_backend_is_refused(helpers: Any, tmp_path: Path) -> None:
    from graft.errors import BundleError, ConfigError

    X, y = helpers.color_arrays(4, 2)
    with pytest.raises(ConfigError, match="backend must be one of torch, onnxruntime, openvino, auto"):
        helpers.tiny_classifier(backend="tensorrt").fit(X, y)
    helpers.tiny_classifier(epochs=2, output_dir=tmp_path / "r").fit(X, y)
    with pytest.raises(BundleError, match="backend must be one of"):
        graft.load(tmp_path / "r", backend="tensorrt")
