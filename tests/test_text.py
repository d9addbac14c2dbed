"""Text classification: one contract suite over every strategy on tiny random BERT and GPT-2, plus pooling, layer
groups, sentence pairs, reading tables, errors and the embedded MiniLM with its real weights.

The tiny models are random 2-layer, 32-d transformers built from a ``transformers`` config with MiniLM's
tokenizer (``backbone="minilm"``, ``backbone_config=...``), so nothing is downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

import graft
from graft._cache import count_entries
from graft.backbones import create_backbone
from graft.backbones.embedded import minilm_path
from graft.backbones.huggingface import POOLINGS, TextEncoder, default_pooling, hf_layer_groups
from graft.errors import BundleError, ConfigError, DataError
from graft.estimators.text import TextBatcher
from graft.strategies import get_strategy, list_strategies

#: training settings per strategy that make the loss fall on the tiny sentiment set
_SETTINGS: dict[str, dict[str, Any]] = {
    "feature-extraction": {"epochs": 40, "lr": 5e-2},
    "lora": {"epochs": 6, "lr": 3e-2},
}
_DEFAULT_SETTINGS: dict[str, Any] = {"epochs": 4, "lr": 1e-2}
KINDS = ("bert", "gpt2")


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _initial_backbone(clf: Any) -> Any:
    """The backbone ``fit`` starts from: ``fit`` seeds torch with ``seed`` right before building it."""
    twin = clone(clf)
    torch.manual_seed(twin.seed)
    return twin._build_backbone(pretrained=twin.pretrained)


def _base_name(key: str) -> str:
    """A PEFT-wrapped layer's original weight name (``q.base_layer.weight`` -> ``q.weight``)."""
    return key.replace(".base_layer", "")


def _moved_base(now: dict[str, torch.Tensor], before: dict[str, torch.Tensor]) -> list[str]:
    """Names (original ones) of the non-adapter backbone tensors that differ from ``before``."""
    base = {_base_name(k): v for k, v in now.items() if "lora_" not in k}
    assert set(base) == set(before), "backbone tensors appeared or vanished during training"
    return sorted(k for k, v in base.items() if not torch.equal(v, before[k]))


# ------------------------------------------------------------------------------------------------------
# the contract, fitted once per strategy and architecture
# ------------------------------------------------------------------------------------------------------


def _contract_cases() -> list[Any]:
    # strategies made for one task only have their own suite (few-shot: tests/test_few_shot.py)
    names = [name for name in list_strategies(adaptation=False) if not get_strategy(name).tasks]
    return [pytest.param((name, kind), id=f"{name}-{kind}") for name in names for kind in KINDS]


@pytest.fixture(scope="module", params=_contract_cases())
def fitted(request: pytest.FixtureRequest, text_helpers: Any) -> SimpleNamespace:
    name, kind = request.param
    X, y = text_helpers.sentiment(40, seed=0)
    clf = text_helpers.tiny(kind, name, max_length=16, **_SETTINGS.get(name, _DEFAULT_SETTINGS))
    initial = _snapshot(_initial_backbone(clf).module)
    log: list[SimpleNamespace] = []

    def callback(phase: str, epoch: int, logs: dict[str, Any]) -> None:
        state = _snapshot(clf.model_.backbone)
        lora_b = [v for k, v in state.items() if "lora_B" in k]
        log.append(
            SimpleNamespace(
                phase=phase,
                epoch=epoch,
                logs=dict(logs),
                moved=_moved_base(state, initial),
                n_adapters=sum("lora_" in k for k in state),
                adapters_trained=any(bool(v.abs().sum() > 0) for v in lora_b),
            )
        )

    assert clf.fit(X, y, callbacks=[callback]) is clf
    return SimpleNamespace(name=name, kind=kind, clf=clf, X=X, y=y, initial=initial, log=log)


