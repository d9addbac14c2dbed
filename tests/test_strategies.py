"""One contract suite run against every registered strategy, plus the strategy objects themselves.

In the manner of scikit-learn's ``parametrize_with_checks``: each registered strategy (its default
instance) is fitted once on a tiny learnable colour data set with a fixed backbone initialisation, and
the same checks run on every one of them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.base import clone
from torch import nn

import graft
from graft.errors import ConfigError
from graft.strategies import (
    FeatureExtraction,
    FineTune,
    Strategy,
    get_strategy,
    list_strategies,
    register_strategy,
    resolve_strategy,
)
from graft.strategies.finetune import layerwise_groups

#: training settings per strategy that make the loss fall reliably on the colour data
_SETTINGS: dict[str, dict[str, Any]] = {"feature-extraction": {"epochs": 15, "lr": 3e-2}}
_DEFAULT_SETTINGS: dict[str, Any] = {"epochs": 4, "lr": 1e-2}


def _contract_cases() -> list[Any]:
    cases = []
    for name in list_strategies(adaptation=False, task="image-classification"):
        cases.append(pytest.param((name, {}), id=name))
    # the same contract for fine-tuning without head warm-up
    cases.append(pytest.param(("fine-tune", {"head_warmup": False}), id="fine-tune-no-warmup"))
    return cases


def _group_keys(backbone: Any) -> list[set[str]]:
    """State-dict keys of each layer group (its parameters and its modules' buffers), stem first."""
    module: nn.Module = backbone.module
    name_of = {id(p): n for n, p in module.named_parameters()}
    buffers = [n for n, _ in module.named_buffers()]
    out = []
    for params in backbone.layer_groups():
        names = {name_of[id(p)] for p in params}
        owners = {n.rpartition(".")[0] for n in names}
        names |= {b for b in buffers if b.rpartition(".")[0] in owners}
        out.append(names)
    return out


def _moved(now: dict[str, torch.Tensor], before: dict[str, torch.Tensor], keys: set[str]) -> list[str]:
    return sorted(k for k in keys if not torch.equal(now[k].detach().cpu(), before[k].cpu()))


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------------------------
# the contract, fitted once per strategy
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=_contract_cases())
def fitted(request: pytest.FixtureRequest, helpers: Any, backbone_weights: Path) -> SimpleNamespace:
    name, overrides = request.param
    strategy = resolve_strategy(name, **overrides)
    X, y = helpers.color_arrays(12, 2, seed=0)
    settings = _SETTINGS.get(name, _DEFAULT_SETTINGS)
    clf = helpers.tiny_classifier(strategy, weights=str(backbone_weights), cache=False, **settings)
    assert clf.fit(X, y) is clf
    return SimpleNamespace(name=name, clf=clf, X=X, y=y)


def test_contract_fit_sets_fitted_attributes(fitted: SimpleNamespace) -> None:
    clf = fitted.clf
    assert list(clf.classes_) == [0, 1]
    assert clf.n_train_ + clf.n_val_ == len(fitted.y)
    assert clf.n_val_ > 0
    assert clf.history_, "no epochs recorded"
    assert {h["phase"] for h in clf.history_} <= {"head", clf.strategy_.name}
    assert clf.best_epoch_ >= 1
    assert 0.0 <= clf.best_metrics_["val_accuracy"] <= 1.0
    assert isinstance(clf.strategy_, get_strategy(fitted.name))


def test_contract_training_loss_falls(fitted: SimpleNamespace) -> None:
    history = fitted.clf.history_
    last_phase = history[-1]["phase"]
    losses = [h["train_loss"] for h in history if h["phase"] == last_phase]
    assert len(losses) >= 2
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.05, f"{last_phase} train_loss did not fall: {losses}"


def test_contract_frozen_parameters_do_not_move(fitted: SimpleNamespace, backbone_weights: Path) -> None:
    """Groups the strategy never unfreezes are bit-identical (weights and BatchNorm statistics); others moved."""
    clf = fitted.clf
    if clf.strategy_.name == "lora":
        pytest.skip(
            "LoRA merges its trained low-rank deltas into the weights; tests/test_lora.py checks that only "
            "adapters and the head train"
        )
    initial = load_file(str(backbone_weights))
    final = clf.model_.backbone.state_dict()
    groups = _group_keys(clf.backbone_)
    assert set().union(*groups) == set(initial), "layer groups must cover every backbone tensor"
    n_groups = len(groups)
    epochs = sum(1 for h in clf.history_ if h["phase"] == "fine-tune")
    trained = {
        i for e in range(epochs) for i in range(n_groups) if i >= n_groups - clf.strategy_.trainable_at(e, n_groups)
    }
    for i, keys in enumerate(groups):
        moved = _moved(final, initial, keys)
        if i in trained:
            assert moved, f"group {i} was trainable but did not change"
        else:
            assert not moved, f"group {i} is frozen by {clf.strategy_!r} but changed: {moved[:5]}"


