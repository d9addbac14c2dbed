"""The few-shot strategy: SetFit-style pair sampling, the contrastive loss, fit → predict → save → load on a tiny
random BERT (three classes), refusals outside single-label text classification, and ``graft train -s few-shot``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from typer.testing import CliRunner

import graft
from graft.errors import ConfigError, DataError
from graft.strategies import FewShot, get_strategy, list_strategies
from graft.strategies.few_shot import CosineSimilarityLoss, SupConLoss
from graft.training.logistic import logistic_weights
from graft.training.pairs import contrastive_pairs, pair_lr

#: the tiny model learns fast at rates far above MiniLM's
TINY = FewShot(pair_iterations=4, pair_epochs=3, pair_lr=3e-3)
WORDS = {"neg": ("bad", "awful", "terrible"), "pos": ("good", "great", "superb"), "meh": ("fine", "okay", "average")}


def _three_classes(n_per_class: int = 6, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    filler = ("the", "movie", "was", "really", "plot", "acting")
    texts, labels = [], []
    for i in range(n_per_class * len(WORDS)):
        label = list(WORDS)[i % len(WORDS)]
        words = [str(w) for w in rng.choice(filler, 3)] + [str(rng.choice(WORDS[label]))]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


# ------------------------------------------------------------------------------------------------------
# pairs and loss
# ------------------------------------------------------------------------------------------------------


def test_pairs_are_balanced_labelled_and_seeded() -> None:
    y = np.array([0] * 5 + [1] * 3 + [2] * 2)
    first, second, target = contrastive_pairs(y, iterations=7, seed=3)
    assert len(first) == len(second) == len(target) == 2 * 7 * len(y)
    assert target.dtype == np.float32 and set(np.unique(target)) == {0.0, 1.0}
    assert target.mean() == 0.5
    same = y[first] == y[second]
    np.testing.assert_array_equal(same, target == 1.0)
    assert not (first[target == 1.0] == second[target == 1.0]).any(), "a text is never its own positive here"
    # every text anchors one positive and one negative pair per round
    np.testing.assert_array_equal(np.bincount(first[target == 1.0], minlength=len(y)), 7)
    np.testing.assert_array_equal(np.bincount(first[target == 0.0], minlength=len(y)), 7)
    again = contrastive_pairs(y, iterations=7, seed=3)
    for a, b in zip((first, second, target), again):
        np.testing.assert_array_equal(a, b)
    other = contrastive_pairs(y, iterations=7, seed=4)
    assert not np.array_equal(second, other[1]), "another seed draws other partners"


def test_max_pairs_takes_fewer_rounds_and_stays_balanced() -> None:
    y = np.array([0] * 6 + [1] * 4)
    first, _, target = contrastive_pairs(y, iterations=7, seed=0, max_pairs=45)
    assert len(first) == 40 and target.mean() == 0.5, "two whole rounds fit under 45"
    np.testing.assert_array_equal(np.bincount(first, minlength=len(y)), 4)
    first, second, target = contrastive_pairs(y, iterations=7, seed=0, max_pairs=6)
    assert len(first) == 6 and target.sum() == 3
    np.testing.assert_array_equal(y[first] == y[second], target == 1.0)
    assert len(contrastive_pairs(y, iterations=7, seed=0, max_pairs=1000)[0]) == 140


def test_default_rounds_match_setfits_pair_count_on_more_texts() -> None:
    """20 rounds for a few texts; for 64 per class as many pairs as SetFit pairs every two texts (~N**2 / 2), which
    the default cap of the strategy keeps."""
    from graft.training.pairs import default_rounds

    assert default_rounds(16) == 20 and default_rounds(128) == 32
    y = np.arange(128) % 2
    first, _, _ = contrastive_pairs(y, default_rounds(len(y)), seed=0, max_pairs=FewShot().max_pairs)
    assert len(first) == 8192 >= 128 * 127 // 2


def test_a_lone_text_is_its_own_positive() -> None:
    y = np.array([0, 1, 1, 1])
    first, second, target = contrastive_pairs(y, iterations=2, seed=0)
    lone = (first == 0) & (target == 1.0)
    assert lone.sum() == 2 and (second[lone] == 0).all()


@pytest.mark.parametrize("y", [[0, 0, 0], [[0, 1], [1, 0]]])
def test_pairs_refuse_one_label_and_label_sets(y: Any) -> None:
    with pytest.raises(DataError, match="two labels|one label per example"):
        contrastive_pairs(y, iterations=1, seed=0)


def test_default_pair_lr_scales_with_the_steps() -> None:
    """SetFit's 2e-5 for 320 steps (64 texts per class), more for fewer steps, at most 1e-4 (8 per class: 40)."""
    assert pair_lr(320) == pair_lr(5000) == pytest.approx(2e-5)
    assert pair_lr(160) == pytest.approx(4e-5) and pair_lr(40) == pair_lr(1) == pytest.approx(1e-4)
    assert FewShot().plan()[0].lr is None and FewShot(pair_lr=3e-5).plan()[0].lr == 3e-5


