"""LoRA through PEFT: adapters on a tiny random BERT and on timm's ``test_efficientnet``; merged and unmerged
bundles; what trains; validation before any work."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import graft
from graft.errors import ConfigError
from graft.strategies import LoRA
from graft.strategies.lora import default_target_modules


def _keys(bundle: Path) -> list[str]:
    with safe_open(str(bundle / "model.safetensors"), "pt") as f:
        return list(f.keys())


@pytest.fixture
def no_peft(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import peft`` fail, as on a machine without PEFT installed."""
    for name in [m for m in sys.modules if m == "peft" or m.startswith("peft.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "peft", None)


@pytest.fixture(scope="module", params=[True, False], ids=["merged", "separate"])
def bert_lora(request: pytest.FixtureRequest, text_helpers: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    X, y = text_helpers.sentiment(24, seed=0)
    clf = text_helpers.tiny("bert", LoRA(merge=request.param), max_length=16, epochs=3, lr=1e-2).fit(X, y)
    bundle = clf.save(tmp_path_factory.mktemp("lora") / "bundle")
    return SimpleNamespace(clf=clf, X=X, y=y, bundle=bundle, merge=request.param)


def test_lora_trains_a_small_share(bert_lora: Any) -> None:
    clf = bert_lora.clf
    assert 0.0 < clf.trainable_share_ < 0.5
    assert [h["phase"] for h in clf.history_] == ["lora"] * 3, "LoRA has no head warm-up phase"


def test_lora_trainable_share_is_printed_when_verbose(text_helpers: Any, capsys: pytest.CaptureFixture[str]) -> None:
    clf = text_helpers.tiny("bert", LoRA(r=2), max_length=16, epochs=1, verbose=True)
    clf.fit(*text_helpers.sentiment(12))
    err = capsys.readouterr().err
    assert "lora: training" in err and "parameters" in err
    share = f"{100 * clf.trainable_share_:.2f}%"
    assert share in err, (share, err[-500:])


def test_lora_bundle_keys(bert_lora: Any, text_helpers: Any) -> None:
    keys = _keys(bert_lora.bundle)
    lora = [k for k in keys if "lora_" in k]
    if bert_lora.merge:
        assert lora == [], lora[:5]
        assert not any("base_layer" in k for k in keys)
        # the same keys as an adapter-free model of this architecture
        plain = text_helpers.tiny("bert", "feature-extraction", max_length=16, epochs=1)
        plain.fit(*text_helpers.sentiment(12))
        assert sorted(keys) == sorted(plain.model_.state_dict())
    else:
        assert lora and any("lora_A" in k for k in lora) and any("lora_B" in k for k in lora)
        assert any(k.endswith("query.base_layer.weight") for k in keys)
        state = load_file(str(bert_lora.bundle / "model.safetensors"))
        assert any(bool(state[k].abs().sum() > 0) for k in lora if "lora_B" in k), "the adapters never trained"


def test_lora_bundle_round_trip(bert_lora: Any) -> None:
    loaded = graft.load(bert_lora.bundle)
    assert loaded.strategy_ == bert_lora.clf.strategy_ and loaded.strategy_.merge is bert_lora.merge
    got, expected = loaded.predict_proba(bert_lora.X), bert_lora.clf.predict_proba(bert_lora.X)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_merged_lora_bundle_loads_without_peft(bert_lora: Any, no_peft: None) -> None:
    with pytest.raises(ImportError):
        import peft  # noqa: F401
    if bert_lora.merge:
        loaded = graft.load(bert_lora.bundle)
        np.testing.assert_allclose(
            loaded.predict_proba(bert_lora.X), bert_lora.clf.predict_proba(bert_lora.X), rtol=0, atol=1e-6
        )
    else:
        with pytest.raises(ConfigError, match="needs PEFT"):
            graft.load(bert_lora.bundle)


def test_lora_custom_target_modules(text_helpers: Any, tmp_path: Path) -> None:
    clf = text_helpers.tiny("bert", LoRA(r=4, target_modules=["query", "value"], merge=False), max_length=16, epochs=1)
    clf.fit(*text_helpers.sentiment(12))
    adapted = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in clf.model_.state_dict() if "lora_" in k}
    assert adapted == {"query", "value"}
    a = [v for k, v in clf.model_.state_dict().items() if "query.lora_A" in k]
    assert a and all(t.shape == (4, 32) for t in a), "rank r=4 adapters on 32-d layers"


def test_default_targets_of_transformers(text_helpers: Any) -> None:
    from transformers import AutoConfig, AutoModel

    cfg = dict(text_helpers.gpt2)
    gpt = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    names = default_target_modules(gpt)
    assert {n.rsplit(".", 1)[-1] for n in names} == {"c_attn", "c_proj", "c_fc"}
    assert len(names) == 2 * 4, "c_attn, attn.c_proj, c_fc, mlp.c_proj per layer"
    cfg = dict(text_helpers.bert)
    bert = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    names = default_target_modules(bert)
    assert sum(".layer.0." in n for n in names) == 6, "q, k, v, attention output, intermediate, output"


def test_default_targets_skip_the_bert_pooler(text_helpers: Any) -> None:
    from transformers import AutoConfig, AutoModel

    cfg = dict(text_helpers.bert)
    bert = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    names = default_target_modules(bert)
    assert not [n for n in names if "pooler" in n]


# ------------------------------------------------------------------------------------------------------
# timm
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "separate"])
def test_lora_on_a_timm_model(merge: bool, helpers: Any, backbone_weights: Path, tmp_path: Path) -> None:
    X, y = helpers.color_arrays(8, 2)
    clf = graft.ImageClassifier(
        helpers.backbone,
        LoRA(merge=merge),
        **helpers.tiny_params(epochs=2, weights=str(backbone_weights), cache=False),
    )
    clf.fit(X, y)
    assert 0.0 < clf.trainable_share_ < 0.5
    assert [h["phase"] for h in clf.history_] == ["lora", "lora"]
    initial = load_file(str(backbone_weights))
    state = {k: v.detach().cpu() for k, v in clf.model_.backbone.state_dict().items()}
    targets = default_target_modules(clf.backbone_.module)  # the layers LoRA adapts (1x1 convs, linears)
    assert targets
    if merge:
        assert state.keys() == initial.keys()
        moved = {k for k in state if not torch.equal(state[k], initial[k])}
        assert moved, "merging trained adapters must change the adapted weights"
        assert moved <= {f"{t}.weight" for t in targets}, sorted(moved - {f"{t}.weight" for t in targets})[:5]
    else:
        base = {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
        assert base.keys() == initial.keys()
        assert all(torch.equal(base[k], initial[k]) for k in base), "LoRA moved a frozen weight or statistic"
        assert any(bool(v.abs().sum() > 0) for k, v in state.items() if "lora_B" in k)
    loaded = graft.load(clf.save(tmp_path / "bundle"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "match"), [({"r": 0}, "r must be >= 1"), ({"dropout": 1.0}, "dropout")])
def test_invalid_lora_fails_before_training(
    params: dict[str, Any], match: str, text_helpers: Any, tmp_path: Path
) -> None:
    calls: list[Any] = []
    run = tmp_path / "run"
    clf = text_helpers.tiny("bert", LoRA(**params), output_dir=run)
    with pytest.raises(ConfigError, match=match):
        clf.fit(*text_helpers.sentiment(8), callbacks=[lambda *a: calls.append(a)])
    assert calls == [] and not hasattr(clf, "model_") and not hasattr(clf, "backbone_")
    assert not run.exists()


def test_lora_rank_zero_on_images_fails_before_training(helpers: Any) -> None:
    clf = helpers.tiny_classifier(LoRA(r=0))
    with pytest.raises(ConfigError, match="r must be >= 1"):
        clf.fit(*helpers.color_arrays(4, 2))
    assert not hasattr(clf, "model_")