def test_contract_predictions_are_finite_probabilities(fitted: SimpleNamespace) -> None:
    clf, X = fitted.clf, fitted.X
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    pred = clf.predict(X)
    assert set(pred.tolist()) <= {0, 1}
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(1)])


def test_contract_save_load_gives_identical_predictions(fitted: SimpleNamespace, tmp_path: Path) -> None:
    clf, X = fitted.clf, fitted.X
    path = clf.save(tmp_path / "bundle")
    loaded = graft.load(path)
    expected = clf.predict_proba(X)
    got = loaded.predict_proba(X)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.strategy_ == clf.strategy_


def test_contract_clone_of_fitted_is_unfitted_with_same_params(fitted: SimpleNamespace) -> None:
    clf = fitted.clf
    twin = clone(clf)
    assert not hasattr(twin, "model_")
    assert twin.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    assert twin.strategy == clf.strategy and twin.strategy is not clf.strategy
    assert twin.get_params(deep=True) == clf.get_params(deep=True)


# ------------------------------------------------------------------------------------------------------
# parameters (no fitting)
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_strategies(adaptation=False, task="image-classification"))
def test_estimator_get_set_params_round_trip(name: str) -> None:
    strategy = get_strategy(name)()
    clf = graft.ImageClassifier("test_efficientnet", strategy, epochs=3, lr=0.01, image_size=32)
    params = clf.get_params(deep=False)
    assert params["strategy"] is strategy and params["epochs"] == 3 and params["image_size"] == 32
    other = graft.ImageClassifier().set_params(**params)
    assert other.get_params(deep=False) == params

    deep = clf.get_params(deep=True)
    for key, value in strategy.get_params().items():
        assert deep[f"strategy__{key}"] == value
    clf.set_params(strategy__label_smoothing=0.25)
    assert clf.strategy.label_smoothing == 0.25


@pytest.mark.parametrize("name", list_strategies(adaptation=False, task="image-classification"))
def test_estimator_clone(name: str) -> None:
    clf = graft.ImageClassifier("test_efficientnet", get_strategy(name)(label_smoothing=0.2), seed=7)
    twin = clone(clf)
    assert twin is not clf and twin.strategy is not clf.strategy
    assert twin.strategy == clf.strategy
    assert twin.get_params(deep=True) == clf.get_params(deep=True)


@pytest.mark.parametrize("name", list_strategies(adaptation=False, task="image-classification"))
def test_strategy_params_and_config_round_trip(name: str) -> None:
    cls = get_strategy(name)
    s = cls()
    params = s.get_params()
    assert params and set(params) == set(cls._param_names())
    assert cls(**params) == s
    config = s.to_config()
    assert config["name"] == name == cls.name
    assert resolve_strategy(config["name"], **config["params"]) == s
    assert repr(s).startswith(f"{cls.__name__}(")
    assert s.default_epochs >= 1 and s.default_lr > 0


def test_strategy_equality_and_hash() -> None:
    assert FineTune() == FineTune()
    assert FineTune(lr_decay=0.5) != FineTune()
    assert FineTune() != FeatureExtraction()
    assert FeatureExtraction(tta=True) == FeatureExtraction(tta=True)
    with pytest.raises(TypeError):
        hash(FineTune())


@pytest.mark.parametrize(
    "name, cls",
    [
        ("fine-tune", FineTune),
        ("finetune", FineTune),
        ("Fine_Tune", FineTune),
        ("feature-extraction", FeatureExtraction),
        ("feature_extraction", FeatureExtraction),
        ("fe", FeatureExtraction),
        ("linear-probe", FeatureExtraction),
    ],
)
def test_resolve_strategy_by_name_and_alias(name: str, cls: type[Strategy]) -> None:
    s = resolve_strategy(name)
    assert type(s) is cls
    assert s == cls()


def test_resolve_strategy_copies_instances_and_applies_overrides() -> None:
    original = FineTune(lr_decay=0.5)
    copy = resolve_strategy(original)
    assert copy == original and copy is not original
    changed = resolve_strategy(original, gradual=True)
    assert changed.gradual is True and original.gradual is False