def test_contract_seeded_builds_are_identical(text_helpers: Any) -> None:
    """The assumption behind the frozen-weight checks: the same seed builds the same random backbone."""
    clf = text_helpers.tiny("bert", "feature-extraction", seed=3)
    a, b = _snapshot(_initial_backbone(clf).module), _snapshot(_initial_backbone(clf).module)
    c = _snapshot(_initial_backbone(clone(clf).set_params(seed=4)).module)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a), "another seed must give other weights"


def test_contract_fit_sets_fitted_attributes(fitted: SimpleNamespace) -> None:
    clf = fitted.clf
    assert list(clf.classes_) == ["neg", "pos"]
    assert clf.n_train_ + clf.n_val_ == 40 and clf.n_val_ > 0
    assert clf.best_epoch_ >= 1
    assert isinstance(clf.strategy_, get_strategy(fitted.name))
    assert clf.backbone_.spec["pooling"] == ("last" if fitted.kind == "gpt2" else "mean")
    phases = [rec.phase for rec in fitted.log]
    assert phases == [h["phase"] for h in clf.history_], "one callback per recorded epoch, in order"


def test_contract_training_loss_falls(fitted: SimpleNamespace) -> None:
    history = fitted.clf.history_
    last_phase = history[-1]["phase"]
    losses = [h["train_loss"] for h in history if h["phase"] == last_phase]
    assert len(losses) >= 2
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.02, f"{last_phase} train_loss did not fall: {losses}"


def test_contract_frozen_parameters_do_not_move(fitted: SimpleNamespace) -> None:
    """Backbone tensors the strategy keeps frozen are bit-identical to the seeded initial backbone, epoch by epoch."""
    clf, log = fitted.clf, fitted.log
    groups = [set(g) for g in clf.backbone_.groups]
    n = len(groups)
    assert log
    for rec in log:
        if rec.phase == "head":  # the head learns on cached embeddings: the backbone must not move at all
            assert rec.moved == [], f"head phase epoch {rec.epoch} moved {rec.moved[:5]}"
            continue
        k = clf.strategy_.trainable_at(rec.epoch, n)
        frozen = set().union(*groups[: n - k])
        assert not frozen & set(rec.moved), f"{rec.phase} epoch {rec.epoch} moved frozen {sorted(frozen)[:5]}"
    if clf.strategy_.frozen_backbone:
        final = _snapshot(clf.backbone_.module)
        assert final.keys() == fitted.initial.keys()
        assert all(torch.equal(final[k], fitted.initial[k]) for k in final), "feature extraction moved the backbone"


def test_contract_trainable_parts_move(fitted: SimpleNamespace) -> None:
    """What the strategy trains does change: unfrozen layer groups, or the adapters (LoRA) and only them."""
    clf, log = fitted.clf, fitted.log
    backbone_epochs = [rec for rec in log if rec.phase == clf.strategy_.name and rec.phase != "head"]
    if clf.strategy_.frozen_backbone:
        assert not backbone_epochs and all(rec.n_adapters == 0 for rec in log)
        return
    assert backbone_epochs
    last = backbone_epochs[-1]
    n = len(clf.backbone_.groups)
    if last.n_adapters:  # LoRA: adapters trained, every base weight untouched until the merge
        assert last.adapters_trained, "LoRA adapters (lora_B) stayed zero"
        assert all(rec.moved == [] for rec in backbone_epochs), backbone_epochs[-1].moved[:5]
        return
    k = clf.strategy_.trainable_at(last.epoch, n)
    for i, names in enumerate(clf.backbone_.groups[n - k :], start=n - k):
        if all("pooler" in name for name in names):  # BERT's pooler gets no gradient under mean pooling
            continue
        assert set(names) & set(last.moved), f"trainable group {i} did not change"


def test_contract_predictions_are_finite_probabilities(fitted: SimpleNamespace) -> None:
    clf, X = fitted.clf, fitted.X
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    pred = clf.predict(X)
    assert set(pred.tolist()) <= {"neg", "pos"}
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(1)])


