"""The deep adaptation path (``deep=True``): backbone and head trained with the method's loss, images and text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graft
from graft.strategies import resolve_strategy


def _rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dann", "coral", "self-training"])
def test_deep_image_adaptation_trains_the_backbone_and_round_trips(
    name: str, tiny: Any, helpers: Any, tmp_path: Path
) -> None:
    Xs, ys = helpers.color_arrays(8, 2, seed=0)
    Xt, _ = helpers.color_arrays(6, 2, seed=1)
    Xt = np.clip(Xt.astype(np.int16) + 40, 0, 255).astype(np.uint8)  # a brighter target domain
    strategy = resolve_strategy(name, deep=True)
    clf = tiny(strategy, epochs=2, output_dir=tmp_path / "run")
    before = {k: v.clone() for k, v in clf._build_backbone(pretrained=False).module.state_dict().items()}
    clf.fit(Xs, ys, target=Xt)
    rows = _rows(tmp_path / "run")
    assert [r["phase"] for r in rows if r["phase"] != "head"] == [name, name]
    assert all(np.isfinite(r["val_iwcv_loss"]) and 0 <= r["val_target_entropy"] <= 1 for r in rows if "val_loss" in r)
    after = clf.backbone_.module.state_dict()
    changed = [k for k, v in before.items() if v.dtype.is_floating_point and not torch.equal(v, after[k])]
    assert changed, "the deep path trains the backbone"
    diag = clf.adaptation_diagnostics_
    assert 0 <= diag["a_distance_before"] <= 2 and 0 <= diag["a_distance_after"] <= 2
    assert (tmp_path / "run" / "domain_features.png").stat().st_size > 0
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2) and np.isfinite(proba).all()
    loaded = graft.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict_proba(Xt), proba, atol=1e-5)


@pytest.mark.slow
def test_deep_text_adaptation(text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(24, seed=0)
    target, _ = text_helpers.sentiment(16, seed=1)
    target = [t.upper() for t in target]  # another "domain" of the same task
    clf = text_helpers.tiny("bert", resolve_strategy("mmd", deep=True), epochs=2)
    clf.fit(texts, labels, target=target)
    phases = [h["phase"] for h in clf.history_]
    assert phases.count("mmd") == 2 and "head" in phases
    assert clf.predict(target).shape == (len(target),)


def test_deep_needs_a_backbone() -> None:
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.arange(40) % 2
    with pytest.raises(graft.ConfigError, match="deep"):
        graft.EmbeddingClassifier(resolve_strategy("dann", deep=True)).fit(X, y, target=X + 1)


def test_adabn_does_not_train_deep() -> None:
    with pytest.raises(graft.ConfigError, match="AdaBN"):
        resolve_strategy("adabn", deep=True).validate()
