"""Token classification (NER): sliding windows, first-sub-token alignment, entity metrics, IOB2 repair, word
splitting with offsets, TokenClassifier with every strategy on a tiny random BERT, and CoNLL folders.

``max_length`` is kept small (6 to 8 sub-tokens) so that ordinary sentences are cut into several windows.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import graft
from graft.backbones.embedded import minilm_path
from graft.errors import ConfigError, DataError
from graft.strategies import list_strategies
from graft.tasks.token_classification import (
    IGNORE,
    entity_metrics,
    iob2_constraints,
    make_windows,
    repair_iob2,
    spans_with_offsets,
    split_words,
    viterbi_iob2,
    word_shape,
)

LONG_SENTENCE = [
    "Pneumonia",
    "patients",
    "in",
    "Tegucigalpa",
    "received",
    "12345678",
    "doses",
    "of",
    "amoxicillin",
    "yesterday",
    ".",
]
OVERLONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis"  # 17 WordPiece pieces


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path())
    assert tok.is_fast
    return tok


def _pieces(tokenizer: Any, word: str) -> list[int]:
    return tokenizer(word, add_special_tokens=False)["input_ids"]


def _check_windows(tokenizer: Any, sentences: list[list[str]], windows: list[Any], max_length: int) -> None:
    """Every word is the first piece of exactly one window's owned range; word_index marks first pieces only."""
    for si, words in enumerate(sentences):
        mine = [w for w in windows if w.sentence == si]
        assert mine, f"sentence {si} has no window"
        # owned ranges tile the sentence in order
        assert mine[0].owned[0] == 0 and mine[-1].owned[1] == len(words)
        for a, b in zip(mine, mine[1:]):
            assert a.owned[1] == b.owned[0], "owned ranges must be contiguous"
        for k in range(len(words)):
            owners = [w for w in mine if k in w.word_index and w.owned[0] <= k < w.owned[1]]
            assert len(owners) == 1, f"word {k} ({words[k]!r}) is owned by {len(owners)} windows"
        for w in mine:
            assert w.start <= w.owned[0] <= w.owned[1] <= w.end
            assert w.input_ids[0] == tokenizer.cls_token_id and w.input_ids[-1] == tokenizer.sep_token_id
            assert w.attention_mask == [1] * len(w.input_ids)
            assert len(w.word_index) == len(w.input_ids)
            firsts = [(pos, k) for pos, k in enumerate(w.word_index) if k >= 0]
            assert [k for _, k in firsts] == list(range(w.start, w.end)), "each window word once, in order"
            for pos, k in firsts:
                pieces = _pieces(tokenizer, words[k])
                assert w.input_ids[pos : pos + len(pieces)] == pieces, f"word_index of {words[k]!r} is not its start"
                assert not tokenizer.convert_ids_to_tokens(w.input_ids[pos]).startswith("##")
            for pos, k in enumerate(w.word_index):  # every other position: special token or continuation piece
                if k < 0 and 0 < pos < len(w.input_ids) - 1:
                    assert tokenizer.convert_ids_to_tokens(w.input_ids[pos]).startswith("##")


# ------------------------------------------------------------------------------------------------------
# windows
# ------------------------------------------------------------------------------------------------------


def test_make_windows_cuts_long_sentences_at_word_boundaries(tokenizer: Any) -> None:
    counts = [len(_pieces(tokenizer, w)) for w in LONG_SENTENCE]
    assert max(counts) > 1 and max(counts) <= 6, counts  # several multi-piece words, each fits a window
    windows = make_windows(tokenizer, [LONG_SENTENCE], max_length=8)
    assert len(windows) >= 3
    assert all(len(w.input_ids) <= 8 for w in windows), [len(w.input_ids) for w in windows]
    _check_windows(tokenizer, [LONG_SENTENCE], windows, 8)


def test_make_windows_overlap_and_owned_middle(tokenizer: Any) -> None:
    words = ["the", "cat", "sat", "on", "the", "mat", "and", "then", "the", "dog", "ran", "to", "the", "park"]
    words += ["with", "a", "ball"]
    assert all(len(_pieces(tokenizer, w)) == 1 for w in words)
    windows = make_windows(tokenizer, [words], max_length=10)  # 8 words per window, stride 2
    assert [(w.start, w.end) for w in windows] == [(0, 8), (6, 14), (12, 17)]
    assert [w.owned for w in windows] == [(0, 7), (7, 13), (13, 17)]
    _check_windows(tokenizer, [words], windows, 10)