def test_contract_save_load_gives_identical_predictions(fitted: SimpleNamespace, tmp_path: Path) -> None:
    clf, X = fitted.clf, fitted.X
    path = clf.save(tmp_path / "bundle")
    assert (path / "tokenizer").is_dir() and (path / "backbone_config.json").is_file()
    loaded = graft.load(path)
    assert isinstance(loaded, graft.TextClassifier)
    got, expected = loaded.predict_proba(X), clf.predict_proba(X)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.strategy_ == clf.strategy_
    assert loaded.backbone_.spec == clf.backbone_.spec


def test_a_text_bundle_with_a_missing_or_changed_tokenizer_file_is_refused(
    fitted: SimpleNamespace, tmp_path: Path
) -> None:
    import json
    import shutil

    path = fitted.clf.save(tmp_path / "bundle")
    listed = json.loads((path / "graft.json").read_text())["files"]
    assert {"model.safetensors", "backbone_config.json", "tokenizer/tokenizer.json"} <= set(listed)
    missing = shutil.copytree(path, tmp_path / "missing")
    (missing / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer/tokenizer\.json' is missing"):
        graft.load(missing)
    changed = shutil.copytree(path, tmp_path / "changed")
    (changed / "backbone_config.json").write_text("{")
    with pytest.raises(BundleError, match=r"backbone_config\.json' does not match the hash"):
        graft.load(changed)
    with pytest.raises(BundleError, match=r"backbone_config\.json' cannot be read"):
        graft.load(changed, verify=False)  # unchecked, the damaged file itself is named


def test_contract_params_and_clone(fitted: SimpleNamespace) -> None:
    clf = fitted.clf
    params = clf.get_params(deep=False)
    assert params["backbone_config"] == clf.backbone_config and params["max_length"] == 16
    twin = clone(clf)
    assert not hasattr(twin, "model_")
    assert twin.get_params(deep=True) == clf.get_params(deep=True)
    assert twin.strategy == clf.strategy
    twin.set_params(max_length=24, pooling="cls")
    assert (twin.max_length, twin.pooling) == (24, "cls") and clf.max_length == 16
    assert twin.backbone_config == clf.backbone_config and twin.backbone_config is not clf.backbone_config
    defaults = get_strategy(fitted.name)().for_modality("text").get_params()
    assert clf.strategy_.get_params() == defaults, "default strategy settings, text's where they depend on it"


@pytest.mark.parametrize("name", list_strategies(adaptation=False, task="text-classification"))
def test_set_params_on_a_strategy_object(name: str, text_helpers: Any) -> None:
    clf = text_helpers.tiny("bert", get_strategy(name)(label_smoothing=0.2))
    assert clf.get_params(deep=True)["strategy__label_smoothing"] == 0.2
    clf.set_params(strategy__label_smoothing=0.05, lr=1e-3)
    assert clf.strategy.label_smoothing == 0.05 and clf.lr == 1e-3
    twin = clone(clf)
    assert twin.strategy == clf.strategy and twin.strategy is not clf.strategy


# ------------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------------


def _tiny_backbone(config: dict[str, Any], pooling: str | None = None, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return create_backbone("minilm", modality="text", pretrained=False, config=config, pooling=pooling)


def _right_padded(tokenizer: Any, texts: list[str]) -> dict[str, torch.Tensor]:
    assert tokenizer.padding_side == "right"
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def test_default_pooling_per_architecture(text_helpers: Any) -> None:
    assert _tiny_backbone(text_helpers.bert).spec["pooling"] == "mean"
    gpt = _tiny_backbone(text_helpers.gpt2)
    assert gpt.spec["pooling"] == "last" and gpt.module.pooling == "last"
    assert default_pooling(gpt.config) == "last"
    assert gpt.feature_dim == 32


@pytest.mark.parametrize("kind", KINDS)
def test_poolings_give_different_features(kind: str, text_helpers: Any) -> None:
    config = getattr(text_helpers, kind)
    backbones = {p: _tiny_backbone(config, p) for p in POOLINGS}
    weights = [_snapshot(b.module) for b in backbones.values()]
    assert all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in weights[0]), "same seed, same weights"
    batch = _right_padded(backbones["mean"].tokenizer, ["a short one", "this sentence is clearly a bit longer"])
    with torch.no_grad():
        feats = {p: b.module.eval()(batch) for p, b in backbones.items()}
        h = backbones["mean"].module.token_features(batch)
    mask = batch["attention_mask"]
    for p, f in feats.items():
        assert f.shape == (2, 32), p
        assert torch.isfinite(f).all()
    for a in POOLINGS:
        for b in POOLINGS:
            if a < b:
                assert not torch.allclose(feats[a], feats[b]), f"{a} and {b} pooling gave the same features"
    torch.testing.assert_close(feats["cls"], h[:, 0])
    m = mask.unsqueeze(-1).float()
    torch.testing.assert_close(feats["mean"], (h * m).sum(1) / m.sum(1))


@pytest.mark.parametrize("kind", KINDS)
def test_last_pooling_takes_the_last_real_token_with_right_padding(kind: str, text_helpers: Any) -> None:
    backbone = _tiny_backbone(getattr(text_helpers, kind), "last")
    module = backbone.module.eval()
    texts = ["short", "a considerably longer input sentence here"]
    batch = _right_padded(backbone.tokenizer, texts)
    mask = batch["attention_mask"]
    lengths = mask.sum(1)
    assert lengths[0] < mask.shape[1], "the short text must be padded on the right"
    with torch.no_grad():
        pooled = module(batch)
        h = module.token_features(batch)
        alone = module(dict(backbone.tokenizer(texts[:1], return_tensors="pt")))
    for i in range(2):
        torch.testing.assert_close(pooled[i], h[i, int(lengths[i]) - 1])
    assert not torch.allclose(pooled[0], h[0, -1]), "a padding position was pooled"
    # the padded short text pools to what it gives on its own (padding is masked / causally invisible)
    torch.testing.assert_close(pooled[0], alone[0], atol=1e-5, rtol=1e-4)


def test_unknown_pooling_is_a_config_error(text_helpers: Any) -> None:
    with pytest.raises(ConfigError, match="pooling must be one of"):
        text_helpers.tiny("bert", pooling="max").fit(*text_helpers.sentiment(8))
    with pytest.raises(ConfigError, match="pooling"):
        TextEncoder(nn.Linear(2, 2), "first")


def test_gpt2_without_a_pad_token_pads_with_eos(tmp_path: Path, text_helpers: Any) -> None:
    """A causal LM's tokenizer often has no pad token: the backbone pads with EOS, and fit/predict/load work."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path())
    tok.eos_token = "[SEP]"
    tok.pad_token = None
    assert tok.pad_token is None
    folder = tmp_path / "gpt2-tokenizer"
    tok.save_pretrained(str(folder))
    clf = graft.TextClassifier(
        str(folder),
        "fine-tune",
        backbone_config=text_helpers.gpt2,
        max_length=16,
        epochs=1,
        batch_size=8,
        device="cpu",
        cache=False,
    )
    X, y = text_helpers.sentiment(12)
    clf.fit(X, y)
    assert clf.backbone_.tokenizer.pad_token == "[SEP]"
    assert clf.backbone_.spec["pooling"] == "last"
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    loaded = graft.load(clf.save(tmp_path / "bundle"))
    assert loaded.backbone_.tokenizer.pad_token == "[SEP]"
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------------
# layer groups
# ------------------------------------------------------------------------------------------------------


def test_hf_layer_groups_bert_order(text_helpers: Any) -> None:
    """Embeddings first, then one group per layer in numeric order (10 after 9), then pooler/final norm."""
    from transformers import AutoConfig, AutoModel

    cfg = {**text_helpers.bert, "num_hidden_layers": 11}
    model = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    groups = hf_layer_groups(model)
    assert len(groups) == 1 + 11 + 1
    assert groups[0] and all(n.startswith("embeddings.") for n in groups[0])
    for i in range(11):
        assert groups[1 + i] and all(n.startswith(f"encoder.layer.{i}.") for n in groups[1 + i]), i
    assert groups[-1] and all(n.startswith("pooler.") for n in groups[-1])
    flat = [n for g in groups for n in g]
    assert sorted(flat) == sorted(n for n, _ in model.named_parameters()), "every parameter in exactly one group"


def test_hf_layer_groups_gpt2_order(text_helpers: Any) -> None:
    from transformers import AutoConfig, AutoModel

    cfg = {**text_helpers.gpt2, "n_layer": 11}
    model = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    groups = hf_layer_groups(model)
    assert sorted(groups[0]) == ["wpe.weight", "wte.weight"]
    for i in range(11):
        assert all(n.startswith(f"h.{i}.") for n in groups[1 + i]), i
    assert sorted(groups[-1]) == ["ln_f.bias", "ln_f.weight"]
    assert len(groups) == 13
    assert sorted(n for g in groups for n in g) == sorted(n for n, _ in model.named_parameters())


def test_backbone_layer_groups_cover_the_encoder(text_helpers: Any) -> None:
    backbone = _tiny_backbone(text_helpers.bert)
    groups = backbone.layer_groups()
    assert len(groups) == 4  # embeddings, layer 0, layer 1, pooler
    assert sum(len(g) for g in groups) == len(list(backbone.module.parameters()))
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------------------------------
# sentence pairs
# ------------------------------------------------------------------------------------------------------


def test_sentence_pairs_reach_the_tokenizer(text_helpers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, Any, list[dict[str, list[int]]]]] = []
    original = TextBatcher.encode

    def spy(self: TextBatcher, texts: Any, pairs: Any = None) -> Any:
        out = original(self, texts, pairs)
        calls.append((len(texts), None if pairs is None else list(pairs), out))
        return out

    monkeypatch.setattr(TextBatcher, "encode", spy)
    texts, labels = text_helpers.sentiment(20, seed=1)
    others, _ = text_helpers.sentiment(20, seed=2)
    X = list(zip(texts, others))
    clf = text_helpers.tiny("bert", "fine-tune", epochs=1).fit(X, labels)
    assert calls, "fit never tokenised"
    n, pairs, encoded = calls[0]
    assert pairs is not None and len(pairs) == n
    assert set(pairs) <= set(others)
    for item in encoded:
        assert "token_type_ids" in item and 1 in item["token_type_ids"], "the second segment is missing"
        assert item["input_ids"].count(clf.backbone_.tokenizer.sep_token_id) == 2
    proba = clf.predict_proba([(texts[0], others[0]), (texts[0], "completely different words in here")])
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    assert not np.allclose(proba[0], proba[1]), "the pair text had no effect on the prediction"


def test_a_pair_model_refuses_single_texts_after_a_reload_and_serves_pairs(text_helpers: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from graft.cli import app
    from graft.serve import create_app

    texts, labels = text_helpers.sentiment(16, seed=1)
    others, _ = text_helpers.sentiment(16, seed=2)
    clf = text_helpers.tiny("bert", "feature-extraction", epochs=1).fit(list(zip(texts, others)), labels)
    with pytest.raises(DataError, match="trained on sentence pairs, but the input holds single texts"):
        clf.predict([texts[0]])
    run = clf.save(tmp_path / "pairs")
    loaded = graft.load(run)
    with pytest.raises(DataError, match="trained on sentence pairs"):
        loaded.predict_proba([texts[0]])
    expected = loaded.predict_proba([(texts[0], others[0])])[0]
    cli = CliRunner().invoke(app, ["predict", str(run), "--text", texts[0], "--text-pair", others[0], "--json"])
    assert cli.exit_code == 0, cli.output
    row = json.loads(cli.stdout)[0]
    assert row["input"] == f"{texts[0]} | {others[0]}"
    assert {t["label"]: t["probability"] for t in row["top_k"]}[row["label"]] == pytest.approx(expected.max(), abs=1e-5)
    single = CliRunner().invoke(app, ["predict", str(run), "--text", texts[0]])
    assert single.exit_code == 2 and "--text-pair" in " ".join(single.output.split())
    with TestClient(create_app(run)) as client:
        ok = client.post("/predict", json={"texts": [texts[0]], "text_pairs": [others[0]]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"][0]["label"] == row["label"]
        bad = client.post("/predict", json={"texts": [texts[0]]})
        assert bad.status_code in (400, 422) and "text_pairs" in bad.text
        uneven = client.post("/predict", json={"texts": [texts[0]], "text_pairs": []})
        assert uneven.status_code == 422 and "text_pairs must be a list of 1 strings" in uneven.text


def test_text_batcher_pairs_and_length_sorted_batches(text_helpers: Any) -> None:
    tok = _tiny_backbone(text_helpers.bert).tokenizer
    batcher = TextBatcher(tok, max_length=8)
    enc = batcher.encode(["one", "a much much longer text that gets truncated"], ["two", "x"])
    assert len(enc[1]["input_ids"]) == 8, "truncated to max_length"
    assert enc[0]["token_type_ids"] == [0, 0, 0, 1, 1]
    batches = batcher.batches(enc + batcher.encode(["mid size text"], ["y"]), batch_size=2)
    assert [idx for idx, _ in batches] == [[0, 2], [1]]
    padded = batches[0][1]
    assert padded["input_ids"].shape[0] == 2 and padded["attention_mask"].sum(1).tolist() == [5, 7]


# ------------------------------------------------------------------------------------------------------
# reading data
# ------------------------------------------------------------------------------------------------------


def _write_table(path: Path, header: list[str], rows: list[list[str]], sep: str = ",") -> Path:
    def cell(v: str) -> str:
        return f'"{v}"' if sep == "," and ("," in v or '"' in v) else v

    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [sep.join(header)] + [sep.join(cell(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_with_auto_detected_columns(tmp_path: Path, text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(30)
    csv = _write_table(
        tmp_path / "reviews.csv",
        ["id", "review", "sentiment"],
        [[str(i), t, lab] for i, (t, lab) in enumerate(zip(texts, labels))],
    )
    clf = text_helpers.tiny("bert", epochs=5).fit(csv)
    assert list(clf.classes_) == ["neg", "pos"]
    assert clf.n_train_ + clf.n_val_ == 30
    proba = clf.predict_proba(csv)  # the same file as prediction input: the review column, 30 rows
    np.testing.assert_allclose(proba, clf.predict_proba(texts), atol=1e-6)
    assert clf.evaluate(csv)["n"] == 30


def test_tsv_folder_uses_dev_as_validation_and_test_for_evaluate(tmp_path: Path, text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(44, seed=5)
    ints = ["1" if lab == "pos" else "0" for lab in labels]
    rows = [[t, lab] for t, lab in zip(texts, ints)]
    folder = tmp_path / "sst"
    _write_table(folder / "train.tsv", ["sentence", "label"], rows[:30], sep="\t")
    _write_table(folder / "dev.tsv", ["sentence", "label"], rows[30:38], sep="\t")
    _write_table(folder / "test.tsv", ["sentence", "label"], rows[38:], sep="\t")
    clf = text_helpers.tiny("bert", epochs=5).fit(folder)
    assert clf.n_val_ == 8 and clf.n_train_ == 30
    assert list(clf.classes_) == ["0", "1"], "labels read from a file stay strings"
    assert clf.evaluate(folder)["n"] == 6, "evaluate on a folder scores its test split"


def test_a_text_table_with_feature_columns_warns_that_text_classification_leaves_them_out(
    tmp_path: Path, text_helpers: Any
) -> None:
    texts, labels = text_helpers.sentiment(20, seed=3)
    rows = [[str(i), t, str(30 + i), "yes" if i % 3 else "no", lab] for i, (t, lab) in enumerate(zip(texts, labels))]
    csv = _write_table(tmp_path / "reviews.csv", ["id", "review", "age", "member", "label"], rows)
    with pytest.warns(UserWarning, match=r"leaves out 'age', 'member'\. .*--task tabular-classification"):
        text_helpers.tiny("bert", "feature-extraction").fit(csv)
    plain = _write_table(tmp_path / "plain.csv", ["id", "review", "label"], [r[:2] + r[4:] for r in rows])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="text classification reads only")
        text_helpers.tiny("bert", "feature-extraction").fit(plain)  # an ID column is no feature left out


def test_single_labels_that_read_like_label_sets_are_warned_about(text_helpers: Any) -> None:
    texts, _ = text_helpers.sentiment(12, seed=4)
    labels = ["sports", "tech", "politics", "sports|tech", "politics|tech", "tech"] * 2
    with pytest.warns(UserWarning, match=r"look like label sets.*--multi-label --label-sep '\|'"):
        text_helpers.tiny("bert", "feature-extraction", epochs=1).fit(texts, labels)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*look like label sets")
        text_helpers.tiny("bert", "feature-extraction", epochs=1).fit(texts, ["a", "b", "a, b c"] * 4)


def test_integer_labels_round_trip_as_ints(tmp_path: Path, text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(24)
    y = np.asarray([int(lab == "pos") for lab in labels])
    clf = text_helpers.tiny("bert", epochs=5).fit(texts, y)
    assert clf.classes_.tolist() == [0, 1] and np.issubdtype(clf.classes_.dtype, np.integer)
    pred = clf.predict(texts)
    assert all(isinstance(p, (int, np.integer)) for p in pred)
    assert 0.0 <= clf.score(texts, y) <= 1.0
    loaded = graft.load(clf.save(tmp_path / "bundle"))
    assert np.issubdtype(loaded.classes_.dtype, np.integer)
    np.testing.assert_array_equal(loaded.predict(texts), pred)
    assert loaded.evaluate(texts, y.tolist())["n"] == 24


def test_empty_text_row_is_a_data_error_naming_the_row(tmp_path: Path, text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(6)
    rows = [[t, lab] for t, lab in zip(texts, labels)]
    rows[2][0] = "   "
    csv = _write_table(tmp_path / "bad.csv", ["text", "label"], rows)
    with pytest.raises(DataError) as info:
        text_helpers.tiny("bert").fit(csv)
    message = str(info.value)
    assert f"{csv}:row 3" in message and "empty" in message
    assert "row 2" not in message and "row 4" not in message


def test_empty_text_in_a_list_is_a_data_error(text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(6)
    texts[4] = ""
    with pytest.raises(DataError, match=r"text\[4\]"):
        text_helpers.tiny("bert").fit(texts, labels)


def test_unknown_text_column_suggests_a_name(tmp_path: Path, text_helpers: Any) -> None:
    texts, labels = text_helpers.sentiment(6)
    csv = _write_table(tmp_path / "d.csv", ["review", "label"], [[t, lab] for t, lab in zip(texts, labels)])
    with pytest.raises(DataError, match="Did you mean 'review'"):
        text_helpers.tiny("bert", text_column="reveiw").fit(csv)


def test_predict_proba_before_fit_is_not_fitted(text_helpers: Any) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        text_helpers.tiny("bert").predict_proba(["hello"])


def test_predict_before_fit_is_not_fitted(text_helpers: Any) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        text_helpers.tiny("bert").predict(["hello"])


def test_max_length_below_two_is_a_config_error(text_helpers: Any) -> None:
    with pytest.raises(ConfigError, match="max_length"):
        text_helpers.tiny("bert", max_length=1).fit(*text_helpers.sentiment(8))


# ------------------------------------------------------------------------------------------------------
# the embedded MiniLM, real weights
# ------------------------------------------------------------------------------------------------------

SPORTS = [
    "The striker scored a late goal to win the football match",
    "Our team lost the basketball game in overtime",
    "The tennis player served an ace on match point",
    "The coach praised the defenders after the league victory",
    "Fans filled the stadium for the championship final",
    "The goalkeeper saved a penalty in the second half",
    "She won the marathon with a record time",
    "The cricket captain declared after lunch on day two",
    "He was sent off for a rough tackle on the winger",
    "The cyclist attacked on the final mountain climb",
    "The quarterback threw three touchdown passes",
    "The referee added five minutes of stoppage time",
    "The swimmer took gold in the freestyle relay",
    "They trained hard before the world cup qualifier",
    "The boxer won the title fight by knockout",
    "The pitcher struck out ten batters in the game",
    "The midfielder signed a new contract with the club",
    "The golfer sank a long putt on the eighteenth hole",
    "The rugby team scored a try in the final minute",
    "The skier crashed during the downhill race",
]
COOKING = [
    "Chop the onions and fry them gently in butter",
    "Bake the bread in a hot oven for forty minutes",
    "Whisk the eggs with sugar until the mixture is pale",
    "Season the soup with salt pepper and fresh herbs",
    "Simmer the tomato sauce with garlic and basil",
    "Knead the dough and let it rise for an hour",
    "Roast the chicken with lemon and rosemary",
    "Stir the risotto slowly while adding warm stock",
    "Melt the chocolate over a pan of simmering water",
    "Grate the cheese over the pasta before serving",
    "Marinate the beef overnight in soy sauce and ginger",
    "Peel the potatoes and boil them until soft",
    "The chef added a pinch of cinnamon to the cake batter",
    "Fold the flour gently into the creamed butter",
    "Slice the carrots thinly for the salad",
    "Grill the fish and serve it with lemon butter",
    "Mix the yogurt with cucumber and mint for the dip",
    "Sprinkle the cookies with sea salt before baking",
    "Blend the soup until smooth and add cream",
    "Toast the spices in a dry pan before grinding",
]
SPORTS_TEST = [
    "The home side equalised with a header from a corner",
    "She reached the semifinal of the tennis tournament",
    "The team celebrated winning the league title",
    "The sprinter false started in the hundred metres final",
    "The club sacked its manager after five defeats",
]
COOKING_TEST = [
    "Saute the mushrooms in olive oil with thyme",
    "Preheat the oven and grease the baking tray",
    "Add a spoonful of honey to the salad dressing",
    "Let the stew simmer gently for two hours",
    "Cream the butter and sugar for the sponge cake",
]


def test_minilm_feature_extraction_learns_topics_and_round_trips(tmp_path: Path, graft_cache_dir: Path) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    X = SPORTS + COOKING
    y = ["sports"] * len(SPORTS) + ["cooking"] * len(COOKING)
    clf = graft.TextClassifier("minilm", "feature-extraction", epochs=20, device="cpu", batch_size=16)
    clf.fit(X, y)
    assert clf.backbone_.spec["name"] == "minilm" and clf.backbone_.feature_dim == 384
    X_test = SPORTS_TEST + COOKING_TEST
    y_test = ["sports"] * len(SPORTS_TEST) + ["cooking"] * len(COOKING_TEST)
    metrics = clf.evaluate(X_test, y_test)
    assert metrics["accuracy"] >= 0.8, metrics["accuracy"]
    assert count_entries(graft_cache_dir) == len(X) + len(X_test), "one embedding per training and evaluated text"
    assert list(graft_cache_dir.rglob("*.json")), "stored in shards, one per embedded batch"

    path = clf.save(tmp_path / "minilm-bundle")
    loaded = graft.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_feature_extraction_evaluates_from_cached_embeddings(text_helpers: Any, count_embeddings: Any) -> None:
    from graft.estimators.text import TextClassifier

    X, y = text_helpers.sentiment(24, seed=0)
    X_test, y_test = text_helpers.sentiment(10, seed=5)
    clf = text_helpers.tiny("bert", "feature-extraction", cache=True).fit(X, y)
    calls = count_embeddings(TextClassifier)
    first, second = clf.evaluate(X_test, y_test), clf.evaluate(X_test, y_test)
    assert calls == [len(X_test)], "the second evaluation reads the cache"
    direct = clf.set_params(cache=False).evaluate(X_test, y_test)
    for key in ("accuracy", "log_loss"):
        assert first[key] == pytest.approx(direct[key], abs=1e-5) and second[key] == first[key], key
