"""Export to ONNX and TorchScript: the exported model agrees with the PyTorch one on real inputs (top-1 on every
input, probabilities within 1e-4), for image, text, multi-label, token and vector models; the README's snippet runs
an exported image model with onnxruntime, numpy and Pillow alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graft
from graft.export import export_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FORMATS = [("onnx", ".onnx"), pytest.param("torchscript", ".pt", marks=pytest.mark.slow)]


def _check(report: dict[str, Any], path: Path, labels: list[Any]) -> dict[str, Any]:
    assert report["top1_agreement"] == 1.0, report
    assert report["max_abs_prob_diff"] <= 1e-4, report
    assert report["compared"] > 0
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["labels"] == labels and meta["output"] == "logits"
    assert meta["parity"]["top1_agreement"] == 1.0
    return meta


@pytest.fixture(scope="module")
def image_model(helpers: Any, backbone_weights: Path) -> tuple[Any, Any]:
    X, y = helpers.color_arrays(8, 2)
    clf = helpers.tiny_classifier("fine-tune", weights=str(backbone_weights), epochs=2).fit(X, y)
    return clf, X


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
def test_image_model_parity(image_model: tuple[Any, Any], tmp_path: Path, fmt: str, ext: str) -> None:
    clf, X = image_model
    path = tmp_path / f"model{ext}"
    meta = _check(export_model(clf, path, fmt=fmt, data=X), path, [0, 1])
    assert meta["inputs"] == ["pixel_values"] and meta["image"]["center_crop"] == 32


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
@pytest.mark.parametrize("multi_label", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["single", "multi"])
def test_text_model_parity(text_helpers: Any, tmp_path: Path, fmt: str, ext: str, multi_label: bool) -> None:
    X, y = text_helpers.sentiment(24)
    labels: Any = [[v, "any"] if i % 3 else [v] for i, v in enumerate(y)] if multi_label else y
    clf = text_helpers.tiny("bert", "feature-extraction", multi_label=multi_label, epochs=3).fit(X, labels)
    path = tmp_path / f"text{ext}"
    longer = X + ["a much longer text than any of the training ones, to check that the sequence axis is dynamic"]
    meta = _check(export_model(clf, path, fmt=fmt, data=longer), path, list(clf.classes_))
    assert (tmp_path / meta["text"]["tokenizer"] / "tokenizer.json").is_file()
    assert ("thresholds" in meta) == multi_label


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
def test_token_model_parity(text_helpers: Any, tmp_path: Path, fmt: str, ext: str) -> None:
    X, y = text_helpers.tagged(16)
    clf = text_helpers.tiny("bert", "feature-extraction", token=True, epochs=3).fit(X, y)
    path = tmp_path / f"ner{ext}"
    meta = _check(export_model(clf, path, fmt=fmt, data=X), path, list(clf.classes_))
    n = len(clf.classes_)
    assert np.asarray(meta["decoding"]["allowed_transitions"]).shape == (n, n)
    assert meta["text"]["case_features"], "MiniLM's tokenizer lowercases: the tagger adds casing features"
    assert "shape_ids" in meta["inputs"] and "Title case" in meta["text"]["shape_ids"], "its third input, documented"


def test_vector_model_parity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), np.arange(40) % 3
    clf = graft.EmbeddingClassifier(epochs=3).fit(X, y)
    path = tmp_path / "vectors.onnx"
    meta = _check(export_model(clf, path, data=X), path, [0, 1, 2])
    assert len(meta["features"]["mean"]) == 6


def test_readme_snippet_runs_an_exported_image_model_without_graft(
    helpers: Any, backbone_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=4)
    clf = helpers.tiny_classifier("feature-extraction", weights=str(backbone_weights), epochs=5).fit(str(folder))
    export_model(clf, tmp_path / "ants.onnx", data=str(folder))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "onnxruntime" in b)
    assert "graft" not in snippet.replace("graft.json", "")
    image = sorted(folder.rglob("*.png"))[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"print": lambda *a: None}
    exec(snippet.replace('"ant.jpg"', repr(str(image))), namespace)  # noqa: S102 - the README's own code
    expected = clf.predict_proba([str(image)])[0]
    np.testing.assert_allclose(namespace["proba"][0], expected, atol=1e-4)


@pytest.mark.slow
def test_export_command_prints_the_parity_check(helpers: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graft.cli import app

    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=4)
    run = tmp_path / "run"
    env = {"COLUMNS": "4000", "NO_COLOR": "1"}
    args = ["train", str(data), "-o", str(run), "--strategy", "feature-extraction", "--image-size", "32"]
    assert CliRunner().invoke(app, [*args, "--epochs", "3"], env=env).exit_code == 0
    result = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "m.onnx")], env=env)
    assert result.exit_code == 0, result.output
    assert "parity ok" in result.output and "top-1 agreement 100.0%" in result.output
    bad = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "m.x"), "--format", "tflite"], env=env)
    assert bad.exit_code == 2 and "format must be one of onnx, torchscript" in bad.output


def test_the_format_follows_the_extension_and_a_mismatch_is_refused_before_any_write(tmp_path: Path) -> None:
    from graft.errors import ConfigError
    from graft.export import export_format

    assert export_format("m.onnx") == "onnx" and export_format("m.PT") == "torchscript"
    assert export_format("m.ts", "torchscript") == "torchscript"
    for path, fmt, words in (
        ("m.txt", None, "cannot tell the format of 'm.txt'"),
        ("m.pt", "onnx", "onnx files end in .onnx; got 'm.pt'"),
        ("m.onnx", "torchscript", "torchscript files end in .pt or .ts"),
        ("m.onnx", "tflite", "format must be one of onnx, torchscript"),
    ):
        with pytest.raises(ConfigError, match=re.escape(words)):
            export_format(path, fmt)
    with pytest.raises(ConfigError, match="onnx files end in"):
        export_model(object(), tmp_path / "m.pt", fmt="onnx")
    assert not list(tmp_path.iterdir())