def test_cosine_similarity_loss() -> None:
    loss = CosineSimilarityLoss()
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert loss(u, 3 * u, torch.ones(2)).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(u, u.flip(1), torch.zeros(2)).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(u, -u, torch.ones(2)).item() == pytest.approx(4.0)  # cosine -1 against target 1


def test_label_pairs_share_a_label_and_carry_it() -> None:
    """``labels=True`` (the ``supcon`` loss): two same-label partners per text and round, the target its label."""
    y = np.array([0] * 5 + [1] * 3 + [2] * 2)
    first, second, target = contrastive_pairs(y, iterations=4, seed=1, labels=True)
    assert len(first) == 2 * 4 * len(y)
    np.testing.assert_array_equal(y[first], y[second])
    np.testing.assert_array_equal(target, y[first].astype(np.float32))
    assert not (first == second).any() and (np.bincount(first, minlength=len(y)) == 8).all()
    first, _, target = contrastive_pairs(np.repeat([0, 1, 2], 64), 1, seed=0, max_pairs=100, labels=True)
    assert len(first) == 99 and (np.bincount(target.astype(int)) == 33).all(), "a cap keeps the labels balanced"


def test_supcon_loss() -> None:
    loss = SupConLoss(temperature=0.1)
    z = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    grouped, mixed = loss(z, torch.tensor([0, 0, 1, 1])), loss(z, torch.tensor([0, 1, 0, 1]))
    assert grouped.item() < 0.01 < 5.0 < mixed.item(), (grouped, mixed)
    # by hand on three texts: anchors 0 and 1 have one positive each, anchor 2 none (it adds 0 to the mean)
    u = torch.nn.functional.normalize(z[:3], dim=1)
    t = u @ u.T / 0.1
    l0 = -(t[0, 1] - torch.logsumexp(t[0, [1, 2]], 0))
    l1 = -(t[1, 0] - torch.logsumexp(t[1, [0, 2]], 0))
    assert loss(z[:3], torch.tensor([0, 0, 1])).item() == pytest.approx(((l0 + l1) / 3).item(), rel=1e-5)


# ------------------------------------------------------------------------------------------------------
# the strategy object and the registry
# ------------------------------------------------------------------------------------------------------


def test_typed_settings_and_registry() -> None:
    s = FewShot(pair_iterations=10, pair_lr=1e-5)
    assert s.get_params()["pair_iterations"] == 10 and s.normalize
    assert get_strategy("few-shot") is FewShot and get_strategy("setfit") is FewShot
    assert "few-shot" in list_strategies(adaptation=False)
    assert "few-shot" in list_strategies(adaptation=False, task="text-classification")
    assert "few-shot" not in list_strategies(task="image-classification")
    assert "few-shot" not in list_strategies(adaptation=True) and FewShot.tasks == ("text-classification",)
    assert [type(p).__name__ for p in s.plan()] == ["PairPhase", "LogisticHeadPhase"]
    assert [type(p).__name__ for p in FewShot(head="linear").plan()] == ["PairPhase", "HeadPhase"]
    assert not s.plan()[0].labels and FewShot(pair_loss="supcon").plan()[0].labels
    assert s.plan()[0].iterations == 10 and s.plan()[0].lr == 1e-5 and not s.frozen_backbone
    bad_settings = (
        {"pair_iterations": 0},
        {"pair_batch_size": 0},
        {"pair_lr": 0.0},
        {"pair_iterations": 2.5},
        {"head": "mlp"},
        {"head_c": 0},
        {"max_pairs": 1},
        {"prompt_repeats": 0},
        {"templates": ("no slot",)},
        {"templates": "This is {}."},
        {"label_prompts": "yes"},
        {"pair_loss": "triplet"},
        {"temperature": 0.0},
    )
    for bad in bad_settings:
        with pytest.raises(ConfigError, match="FewShot"):
            FewShot(**bad).validate()


def test_refused_outside_text_classification(text_helpers: Any, helpers: Any) -> None:
    X, y = helpers.color_arrays(4, 2)
    with pytest.raises(ConfigError, match="made for text-classification.*ImageClassifier"):
        helpers.tiny_classifier("few-shot").fit(X, y)
    sentences, tags = text_helpers.tagged(8)
    with pytest.raises(ConfigError, match="made for text-classification.*TokenClassifier"):
        text_helpers.tiny("bert", "few-shot", token=True).fit(sentences, tags)
    texts, labels = _three_classes(4)
    multi = text_helpers.tiny("bert", "few-shot", multi_label=True, val_fraction=0.0)
    with pytest.raises(ConfigError, match="one label per example"):
        multi.fit(texts, [[lab, "any"] if i % 2 else [lab] for i, lab in enumerate(labels)])