def test_make_windows_short_sentences_are_one_window_each(tokenizer: Any) -> None:
    sentences = [["Angela", "Merkel", "visited", "Paris"], ["Hi", "!"], LONG_SENTENCE]
    windows = make_windows(tokenizer, sentences, max_length=64)
    assert [w.sentence for w in windows] == [0, 1, 2]
    assert [w.owned for w in windows] == [(0, 4), (0, 2), (0, len(LONG_SENTENCE))]
    _check_windows(tokenizer, sentences, windows, 64)


def test_make_windows_overlong_word_keeps_every_word(tokenizer: Any) -> None:
    sentence = [OVERLONG_WORD, "12345678901234567890", "is", "a", "word", "."]
    windows = make_windows(tokenizer, [sentence], max_length=8)
    owned = sorted(k for w in windows for k in w.word_index if k >= 0 and w.owned[0] <= k < w.owned[1])
    assert owned == list(range(len(sentence)))


def test_make_windows_never_exceed_max_length_with_an_overlong_word(tokenizer: Any) -> None:
    assert len(_pieces(tokenizer, OVERLONG_WORD)) > 8
    windows = make_windows(tokenizer, [[OVERLONG_WORD, "is", "a", "word", "."]], max_length=8)
    assert all(len(w.input_ids) <= 8 for w in windows), [len(w.input_ids) for w in windows]


def test_make_windows_rejects_a_max_length_without_room(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="no room"):
        make_windows(tokenizer, [["a", "b"]], max_length=3)


# ------------------------------------------------------------------------------------------------------
# metrics, repair, splitting
# ------------------------------------------------------------------------------------------------------