def test_unknown_strategy_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'fine-tune'"):
        resolve_strategy("fine-tun")
    with pytest.raises(ConfigError, match="Did you mean 'feature-extraction'"):
        get_strategy("feature-extractio")


def test_unknown_strategy_fails_fit_with_config_error(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="Unknown strategy 'fien-tune'"):
        tiny("fien-tune").fit(*arrays)


def test_resolve_strategy_rejects_other_types() -> None:
    with pytest.raises(ConfigError, match="must be a name or"):
        resolve_strategy(42)  # type: ignore[arg-type]


def test_set_params_rejects_unknown_parameter() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'lr_decay'"):
        FineTune().set_params(lr_decy=0.5)


def test_register_strategy_validates_names() -> None:
    class BadName(Strategy):
        name = "Bad Name"

    class Clash(Strategy):
        name = "fine-tune"

    with pytest.raises(ValueError, match="lower-case"):
        register_strategy(BadName)
    with pytest.raises(ValueError, match="already registered"):
        register_strategy(Clash)
    assert register_strategy(FineTune) is FineTune  # registering the same class again is a no-op
    assert get_strategy("fine-tune") is FineTune


# ------------------------------------------------------------------------------------------------------
# FineTune: validation, schedule of unfreezing, layer-wise learning rates
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [({"lr_decay": 0}, "lr_decay"), ({"lr_decay": 1.5}, "lr_decay"), ({"freeze_epochs": -1}, "freeze_epochs")],
)
def test_finetune_invalid_settings_fail_fit(
    kwargs: dict[str, Any], match: str, tiny: Any, arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    with pytest.raises(ConfigError, match=match):
        tiny(FineTune(head_warmup=False, **kwargs)).fit(*arrays)


@pytest.mark.parametrize("setting", [{"dropout": 2.0}, {"dropout": -0.5}, {"label_smoothing": 5.0}])
def test_shared_settings_out_of_range_are_refused_by_name(setting: dict[str, float]) -> None:
    from graft.strategies import resolve_strategy

    for name in ("feature-extraction", "fine-tune", "dann", "coral"):
        strategy = resolve_strategy(name, **setting)
        key, value = next(iter(setting.items()))
        with pytest.raises(ConfigError, match=rf"{key} must be in \[0, 1\); got {value}"):
            strategy.validate()


def test_finetune_invalid_settings_fail_before_any_training(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    calls: list[tuple[str, int]] = []
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="lr_decay"):
        tiny(FineTune(lr_decay=0), output_dir=run, cache=False).fit(
            *arrays, callbacks=[lambda phase, epoch, logs: calls.append((phase, epoch))]
        )
    assert calls == [], "a bad setting should fail before the head warm-up trains"
    assert not run.exists(), "a bad setting should fail before the run directory is written"


def test_finetune_trainable_at_schedule() -> None:
    n = 5
    assert [FineTune().trainable_at(e, n) for e in range(3)] == [n, n, n]
    assert [FineTune(freeze_epochs=1).trainable_at(e, n) for e in range(3)] == [0, n, n]
    assert [FineTune(gradual=True).trainable_at(e, n) for e in range(7)] == [1, 2, 3, 4, 5, 5, 5]
    assert [FineTune(gradual=True, freeze_epochs=2).trainable_at(e, n) for e in range(4)] == [0, 0, 1, 2]
    assert all(FeatureExtraction().trainable_at(e, n) == 0 for e in range(3))


def test_layerwise_learning_rates_decay_from_the_top() -> None:
    groups = [[nn.Parameter(torch.zeros(1))] for _ in range(3)]  # stem, middle, top
    head = [nn.Parameter(torch.zeros(1))]
    out = FineTune(lr_decay=0.5).param_groups(groups, head, 0.1)
    assert out[0]["params"] is head and out[0]["lr"] == pytest.approx(0.1)
    assert [g["params"] for g in out[1:]] == [groups[2], groups[1], groups[0]]
    assert [g["lr"] for g in out[1:]] == pytest.approx([0.05, 0.025, 0.0125])
    flat = layerwise_groups(groups, head, 1.0, 1.0)
    assert [g["lr"] for g in flat] == [1.0] * 4


def test_param_groups_of_a_real_backbone_cover_every_parameter_once(helpers: Any) -> None:
    from graft.backbones import create_backbone

    backbone = create_backbone(helpers.backbone, pretrained=False)
    head = list(nn.Linear(backbone.feature_dim, 2).parameters())
    groups = backbone.layer_groups()
    assert len(groups) >= 3
    out = FineTune(lr_decay=0.7).param_groups(groups, head, 1e-2)
    ids = [id(p) for g in out for p in g["params"]]
    assert len(ids) == len(set(ids)), "a parameter is in two optimizer groups"
    assert set(ids) == {id(p) for p in backbone.module.parameters()} | {id(p) for p in head}
    lrs = [g["lr"] for g in out]
    assert lrs[0] == pytest.approx(1e-2)
    for k in range(1, len(lrs)):
        assert lrs[k] == pytest.approx(1e-2 * 0.7**k)
    fe = FeatureExtraction().param_groups(groups, head, 1e-2)
    assert len(fe) == 1 and fe[0]["params"] is head


# ------------------------------------------------------------------------------------------------------
# frozen weights during training, seen from a callback
# ------------------------------------------------------------------------------------------------------


def test_feature_extraction_leaves_backbone_bit_identical(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    clf = tiny("feature-extraction", weights=str(backbone_weights)).fit(*arrays)
    initial = load_file(str(backbone_weights))
    final = clf.model_.backbone.state_dict()
    assert set(final) == set(initial)
    bn_stats = [k for k in initial if k.endswith(("running_mean", "running_var"))]
    assert bn_stats, "the tiny backbone should have BatchNorm statistics"
    changed = [k for k in initial if not torch.equal(final[k].cpu(), initial[k])]
    assert changed == []


def test_finetune_freeze_epochs_keeps_backbone_fixed_then_trains_it(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    initial = load_file(str(backbone_weights))
    snapshots: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    clf = tiny(
        FineTune(freeze_epochs=1, head_warmup=False, freeze_bn=False),
        weights=str(backbone_weights),
        epochs=2,
        lr=1e-2,
    )

    def record(phase: str, epoch: int, logs: dict[str, Any]) -> None:
        snapshots[(phase, epoch)] = _snapshot(clf.model_.backbone)

    clf.fit(*arrays, callbacks=[record])
    assert sorted(snapshots) == [("fine-tune", 0), ("fine-tune", 1)]
    groups = _group_keys(clf.backbone_)
    frozen_epoch, trained_epoch = snapshots[("fine-tune", 0)], snapshots[("fine-tune", 1)]
    assert _moved(frozen_epoch, initial, set(initial)) == [], "backbone changed during the frozen epoch"
    for i, keys in enumerate(groups):
        assert _moved(trained_epoch, initial, keys), f"group {i} did not train after unfreezing"
    assert _moved(trained_epoch, initial, {k for k in initial if k.endswith("running_mean")})


def test_finetune_default_keeps_batchnorm_statistics(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    """freeze_bn=True (the default): weights train, BatchNorm running statistics stay at their initial values."""
    initial = load_file(str(backbone_weights))
    clf = tiny(FineTune(head_warmup=False), weights=str(backbone_weights), epochs=2, lr=1e-2).fit(*arrays)
    final = clf.model_.backbone.state_dict()
    stats = {k for k in initial if k.endswith(("running_mean", "running_var"))}
    assert stats and _moved(final, initial, stats) == []
    assert _moved(final, initial, {k for k in initial if k.endswith("weight")})


def test_finetune_gradual_unfreezes_from_the_top(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    initial = load_file(str(backbone_weights))
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    clf = tiny(FineTune(gradual=True, head_warmup=False), weights=str(backbone_weights), epochs=2, lr=1e-2)

    def record(phase: str, epoch: int, logs: dict[str, Any]) -> None:
        snapshots[epoch] = _snapshot(clf.model_.backbone)

    clf.fit(*arrays, callbacks=[record])
    groups = _group_keys(clf.backbone_)
    n = len(groups)
    moved_after = {
        e: [i for i, keys in enumerate(groups) if _moved(snapshots[e], initial, keys)] for e in sorted(snapshots)
    }
    assert moved_after[0] == [n - 1], "after epoch 0 only the top group may have changed"
    assert moved_after[1] == [n - 2, n - 1], "after epoch 1 the two top groups have changed"
    assert 0 not in moved_after[1], "the stem must stay frozen"


def test_default_finetune_with_head_warmup_fits(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    """The default strategy of ImageClassifier (and of `graft train`) must fit at all."""
    clf = tiny("fine-tune", epochs=1, cache=False).fit(*arrays)
    assert [h["phase"] for h in clf.history_][-1] == "fine-tune"


def test_finetune_freeze_bn_keeps_batchnorm_statistics(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    initial = load_file(str(backbone_weights))
    clf = tiny(FineTune(head_warmup=False, freeze_bn=True), weights=str(backbone_weights), epochs=2, lr=1e-2)
    clf.fit(*arrays)
    final = clf.model_.backbone.state_dict()
    stats = {k for k in initial if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    weights = {k for k in initial if k.endswith(".weight")}
    assert _moved(final, initial, stats) == [], "freeze_bn must keep every BatchNorm's running statistics"
    assert _moved(final, initial, weights), "the backbone's weights still train"


def test_finetune_strong_augmentation_trains(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], backbone_weights: Path
) -> None:
    clf = tiny(FineTune(head_warmup=False), augment="strong", weights=str(backbone_weights), epochs=2, lr=1e-2)
    clf.fit(*arrays)
    assert len(clf.history_) == 2 and all(np.isfinite(h["train_loss"]) for h in clf.history_)
    assert np.isfinite(clf.predict_proba(arrays[0])).all()


def test_feature_extraction_tta_is_applied_when_predicting(tiny: Any, helpers: Any, backbone_weights: Path) -> None:
    # Square 40x40 images resize to 34x34 and centre-crop to 32x32 with a 1-pixel margin on each side, so the
    # crop of a mirrored image is the mirrored crop: with image+flip averaging, predictions are mirror-invariant.
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 6)
    X = np.stack([helpers.color_image(int(c), rng, size=(40, 40), noise=60.0) for c in y])
    clf = tiny(FeatureExtraction(tta=True), weights=str(backbone_weights), epochs=5, lr=3e-2).fit(X, y)
    assert clf.backbone_.preprocessing.resize_size == 34
    mirrored = np.ascontiguousarray(X[:, :, ::-1])
    np.testing.assert_allclose(clf.predict_proba(mirrored), clf.predict_proba(X), rtol=0, atol=1e-5)


def test_finetune_lr_decay_default_depends_on_the_modality() -> None:
    assert FineTune().lr_decay is None
    assert FineTune().for_modality("image").lr_decay == 0.7
    assert FineTune().for_modality("text").lr_decay == 0.9
    assert FineTune().for_modality("embedding").lr_decay == FineTune.default_lr_decay
    assert FineTune(lr_decay=0.5).for_modality("text").lr_decay == 0.5, "an explicit value is kept"
    groups = [[nn.Parameter(torch.zeros(1))] for _ in range(2)]
    out = FineTune().param_groups(groups, [nn.Parameter(torch.zeros(1))], 1.0)
    assert [g["lr"] for g in out] == pytest.approx([1.0, 0.7, 0.49]), "no modality: the generic default"
    # the estimators resolve it on their own copy; the user's strategy object is left as given
    user = FineTune()
    assert graft.TextClassifier("minilm", user)._strategy().lr_decay == 0.9
    assert graft.ImageClassifier("efficientnet_lite0", user)._strategy().lr_decay == 0.7
    assert graft.TextClassifier("minilm", "fine-tune")._strategy().lr_decay == 0.9
    assert user.lr_decay is None


@pytest.mark.parametrize("name", ["feature-extraction", "coral", "adabn"])
def test_evaluate_reads_embeddings_from_the_cache(name: str, helpers: Any, count_embeddings: Any) -> None:
    """Models that are the frozen backbone plus a head evaluate from cached embeddings: a test set goes through
    the backbone once, and the metrics equal those of the whole model (AdaBN adapts the head's BatchNorm)."""
    from graft.estimators.image import ImageClassifier

    X, y = helpers.color_arrays(6, 2, seed=0)
    target, _ = helpers.color_arrays(4, 2, seed=1)
    X_test, y_test = helpers.color_arrays(4, 2, seed=2)
    extra = {"target": target} if getattr(get_strategy(name), "adaptation", False) else {}
    clf = helpers.tiny_classifier(name, cache=True, epochs=2).fit(X, y, **extra)
    calls = count_embeddings(ImageClassifier)
    first = clf.evaluate(X_test, y_test)
    second = clf.evaluate(X_test, y_test)
    assert calls == [len(y_test)], "the second evaluation reads the cache"
    direct = clf.set_params(cache=False).evaluate(X_test, y_test)  # backbone + head, no cache
    assert calls == [len(y_test)]
    for key in ("accuracy", "macro_f1", "log_loss"):
        assert first[key] == pytest.approx(direct[key], abs=1e-5) and second[key] == first[key], key
    assert first["confusion_matrix"] == direct["confusion_matrix"]