# ------------------------------------------------------------------------------------------------------
# fit, predict, save, load
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(text_helpers: Any) -> SimpleNamespace:
    X, y = _three_classes(6)
    clf = text_helpers.tiny("bert", TINY, max_length=16, val_fraction=0.0, seed=1)
    torch.manual_seed(clf.seed)
    initial = {k: v.clone() for k, v in clf._build_backbone(pretrained=False).module.state_dict().items()}
    log: list[tuple[str, int]] = []
    clf.fit(X, y, callbacks=[lambda phase, epoch, logs: log.append((phase, epoch))])
    return SimpleNamespace(clf=clf, X=X, y=y, initial=initial, log=log)


def test_fit_trains_the_encoder_on_pairs_then_the_head(fitted: SimpleNamespace) -> None:
    clf = fitted.clf
    assert [p for p, _ in fitted.log] == ["few-shot"] * 3 + ["head"]
    pair_losses = [h["train_loss"] for h in clf.history_ if h["phase"] == "few-shot"]
    assert np.isfinite(pair_losses).all() and pair_losses[-1] < pair_losses[0], pair_losses
    state = clf.backbone_.module.state_dict()
    moved = [k for k, v in state.items() if not torch.equal(v, fitted.initial[k])]
    assert any("encoder.layer.0." in k for k in moved) and any("encoder.layer.1." in k for k in moved)
    assert clf.model_.head.config()["normalize"] is True and clf.n_train_ == 18 and clf.n_val_ == 0


def test_pairs_pull_same_labels_together(fitted: SimpleNamespace) -> None:
    """After contrastive training, texts of one label are more alike (cosine) than texts of different labels."""
    clf = fitted.clf
    data = clf._read(fitted.X, None, what="input")[0]
    f = torch.nn.functional.normalize(torch.from_numpy(clf._embed_uncached(data, list(range(len(data))))), dim=1)
    sim, y = (f @ f.T).numpy(), np.asarray(fitted.y)
    same, off_diagonal = y[:, None] == y[None, :], ~np.eye(len(y), dtype=bool)
    assert sim[same & off_diagonal].mean() > sim[~same].mean() + 0.1


def test_supcon_pairs_pull_same_labels_together(text_helpers: Any) -> None:
    X, y = _three_classes(6)
    strategy = FewShot(pair_loss="supcon", pair_iterations=4, pair_epochs=3, pair_lr=3e-3)
    clf = text_helpers.tiny("bert", strategy, max_length=16, val_fraction=0.0, seed=1).fit(X, y)
    losses = [h["train_loss"] for h in clf.history_ if h["phase"] == "few-shot"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    data = clf._read(X, None, what="input")[0]
    f = torch.nn.functional.normalize(torch.from_numpy(clf._embed_uncached(data, list(range(len(data))))), dim=1)
    sim, labels = (f @ f.T).numpy(), np.asarray(y)
    same, off_diagonal = labels[:, None] == labels[None, :], ~np.eye(len(labels), dtype=bool)
    assert sim[same & off_diagonal].mean() > sim[~same].mean() + 0.1
    assert clf.evaluate(X, y)["accuracy"] >= 0.8


def test_predict_evaluate_save_load_round_trip(fitted: SimpleNamespace, tmp_path: Path) -> None:
    clf, X, y = fitted.clf, fitted.X, fitted.y
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert clf.evaluate(X, y)["accuracy"] >= 0.8, "the training texts are learnt"
    loaded = graft.load(clf.save(tmp_path / "bundle"))
    assert loaded.strategy_ == clf.strategy_ and isinstance(loaded.strategy_, FewShot)
    assert loaded.model_.head.normalize
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    twin = clone(clf)
    assert twin.strategy == TINY and not hasattr(twin, "model_")


def test_linear_head_reads_the_tuned_embeddings_through_the_cache(text_helpers: Any) -> None:
    """With the embedding cache on, the head learns on embeddings of the tuned encoder (not pretrained ones); the
    ``linear`` head trains for the estimator's epochs, on a validation split here."""
    X, y = _three_classes(4)
    strategy = FewShot(pair_iterations=2, pair_lr=3e-3, head="linear")
    clf = text_helpers.tiny("bert", strategy, max_length=16, cache=True, epochs=5, val_fraction=0.25).fit(X, y)
    assert [h["phase"] for h in clf.history_] == ["few-shot"] + ["head"] * 5 and "val_accuracy" in clf.history_[-1]
    data = clf._read(X, None, what="input")[0]
    np.testing.assert_allclose(clf._embed(data), clf._embed_uncached(data, list(range(len(data)))), atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_head_weights_give_scikit_learns_probabilities(n_classes: int) -> None:
    from scipy.special import softmax
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)).astype(np.float32)
    y = np.arange(30) % n_classes
    x[:, 0] += 2 * y
    weight, bias = logistic_weights(x, y, n_classes, c=0.5)
    assert weight.shape == (n_classes, 5) and bias.shape == (n_classes,)
    expected = LogisticRegression(C=0.5, max_iter=2000).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(softmax(x @ weight.T + bias, axis=1), expected, atol=1e-5)
    # a class the training rows lack is never predicted
    weight, bias = logistic_weights(x[y < 2], y[y < 2], 4, c=0.5)
    assert (softmax(x @ weight.T + bias, axis=1)[:, 2:] < 1e-9).all()