def test_entity_metrics_by_hand() -> None:
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]  # PER: wrong boundary; ORG predicted as LOC
    m = entity_metrics(true, pred)
    # true: PER(0,2) LOC(3,4) ORG(0,1); predicted: PER(0,1) LOC(3,4) LOC(0,1); one match
    assert m["n"] == 2 and m["n_entities"] == 3
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(1 / 3)
    assert m["token_accuracy"] == pytest.approx(4 / 6)
    per = m["per_type"]
    assert per["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["LOC"]["precision"] == pytest.approx(0.5) and per["LOC"]["recall"] == 1.0
    assert per["LOC"]["f1"] == pytest.approx(2 / 3) and per["LOC"]["support"] == 1
    assert per["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_entity_metrics_perfect_and_empty() -> None:
    tags = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    m = entity_metrics(tags, tags)
    assert (m["precision"], m["recall"], m["f1"], m["token_accuracy"]) == (1.0, 1.0, 1.0, 1.0)
    none = entity_metrics([["O", "O"]], [["O", "O"]])
    assert none["f1"] == 0.0 and none["n_entities"] == 0 and none["per_type"] == {}
    # an entity running to the end of the sentence, and strict type matching of I- continuations
    m = entity_metrics([["O", "B-LOC", "I-LOC"]], [["O", "B-LOC", "I-PER"]])
    assert m["precision"] == 0.0 and m["recall"] == 0.0


def test_repair_iob2() -> None:
    assert repair_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-PER"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-PER",
    ]
    assert repair_iob2(["B-PER", "I-LOC", "I-LOC"]) == ["B-PER", "B-LOC", "I-LOC"]
    valid = ["B-ORG", "I-ORG", "O", "B-MISC"]
    assert repair_iob2(valid) == valid
    assert repair_iob2([]) == []


CLASSES = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


def _is_iob2(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and not (prev[:2] in ("B-", "I-") and prev[2:] == t[2:]):
            return False
        prev = t
    return True


def _path_score(logp: np.ndarray, path: list[int]) -> float:
    return float(sum(logp[i, k] for i, k in enumerate(path)))


def test_iob2_constraints() -> None:
    allowed, start = iob2_constraints(CLASSES)
    ix = {c: i for i, c in enumerate(CLASSES)}
    assert start.tolist() == [True, True, False, False, True]
    assert allowed[ix["B-PER"], ix["I-PER"]] and allowed[ix["I-PER"], ix["I-PER"]]
    assert not allowed[ix["O"], ix["I-PER"]] and not allowed[ix["B-LOC"], ix["I-PER"]]
    assert not allowed[ix["I-LOC"], ix["I-PER"]]
    assert allowed[:, ix["O"]].all() and allowed[:, ix["B-LOC"]].all()


def test_viterbi_iob2_picks_the_best_valid_sequence() -> None:
    allowed, start = iob2_constraints(CLASSES)
    ix = {c: i for i, c in enumerate(CLASSES)}

    def logp(rows: list[dict[str, float]]) -> np.ndarray:
        p = np.full((len(rows), len(CLASSES)), 0.01)
        for i, r in enumerate(rows):
            for c, v in r.items():
                p[i, ix[c]] = v
        return np.log(p / p.sum(axis=1, keepdims=True))

    # argmax says O, I-PER, I-PER (invalid start); B-PER is the runner-up of word 1: the valid best keeps the
    # two-word entity instead of patching it into B-PER I-PER with the wrong word dropped
    z = logp([{"O": 0.9}, {"I-PER": 0.5, "B-PER": 0.45}, {"I-PER": 0.9}])
    assert [CLASSES[k] for k in viterbi_iob2(z, allowed, start)] == ["O", "B-PER", "I-PER"]
    # a confident valid argmax is kept as is
    z = logp([{"B-LOC": 0.9}, {"I-LOC": 0.9}, {"O": 0.9}])
    assert [CLASSES[k] for k in viterbi_iob2(z, allowed, start)] == ["B-LOC", "I-LOC", "O"]
    # type switch inside an entity: I-LOC after B-PER is not allowed
    z = logp([{"B-PER": 0.9}, {"I-LOC": 0.6, "I-PER": 0.35}])
    assert [CLASSES[k] for k in viterbi_iob2(z, allowed, start)] == ["B-PER", "I-PER"]
    assert viterbi_iob2(np.zeros((0, len(CLASSES))), allowed, start).shape == (0,)

    # random scores: always valid IOB2, never worse than the argmax when the argmax is valid, and optimal
    # among all valid sequences (brute force over 5^4)
    import itertools

    rng = np.random.default_rng(0)
    for _ in range(30):
        z = np.log(rng.dirichlet(np.ones(len(CLASSES)) * 0.5, size=4))
        path = viterbi_iob2(z, allowed, start).tolist()
        assert _is_iob2([CLASSES[k] for k in path])
        best = max(
            _path_score(z, list(p))
            for p in itertools.product(range(len(CLASSES)), repeat=4)
            if _is_iob2([CLASSES[k] for k in p])
        )
        assert _path_score(z, path) == pytest.approx(best)


def test_split_words_offsets() -> None:
    text = "Angela Merkel visited Paris."
    words, offsets = split_words(text)
    assert words == ["Angela", "Merkel", "visited", "Paris", "."]
    assert offsets[3] == (22, 27) and offsets[4] == (27, 28)
    assert all(text[a:b] == w for w, (a, b) in zip(words, offsets))
    words, offsets = split_words("  U.S. state-of-the-art, don't  stop!")
    assert words == ["U.S", ".", "state-of-the-art", ",", "don't", "stop", "!"]
    assert all("  U.S. state-of-the-art, don't  stop!"[a:b] == w for w, (a, b) in zip(words, offsets))


def test_spans_with_offsets() -> None:
    text = "Angela Merkel visited Paris."
    words, offsets = split_words(text)
    tags = ["B-PER", "I-PER", "O", "B-LOC", "O"]
    scores = np.asarray([0.9, 0.7, 0.99, 0.6, 0.99])
    ents = spans_with_offsets(text, words, tags, offsets, scores)
    assert [(e["label"], e["text"], e["start"], e["end"]) for e in ents] == [
        ("PER", "Angela Merkel", 0, 13),
        ("LOC", "Paris", 22, 27),
    ]
    assert ents[0]["word_start"] == 0 and ents[0]["word_end"] == 2
    assert ents[0]["score"] == pytest.approx(0.8) and ents[1]["score"] == pytest.approx(0.6)
    no_offsets = spans_with_offsets(None, words, tags, None)
    assert [e["text"] for e in no_offsets] == ["Angela Merkel", "Paris"] and "start" not in no_offsets[0]


# ------------------------------------------------------------------------------------------------------
# TokenClassifier, fitted once per strategy
# ------------------------------------------------------------------------------------------------------

_SETTINGS: dict[str, dict[str, Any]] = {
    "feature-extraction": {"epochs": 40, "lr": 3e-2},
    "lora": {"epochs": 6, "lr": 3e-2},
}
_DEFAULT_SETTINGS: dict[str, Any] = {"epochs": 4, "lr": 1e-2}
MAX_LENGTH = 6  # 4 sub-tokens per window: every 6-word training sentence needs several windows


@pytest.fixture(scope="module", params=list_strategies(adaptation=False, task="token-classification"))
def tagger(request: pytest.FixtureRequest, text_helpers: Any) -> SimpleNamespace:
    name = request.param
    X, Y = text_helpers.tagged(24, seed=0)
    clf = text_helpers.tiny("bert", name, token=True, max_length=MAX_LENGTH, **_SETTINGS.get(name, _DEFAULT_SETTINGS))
    assert clf.fit(X, Y) is clf
    return SimpleNamespace(name=name, clf=clf, X=X, Y=Y)


def test_tagger_fitted_attributes_and_windows(tagger: SimpleNamespace) -> None:
    clf = tagger.clf
    assert list(clf.classes_) == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"], (
        "O first, then the sorted tags (I-LOC unseen)"
    )
    assert clf.n_train_ + clf.n_val_ == 24 and clf.n_val_ > 0
    data, _ = clf._read(tagger.X, tagger.Y, what="training data")
    windows = clf._windows(data)
    assert len(windows) > len(tagger.X), "max_length must force several windows per sentence"
    assert all(len(w.input_ids) <= MAX_LENGTH for w in windows)


def test_tagger_training_loss_falls(tagger: SimpleNamespace) -> None:
    history = tagger.clf.history_
    last_phase = history[-1]["phase"]
    losses = [h["train_loss"] for h in history if h["phase"] == last_phase]
    assert len(losses) >= 2 and np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.02, f"{last_phase} train_loss did not fall: {losses}"


def test_tagger_predicts_one_tag_per_word(tagger: SimpleNamespace, text_helpers: Any) -> None:
    clf = tagger.clf
    X, Y = text_helpers.tagged(8, seed=7)
    long = ["Angela", "Merkel", "and", "John", "Smith", "visited", "Paris", "and", "Rome", "and", "Berlin"] * 2
    tags = clf.predict(X + [long, ["Hi"]])
    assert [len(t) for t in tags] == [len(s) for s in X] + [len(long), 1]
    assert all(t in set(clf.classes_) for seq in tags for t in seq)
    assert all(_is_iob2(seq) for seq in tags), "constrained decoding yields valid IOB2 only"
    proba = clf.predict_proba(X + [long])
    assert [p.shape for p in proba] == [(len(s), len(clf.classes_)) for s in X + [long]]
    for p in proba:
        assert np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    m = clf.evaluate(X, Y)
    assert m["f1"] >= 0.6, m
    for key in ("precision", "recall", "f1", "token_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert set(m["per_type"]) == {"LOC", "PER"}


def test_tagger_predict_entities_offsets_index_the_text(tagger: SimpleNamespace) -> None:
    clf = tagger.clf
    texts = ["Angela Merkel visited Paris yesterday.", "Yesterday Rome welcomed John Smith.", "Nothing here"]
    results = clf.predict_entities(texts)
    assert len(results) == 3
    for text, ents in zip(texts, results):
        for e in ents:
            assert {"label", "text", "start", "end", "word_start", "word_end", "score"} <= set(e)
            assert text[e["start"] : e["end"]] == e["text"]
            assert e["label"] in ("PER", "LOC") and 0.0 < e["score"] <= 1.0
    found = {(e["label"], e["text"]) for ents in results[:2] for e in ents}
    assert {("PER", "Angela Merkel"), ("LOC", "Paris")} <= found, found
    assert clf.predict_entities("Angela Merkel visited Paris yesterday.") == results[0]  # one string: one list of spans
    with pytest.raises(DataError, match="no words"):
        clf.predict_entities(["fine", "   "])


def test_tagger_save_load_gives_identical_probabilities(tagger: SimpleNamespace, tmp_path: Path) -> None:
    clf, X = tagger.clf, tagger.X
    loaded = graft.load(clf.save(tmp_path / "bundle"))
    assert isinstance(loaded, graft.TokenClassifier)
    assert loaded.backbone_.spec["case_features"] == clf.backbone_.spec["case_features"] is True
    assert list(loaded.classes_) == list(clf.classes_)
    for got, expected in zip(loaded.predict_proba(X), clf.predict_proba(X)):
        assert not np.isnan(got).any()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert loaded.predict(X) == clf.predict(X)
    text = "Angela Merkel visited Paris."
    assert loaded.predict_entities(text) == clf.predict_entities(text)


# ------------------------------------------------------------------------------------------------------
# alignment
# ------------------------------------------------------------------------------------------------------


def test_labels_sit_on_first_sub_tokens_only(text_helpers: Any) -> None:
    X, Y = text_helpers.tagged(8)
    clf = text_helpers.tiny("bert", "feature-extraction", token=True, max_length=8, epochs=2).fit(X, Y)
    sentence = ["Tegucigalpa", "welcomed", "Angela", "Merkel", "."]
    tags = ["B-LOC", "O", "B-PER", "I-PER", "O"]
    data, labels = clf._read([sentence], [tags], what="training data")
    data.y = clf._make_task().encode(labels, clf.classes_, where="test")
    windows = clf._windows(data)
    assert len(windows) >= 2, "Tegucigalpa has 5 pieces: max_length 8 cuts the sentence"
    window_labels = clf._window_labels(data, windows)
    index = {t: i for i, t in enumerate(clf.classes_)}
    continuation = 0
    for w, lab in zip(windows, window_labels):
        assert lab.shape == (len(w.input_ids),)
        assert lab[0] == IGNORE and lab[-1] == IGNORE, "special tokens carry no loss"
        for pos, k in enumerate(w.word_index):
            if k >= 0:
                assert lab[pos] == index[tags[k]]
            else:
                assert lab[pos] == IGNORE
                continuation += 0 < pos < len(w.input_ids) - 1
    assert continuation >= 2, "continuation pieces must be present and ignored"

    x, y = clf._collate(list(zip(windows, window_labels)))
    n = max(len(w.input_ids) for w in windows)
    assert x["input_ids"].shape == y.shape == (len(windows), n)
    for i, w in enumerate(windows):
        pad = n - len(w.input_ids)
        assert x["attention_mask"][i].tolist() == [1] * len(w.input_ids) + [0] * pad
        assert y[i, len(w.input_ids) :].tolist() == [IGNORE] * pad
        assert x["input_ids"][i, len(w.input_ids) :].tolist() == [clf.backbone_.tokenizer.pad_token_id] * pad


def test_unknown_tags_and_one_tag_are_data_errors(text_helpers: Any) -> None:
    X, _ = text_helpers.tagged(6)
    with pytest.raises(DataError, match="at least 2 different tags"):
        text_helpers.tiny("bert", token=True).fit(X, [["O"] * len(s) for s in X])
    clf = text_helpers.tiny("bert", token=True, epochs=2).fit(*text_helpers.tagged(8))
    with pytest.raises(DataError, match="unknown tags"):
        clf.evaluate([["Acme", "Corp"]], [["B-ORG", "I-ORG"]])


# ------------------------------------------------------------------------------------------------------
# CoNLL folders
# ------------------------------------------------------------------------------------------------------


def _conll_folder(root: Path, text_helpers: Any) -> tuple[Path, int, int]:
    train = text_helpers.tagged(20, seed=1)
    testa = text_helpers.tagged(6, seed=2)
    testb = text_helpers.tagged(4, seed=3)
    text_helpers.write_conll(root / "eng.train", *train)
    text_helpers.write_conll(root / "eng.testa", *testa)
    text_helpers.write_conll(root / "eng.testb", *testb)
    return root, len(testa[0]), len(testb[0])


def test_conll_folder_uses_testa_for_validation(tmp_path: Path, text_helpers: Any) -> None:
    folder, n_testa, n_testb = _conll_folder(tmp_path / "conll", text_helpers)
    assert "B-PER" not in (folder / "eng.train").read_text(), "the files are IOB1"
    run = tmp_path / "run"
    clf = text_helpers.tiny("bert", "fine-tune", token=True, max_length=8, epochs=2, lr=1e-2, output_dir=run)
    clf.fit(folder)
    assert clf.n_val_ == n_testa and clf.n_train_ == 20
    assert {"B-PER", "I-PER", "B-LOC"} <= set(clf.classes_), "IOB1 is read as IOB2"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    fine = [r for r in rows if r["phase"] == "fine-tune"]
    assert [r["epoch"] for r in fine] == [1, 2]
    assert all(0.0 <= r["val_f1"] <= 1.0 and "val_precision" in r and "val_recall" in r for r in fine)
    assert len([r for r in rows if r["phase"] == "head"]) >= 1
    assert (run / "graft.json").is_file() and (run / "tokenizer").is_dir()
    loaded = graft.load(run)
    m = loaded.evaluate(folder)
    assert m["n"] == n_testb, "evaluate on a folder scores its test split (eng.testb)"
    assert {"precision", "recall", "f1"} <= set(m)


def test_conll_feature_extraction_logs_val_f1_per_epoch(tmp_path: Path, text_helpers: Any) -> None:
    folder, _, _ = _conll_folder(tmp_path / "conll", text_helpers)
    run = tmp_path / "run"
    text_helpers.tiny("bert", "feature-extraction", token=True, max_length=8, epochs=3, output_dir=run).fit(folder)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert all("val_f1" in r for r in rows), rows[0]


# ------------------------------------------------------------------------------------------------------
# casing features (uncased tokenizers)
# ------------------------------------------------------------------------------------------------------


def test_word_shape_classes() -> None:
    shapes = [word_shape(w) for w in ["paris", "Paris", "EU", "I", "iPhone", "1996", "--", "McDonald"]]
    assert shapes == [1, 2, 3, 4, 5, 6, 7, 5]


def test_uncased_tokenizer_gets_casing_features(text_helpers: Any) -> None:
    import torch

    X, Y = text_helpers.tagged(12, seed=0)
    clf = text_helpers.tiny("bert", "feature-extraction", token=True, epochs=2).fit(X, Y)
    spec = clf.backbone_.spec
    assert spec["case_features"] is True, "MiniLM's tokenizer lowercases"
    assert clf.backbone_.feature_dim == text_helpers.bert["hidden_size"] + 8
    cased, lower = ["Angela", "Merkel", "visited", "Paris"], ["angela", "merkel", "visited", "paris"]
    data, _ = clf._read([cased, lower], [["O"] * 4] * 2, what="input")
    windows = clf._windows(data)
    assert windows[0].input_ids == windows[1].input_ids, "same pieces: the tokenizer drops case"
    batch = clf._pad(windows)
    with torch.no_grad():
        z = clf.backbone_.module(batch)
    assert not torch.allclose(z[0], z[1]), "the casing pattern tells them apart"


def test_domain_adaptation_is_refused_for_token_classification(text_helpers: Any, tmp_path: Path) -> None:
    X, Y = text_helpers.tagged(8)
    run = tmp_path / "run"
    clf = text_helpers.tiny("bert", "dann", token=True, max_length=8, epochs=1, output_dir=run)
    with pytest.raises(ConfigError, match="not available for token classification"):
        clf.fit(X, Y, target=[["Paris", "is", "big"]])
    assert not run.exists()


def test_an_entity_type_seen_only_in_one_word_entities_can_be_evaluated_on_longer_ones(text_helpers: Any) -> None:
    X, Y = text_helpers.tagged(8)  # every place is one word: B-LOC, never I-LOC
    assert not any("I-LOC" in seq for seq in Y)
    clf = text_helpers.tiny("bert", "feature-extraction", token=True, max_length=16, epochs=2).fit(X, Y)
    assert {"B-LOC", "I-LOC"} <= set(clf.classes_)
    m = clf.evaluate(
        [["John", "Smith", "visited", "New", "York", "."]], [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]]
    )
    assert m["n_entities"] == 2 and 0.0 <= m["f1"] <= 1.0
