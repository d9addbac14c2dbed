"""Multi-label text classification: sigmoid outputs, per-label thresholds, files with separators, bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graft

SPORT = ("goal", "match", "team", "striker", "league")
FOOD = ("recipe", "chef", "soup", "bread", "oven")
FILLER = ("the", "a", "today", "new", "big")


def _data(n: int = 48, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        kind = i % 3  # sport, food, both
        words = [str(w) for w in rng.choice(FILLER, 2)]
        lab = []
        if kind in (0, 2):
            words.append(str(rng.choice(SPORT)))
            lab.append("sport")
        if kind in (1, 2):
            words.append(str(rng.choice(FOOD)))
            lab.append("food")
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(lab)
    return texts, labels


@pytest.mark.parametrize("strategy", ["feature-extraction", "fine-tune", "lora"])
def test_multilabel_fits_predicts_lists_and_round_trips(text_helpers: Any, tmp_path: Path, strategy: str) -> None:
    texts, labels = _data()
    clf = text_helpers.tiny("bert", strategy, multi_label=True, epochs=15, lr=1e-2)
    clf.fit(texts, labels)
    assert list(clf.classes_) == ["food", "sport"]
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1.0), "multi-label outputs are independent sigmoids"
    pred = clf.predict(texts)
    assert all(isinstance(p, list) and set(p) <= {"food", "sport"} for p in pred)
    m = clf.evaluate(texts, labels)
    assert {"micro_f1", "macro_f1", "subset_accuracy", "per_label"} <= set(m)
    assert 0.05 <= m["per_label"]["sport"]["threshold"] <= 0.95
    assert m["micro_f1"] > 0.6, m
    clf.save(tmp_path / "b")
    loaded = graft.load(tmp_path / "b")
    np.testing.assert_allclose(loaded.predict_proba(texts), proba, atol=1e-6)
    assert loaded.predict(texts) == pred
    manifest = json.loads((tmp_path / "b" / "graft.json").read_text())
    assert len(manifest["thresholds"]) == 2


def test_multilabel_from_csv_with_separator(text_helpers: Any, tmp_path: Path) -> None:
    texts, labels = _data(30)
    path = tmp_path / "topics.csv"
    path.write_text("text,labels\n" + "".join(f"{t},{'|'.join(lab)}\n" for t, lab in zip(texts, labels)))
    clf = text_helpers.tiny("bert", "feature-extraction", multi_label=True, epochs=5)
    clf.fit(str(path))
    assert list(clf.classes_) == ["food", "sport"]
    assert clf.n_train_ + clf.n_val_ == 30


def test_multilabel_unknown_label_at_evaluation_is_an_error(text_helpers: Any) -> None:
    texts, labels = _data(24)
    clf = text_helpers.tiny("bert", "feature-extraction", multi_label=True, epochs=2).fit(texts, labels)
    with pytest.raises(graft.DataError, match="unknown label 'music'"):
        clf.evaluate(texts[:2], [["music"], ["food"]])


def test_the_validation_split_holds_every_label_that_has_two_examples() -> None:
    from graft.tasks.multilabel import MultiLabel

    labels = [["tech"]] * 18 + [["politics"]] * 18 + [["sports", "tech"], ["sports"], ["rare"]]
    for seed in range(10):
        train, val = MultiLabel().split(labels, 0.1, seed)
        assert sorted(train + val) == list(range(len(labels))) and not set(train) & set(val)
        in_val = {v for i in val for v in labels[i]}
        in_train = {v for i in train for v in labels[i]}
        assert {"tech", "politics", "sports"} <= in_val, (seed, in_val)
        assert {"tech", "politics", "sports", "rare"} <= in_train, "a label with one example stays in training"


def test_macro_f1_leaves_out_labels_absent_from_truth_and_predictions() -> None:
    from graft.tasks.multilabel import MultiLabel

    task, classes = MultiLabel(), np.asarray(["a", "b", "c"])
    logits = np.asarray([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0]])  # predicts a, then b; c never
    y = np.asarray([[1, 0, 0], [0, 1, 0]], np.float32)  # c absent from the truth too
    m = task.metrics(logits, y, classes)
    assert m["macro_f1"] == pytest.approx(1.0) and m["per_label"]["c"]["support"] == 0
