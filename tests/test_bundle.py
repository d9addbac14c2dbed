"""The model bundle: graft.json + model.safetensors, hashed, loaded without unpickling."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_val_score

import graft
from graft.bundle import FORMAT, FORMAT_VERSION
from graft.errors import BundleError, ConfigError


@pytest.fixture
def folder_model(tiny: Any, image_folder: Any) -> tuple[Any, Path]:
    """A feature-extraction model fitted on a 2-class folder with string labels."""
    data = image_folder("data", n_classes=2, n_per_class=6)
    return tiny("feature-extraction").fit(data), data


@pytest.fixture
def bundle(folder_model: tuple[Any, Path], tmp_path: Path) -> Path:
    clf, _ = folder_model
    return clf.save(tmp_path / "bundle")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _images(data: Path) -> list[str]:
    return sorted(str(p) for p in data.rglob("*.png"))


def test_bundle_files_and_manifest(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == ["graft.json", "model.safetensors"]
    m = json.loads((bundle / "graft.json").read_text())
    for key in ("format", "format_version", "task", "labels", "backbone", "head", "strategy", "versions", "files"):
        assert key in m, key
    assert m["format"] == FORMAT == "graft-bundle"
    assert m["format_version"] == FORMAT_VERSION == 1
    assert m["task"] == "image-classification"
    assert m["labels"] == ["blue", "red"]
    assert m["backbone"]["source"] == "timm" and m["backbone"]["name"] == "test_efficientnet"
    assert m["head"]["num_classes"] == 2 and m["head"]["in_features"] == m["feature_dim"]
    assert m["strategy"]["name"] == "feature-extraction" and "label_smoothing" in m["strategy"]["params"]
    assert {"python", "torch", "timm", "numpy"} <= set(m["versions"])
    assert m["files"] == {"model.safetensors": _sha256(bundle / "model.safetensors")}
    assert m["preprocessing"]["input_size"] == 32
    assert m["params"]["image_size"] == 32 and "output_dir" not in m["params"]


def test_load_never_unpickles(bundle: Path, folder_model: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    clf, data = folder_model

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("graft.load must not unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = graft.load(bundle)
    X = _images(data)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-6)
    assert not any(p.suffix in (".pt", ".pth", ".pkl", ".bin") for p in bundle.iterdir())


def test_string_labels_round_trip(bundle: Path, folder_model: tuple[Any, Path]) -> None:
    clf, data = folder_model
    loaded = graft.load(bundle)
    assert list(loaded.classes_) == ["blue", "red"]
    pred = loaded.predict(_images(data))
    assert all(isinstance(p, str) for p in pred.tolist())
    np.testing.assert_array_equal(pred, clf.predict(_images(data)))
    metrics = loaded.evaluate(data)
    assert metrics["accuracy"] == pytest.approx(clf.evaluate(data)["accuracy"])


def test_integer_labels_round_trip_as_ints(tiny: Any, arrays: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y = arrays
    clf = tiny("feature-extraction").fit(X, y + 3)  # labels 3 and 4
    path = clf.save(tmp_path / "ints")
    assert json.loads((path / "graft.json").read_text())["labels"] == [3, 4]
    loaded = graft.load(path)
    assert loaded.classes_.dtype.kind == "i"
    pred = loaded.predict(X)
    assert pred.dtype.kind == "i" and set(pred.tolist()) <= {3, 4}
    np.testing.assert_array_equal(pred, clf.predict(X))
    assert all(type(v) is int for v in pred.tolist())


def test_cross_val_score_with_integer_labels(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = arrays
    scores = cross_val_score(tiny("feature-extraction", epochs=1), X, y, cv=2, error_score="raise")
    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))


def test_tampered_weights_are_refused(bundle: Path) -> None:
    weights = bundle / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF  # inside the tensor data: still a valid safetensors file
    weights.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="does not match the hash"):
        graft.load(bundle)
    assert graft.load(bundle, verify=False).classes_.tolist() == ["blue", "red"]


def test_a_manifest_whose_labels_do_not_fit_the_head_is_refused(bundle: Path) -> None:
    manifest = bundle / "graft.json"
    m = json.loads(manifest.read_text())
    m["labels"] = m["labels"][:1]  # hand-edited: one label for a two-output head
    manifest.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="lists 1 labels but its head has 2 outputs"):
        graft.load(bundle)


def test_missing_weights_file(bundle: Path) -> None:
    (bundle / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="model.safetensors"):
        graft.load(bundle)


def test_missing_manifest(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(BundleError, match="graft.json is missing") as info:
        graft.load(plain)
    assert "resume" not in str(info.value)
    (plain / "checkpoints").mkdir()
    with pytest.raises(BundleError, match="--resume"):
        graft.load(plain)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(format="something-else"), "not a Graft bundle manifest"),
        (lambda m: m.update(format_version=FORMAT_VERSION + 1), "newer Graft"),
        (lambda m: m.update(task="object-detection"), "cannot load"),
        (lambda m: m["head"].update(in_features=m["head"]["in_features"] + 1), "does not fit"),
    ],
    ids=["format", "version", "task", "architecture"],
)
def test_manifest_problems_are_bundle_errors(bundle: Path, edit: Any, match: str) -> None:
    path = bundle / "graft.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=match):
        graft.load(bundle)


def test_invalid_json_manifest(bundle: Path) -> None:
    (bundle / "graft.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        graft.load(bundle)


def test_save_to_existing_path_needs_overwrite(folder_model: tuple[Any, Path], tmp_path: Path) -> None:
    clf, data = folder_model
    target = tmp_path / "exists"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        clf.save(target)
    assert (target / "keep.txt").read_text() == "x", "a refused save leaves the folder alone"
    clf.save(target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["graft.json", "model.safetensors"]
    assert graft.load(target).predict(_images(data)).tolist() == clf.predict(_images(data)).tolist()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exists")], "no temporary folders left"


def test_save_unfitted_raises_not_fitted(tmp_path: Path) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        graft.ImageClassifier().save(tmp_path / "x")
    with pytest.raises(NotFittedError):
        graft.ImageClassifier().predict_proba(np.zeros((1, 8, 8), np.uint8))


def test_run_directory_is_a_bundle(tiny: Any, image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data")
    run = tmp_path / "run"
    clf = tiny("feature-extraction", output_dir=run).fit(data)
    names = {p.name for p in run.iterdir()}
    assert {"graft.json", "model.safetensors", "metrics.jsonl", "checkpoints"} <= names
    loaded = graft.load(run)
    np.testing.assert_allclose(loaded.predict_proba(_images(data)), clf.predict_proba(_images(data)), atol=1e-6)
    assert clf.save(run) == run  # saving onto its own run directory rewrites the bundle in place
    assert graft.load(run).classes_.tolist() == ["blue", "red"]


def test_loaded_model_keeps_training_record(bundle: Path, folder_model: tuple[Any, Path]) -> None:
    clf, _ = folder_model
    loaded = graft.load(bundle)
    assert loaded.history_ == json.loads(json.dumps(clf.history_))
    assert loaded.manifest_["training"]["n_train"] == clf.n_train_


def test_loaded_model_training_summary(bundle: Path, folder_model: tuple[Any, Path]) -> None:
    clf, _ = folder_model
    summary = graft.load(bundle).training_summary()
    assert summary["n_train"] == clf.n_train_ and summary["best_epoch"] == clf.best_epoch_
