"""The offline WordLlama text backbones (``wordllama``, ``wordllama_128``, ``wordllama_64``; extra ``zoo``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import graft
from graft.backbones import backbone_rows, create_backbone
from graft.errors import ConfigError

needs_wordllama = pytest.mark.skipif(
    importlib.util.find_spec("wordllama") is None, reason='wordllama is not installed (pip install "graft[zoo]")'
)

SENTENCES = [
    "Hello world, this is great!",
    "  leading spaces, accents (café) and an emoji 😀",
    "a",
    "Don't  double  space.",
    "The movie was a long, dull slog with no redeeming features whatsoever.",
]


def _embed(name: str, texts: list[str]) -> np.ndarray:
    from graft.estimators._text import TextBatcher

    backbone = create_backbone(name, modality="text", max_length=128)
    batcher = TextBatcher(backbone.tokenizer, 128)
    out = np.zeros((len(texts), backbone.feature_dim), np.float32)
    for rows, batch in batcher.batches(batcher.encode(texts), 2):  # padded batches of unequal lengths
        with torch.no_grad():
            out[rows] = backbone.module(batch).numpy()
    return out


@needs_wordllama
@pytest.mark.parametrize(("name", "dim"), [("wordllama", 256), ("wordllama_128", 128), ("wordllama_64", 64)])
def test_embeddings_equal_wordllamas_own(name: str, dim: int) -> None:
    from wordllama import WordLlama

    from graft.backbones.wordllama import wordllama_files

    # WordLlama 0.4 looks for its tokenizer in wordllama/tokenizer/ (singular) but ships it in tokenizers/; a cache
    # dir at the package root finds both files offline
    root = wordllama_files()[0].parents[1]
    reference = WordLlama.load(cache_dir=root, trunc_dim=None if dim == 256 else dim, disable_download=True)
    ours = _embed(name, SENTENCES)
    assert ours.shape == (len(SENTENCES), dim)
    np.testing.assert_allclose(ours, reference.embed(SENTENCES), atol=1e-6, rtol=0)


@needs_wordllama
def test_listed_offline_with_size_and_dims() -> None:
    rows = {r["name"]: r for r in backbone_rows("wordllama*")[0]}
    assert set(rows) == {"wordllama", "wordllama_128", "wordllama_64"}
    for name, dim, params in (("wordllama", 256, "8.2M"), ("wordllama_128", 128, "4.1M"), ("wordllama_64", 64, "2.0M")):
        assert rows[name]["offline"] is True and rows[name]["modality"] == "text"
        assert f"{dim}-d" in rows[name]["description"] and params in rows[name]["description"]


def test_missing_package_and_bad_settings_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from graft.backbones import wordllama as module

    monkeypatch.setattr(module, "_package_dir", lambda: None)
    with pytest.raises(ConfigError, match=r'pip install "graft\[zoo\]"'):
        create_backbone("wordllama_64", modality="text")
    assert module._available() is False
    with pytest.raises(ConfigError, match="pooling must be 'mean'"):
        create_backbone("wordllama", modality="text", pooling="cls")


@needs_wordllama
def test_a_weights_file_replaces_the_table(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    table = torch.randn(32000, 64)
    save_file({"embedding.weight": table}, str(tmp_path / "table.safetensors"))
    backbone = create_backbone("wordllama_64", modality="text", weights=str(tmp_path / "table.safetensors"))
    assert torch.equal(backbone.module.embedding.weight, table)
    with pytest.raises(ConfigError, match=r"needs 'embedding.weight' of shape \(32000, 128\)"):
        create_backbone("wordllama_128", modality="text", weights=str(tmp_path / "table.safetensors"))


@needs_wordllama
@pytest.mark.slow
def test_classifier_feature_extraction_round_trip(
    text_helpers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = text_helpers.sentiment(40, seed=0)
    X_test, y_test = text_helpers.sentiment(20, seed=3)
    clf = graft.TextClassifier("wordllama_64", "feature-extraction", epochs=30, device="cpu", verbose=False)
    clf.fit(X, y)
    assert clf.backbone_.feature_dim == 64 and clf.backbone_.spec["name"] == "wordllama_64"
    assert clf.evaluate(X_test, y_test)["accuracy"] >= 0.8
    path = clf.save(tmp_path / "fe")
    from graft.backbones import wordllama as module

    monkeypatch.setattr(module, "_package_dir", lambda: None)  # a bundle loads without the package
    loaded = graft.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-6, rtol=0)


@needs_wordllama
@pytest.mark.slow
def test_classifier_fine_tune_trains_the_table_and_round_trips(text_helpers: Any, tmp_path: Path) -> None:
    X, y = text_helpers.sentiment(40, seed=0)
    X_test, _ = text_helpers.sentiment(20, seed=3)
    tuned = graft.TextClassifier("wordllama_64", "fine-tune", epochs=2, device="cpu", verbose=False, cache=False)
    before = create_backbone("wordllama_64", modality="text").module.embedding.weight
    tuned.fit(X, y)
    after = tuned.backbone_.module.embedding.weight.detach()
    assert not torch.equal(before, after), "fine-tuning trains the embedding table"
    again = graft.load(tuned.save(tmp_path / "ft"))
    assert again.backbone_.tokenizer("a")["input_ids"] == [263], "the saved tokenizer adds no <s> either"
    np.testing.assert_allclose(again.predict_proba(X_test), tuned.predict_proba(X_test), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(again.predict(X_test), tuned.predict(X_test))


@needs_wordllama
def test_rank_two_text_backbones(text_helpers: Any, tmp_path: Path) -> None:
    import pandas as pd

    from graft.cli import app
    from graft.selection import rank

    X, y = text_helpers.sentiment(40, seed=1)
    data = tmp_path / "reviews.csv"
    pd.DataFrame({"text": X, "label": y}).to_csv(data, index=False)
    table = rank(data, ["wordllama", "wordllama_64"], verbose=False)
    assert set(table["model"]) == {"wordllama", "wordllama_64"}
    assert dict(zip(table["model"], table["dim"])) == {"wordllama": 256, "wordllama_64": 64}
    assert table["logme"].notna().all() and table["linear_probe"].between(0, 1).all()
    result = CliRunner().invoke(app, ["rank", str(data), "--models", "wordllama_128,wordllama_64", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["model"] for r in json.loads(result.output)["ranking"]} == {"wordllama_128", "wordllama_64"}