def test_label_prompts_are_written_from_word_class_names() -> None:
    prompts = FewShot().prompt_examples(["negative", "very_positive"])
    assert len(prompts) == 2 * 5 * 8 and prompts[0] == ("This sentence is negative.", 0)
    assert ("This is a very positive sentence.", 1) in prompts and prompts.count(("negative.", 0)) == 8
    assert FewShot().prompt_examples(["0", "1"]) == [] and FewShot().prompt_examples(["A", "pos"]) == []
    assert FewShot(label_prompts=False).prompt_examples(["negative", "positive"]) == []
    assert FewShot(label_prompts=True, templates=["{} it is"], prompt_repeats=1).prompt_examples([0, 1]) == [
        ("0 it is", 0),
        ("1 it is", 1),
    ]


def test_label_prompts_train_beside_the_texts(text_helpers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prompts join the labelled texts of the pair phase and of the head; the summary counts them; numbers as class
    names, text pairs or ``label_prompts=False`` add none (``True`` with text pairs is refused)."""
    import graft.training.pairs as pairs

    seen: list[np.ndarray] = []
    real = pairs.contrastive_pairs
    monkeypatch.setattr(
        pairs, "contrastive_pairs", lambda y, *a, **k: (seen.append(np.asarray(y)), real(y, *a, **k))[1]
    )
    X, y = _three_classes(2)
    strategy = FewShot(pair_iterations=1, pair_lr=3e-3, templates=["It is {}.", "So {}."], prompt_repeats=1)
    clf = text_helpers.tiny("bert", strategy, max_length=16, val_fraction=0.0).fit(X, y)
    assert np.bincount(seen[-1]).tolist() == [2 + 2] * 3 and clf.n_train_ == 6
    assert clf.training_summary()["label_prompts"] == 6
    assert clf.predict(["It is neg.", "So pos."]).shape == (2,)
    numbers = [str(list(WORDS).index(label)) for label in y]
    clf = text_helpers.tiny("bert", strategy, max_length=16, val_fraction=0.0).fit(X, numbers)
    assert len(seen[-1]) == 6 and "label_prompts" not in clf.training_summary()
    pairs_x = [(t, t[::-1]) for t in X]
    text_helpers.tiny("bert", strategy, max_length=16, val_fraction=0.0).fit(pairs_x, y)
    assert len(seen[-1]) == 6
    with pytest.raises(ConfigError, match="text pairs"):
        text_helpers.tiny("bert", strategy.set_params(label_prompts=True), max_length=16, val_fraction=0.0).fit(
            pairs_x, y
        )


# ------------------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_few_shot(tmp_path: Path) -> None:
    """``graft train reviews.csv -s few-shot`` with the embedded MiniLM, then ``graft evaluate`` on the run."""
    from tests.test_cli_text import COOKING, SPORTS

    from graft.cli import app

    data = tmp_path / "reviews.csv"
    rows = [f'"{t}",sports' for t in SPORTS[:8]] + [f'"{t}",cooking' for t in COOKING[:8]]
    data.write_text("review,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "runs" / "fs"
    env = {"COLUMNS": "4000", "NO_COLOR": "1"}
    args = ["train", str(data), "-s", "few-shot", "-o", str(run), "--set", "pair_iterations=1", "--epochs", "20"]
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["strategy"] == "few-shot"
    manifest = json.loads((run / "graft.json").read_text())
    assert manifest["strategy"] == {"name": "few-shot", "params": {**FewShot().get_params(), "pair_iterations": 1}}
    assert manifest["head"]["normalize"] is True
    evaluated = CliRunner().invoke(app, ["evaluate", str(run), str(data), "--json"], env=env)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout[evaluated.stdout.index("{") :])["accuracy"] >= 0.9
