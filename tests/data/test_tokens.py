"""Tests for graft.data.tokens: CoNLL and JSONL readers, tag schemes, entity spans, splits, in-memory inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graft.data.tokens import (
    TokenSet,
    entity_spans,
    find_token_splits,
    load_tokens,
    normalize_tags,
    read_conll,
    read_token_jsonl,
)
from graft.errors import ConfigError, DataError

# CoNLL-2003 in its original IOB1 form: entities start with I-, B- only between adjacent same-type entities.
CONLL_IOB1 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

In IN I-PP O
Paris NNP I-NP I-LOC
Berlin NNP I-NP B-LOC
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------
# CoNLL
# ------------------------------------------------------------------------------------------------------


def test_conll_iob1_to_iob2_with_docstart(tmp_path: Path) -> None:
    f = _write(tmp_path / "eng.train", CONLL_IOB1)
    data = read_conll(f)
    assert data.tokens == [
        ["EU", "rejects", "German", "call", "."],
        ["Peter", "Blackburn"],
        ["In", "Paris", "Berlin"],
    ]
    assert data.tags == [
        ["B-ORG", "O", "B-MISC", "O", "O"],
        ["B-PER", "I-PER"],
        ["O", "B-LOC", "B-LOC"],
    ]
    assert data.sources == [f"{f}:line 3", f"{f}:line 9", f"{f}:line 14"]
    assert len(data) == 3 and len(set(data.hashes)) == 3


def test_conll_comments_and_untagged(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.conll", "# sent_id = 1\nHello\nworld\n\n# another\nBye\n")
    data = read_conll(f)
    assert data.tags is None and data.tokens == [["Hello", "world"], ["Bye"]]
    assert data.sources == [f"{f}:line 2", f"{f}:line 6"]


def test_conll_mixed_columns_names_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.conll", "EU B-ORG\nrejects\n\nok O\n")
    with pytest.raises(DataError, match=r"d.conll:line 2: only one column"):
        read_conll(f)


def test_conll_columns_and_non_utf8(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.conll", "1\tEU\tB-ORG\tx\n2\trejects\tO\tx\n")
    assert read_conll(f, token_column=1, tag_column=2).tokens == [["EU", "rejects"]]
    bad = tmp_path / "bad.conll"
    bad.write_bytes("EU B-ORG\n\nM\xfcnchen B-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid UTF-8: line 3"):
        read_conll(bad)


def test_conll_bioes_and_invalid_tag(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.conll", "New B-LOC\nYork E-LOC\nis O\nbig S-ADJ\n")
    assert read_conll(f).tags == [["B-LOC", "I-LOC", "O", "B-ADJ"]]
    g = _write(tmp_path / "e.conll", "EU X-ORG\nx O\n\nY per\n")
    with pytest.raises(DataError) as info:
        read_conll(g)
    message = str(info.value)
    assert "2 tags are not valid" in message
    assert f"{g}:line 1, token 1: 'X-ORG'" in message and f"{g}:line 4, token 1: 'per'" in message


# ------------------------------------------------------------------------------------------------------
# tag schemes
# ------------------------------------------------------------------------------------------------------


def test_normalize_tags_schemes() -> None:
    assert normalize_tags([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]) == [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]]
    assert normalize_tags([["U-PER", "B-ORG", "L-ORG", "B-LOC", "I-LOC", "E-LOC"]]) == [
        ["B-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "I-LOC"]
    ]
    assert normalize_tags([["B-PER", "I-LOC"]]) == [["B-PER", "B-LOC"]]
    valid = [["B-PER", "I-PER", "O"]]
    assert normalize_tags(valid, "iob2") == valid
    with pytest.raises(DataError, match=r"doc:line 7, token 2: 'I-LOC' follows 'O'"):
        normalize_tags([["O", "I-LOC"]], "iob2", where=["doc:line 7"])
    with pytest.raises(DataError, match="not IOB2"):
        normalize_tags([["S-PER"]], "iob2")
    with pytest.raises(ConfigError, match="Did you mean 'iob2'"):
        normalize_tags([["O"]], "iobb2")


def test_invalid_tags_listed_up_to_ten() -> None:
    with pytest.raises(DataError) as info:
        normalize_tags([["B-", "O", "0"] * 5])
    message = str(info.value)
    assert "10 tags are not valid" in message and "sentence[0], token 3: '0'" in message
    assert "... and " not in message
    with pytest.raises(DataError, match=r"\.\.\. and 2 more"):
        normalize_tags([["bad"] * 12])


def test_entity_spans() -> None:
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 6),
    ]
    assert entity_spans(["O", "I-PER", "B-ORG", "I-PER", "B-MISC"]) == [("ORG", 2, 3), ("MISC", 4, 5)]
    assert entity_spans([]) == []
    with pytest.raises(DataError, match="normalize_tags"):
        entity_spans(["S-PER"])


# ------------------------------------------------------------------------------------------------------
# JSONL
# ------------------------------------------------------------------------------------------------------


def test_token_jsonl_keys_and_length_mismatch(tmp_path: Path) -> None:
    rows = [{"tokens": ["EU", "rejects"], "tags": ["I-ORG", "O"]}, {"words": ["Hi"], "ner_tags": ["O"]}]
    f = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    data = read_token_jsonl(f)
    assert data.tokens == [["EU", "rejects"], ["Hi"]] and data.tags == [["B-ORG", "O"], ["O"]]
    assert data.sources == [f"{f}:line 1", f"{f}:line 2"]
    bad = _write(
        tmp_path / "bad.jsonl", json.dumps(rows[0]) + "\n\n" + json.dumps({"tokens": ["a", "b"], "labels": ["O"]})
    )
    with pytest.raises(DataError, match=r"bad.jsonl:line 3: 2 tokens but 1 tags"):
        read_token_jsonl(bad)


def test_token_jsonl_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 1: 'tokens' is empty"):
        read_token_jsonl(_write(tmp_path / "a.jsonl", '{"tokens": [], "tags": []}\n'))
    with pytest.raises(DataError, match="feature.names"):
        read_token_jsonl(_write(tmp_path / "b.jsonl", '{"tokens": ["a"], "ner_tags": [3]}\n'))
    with pytest.raises(DataError, match="tags on some records"):
        read_token_jsonl(_write(tmp_path / "c.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["b"]}\n'))
    untagged = read_token_jsonl(_write(tmp_path / "d.json", '[{"tokens": ["a"]}]'))
    assert untagged.tags is None and untagged.sources[0].endswith("d.json:item 1")


# ------------------------------------------------------------------------------------------------------
# splits and load_tokens
# ------------------------------------------------------------------------------------------------------


def test_conll2003_split_names(tmp_path: Path) -> None:
    root = tmp_path / "conll2003"
    _write(root / "eng.train", "EU I-ORG\n")
    _write(root / "eng.testa", "Paris I-LOC\n")
    _write(root / "eng.testb", "Bonn I-LOC\n")
    _write(root / "README", "notes\n")
    splits = find_token_splits(root)
    assert list(splits) == ["train", "val", "test"]
    assert splits["val"].tags == [["B-LOC"]] and splits["test"].tokens == [["Bonn"]]
    only = find_token_splits(root / "eng.train")
    assert list(only) == ["train"]


def test_folder_split_errors(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "dev.txt", "x O\n")
    with pytest.raises(DataError, match=r"no training file \(found: 'dev.txt'\)"):
        find_token_splits(tmp_path / "a")
    _write(tmp_path / "b" / "train.txt", "x O\n")
    _write(tmp_path / "b" / "train.jsonl", '{"tokens": ["x"], "tags": ["O"]}\n')
    with pytest.raises(DataError, match="two files for the train split"):
        find_token_splits(tmp_path / "b")
    with pytest.raises(DataError, match="find_token_splits"):
        load_tokens(tmp_path / "b")


def test_load_tokens_in_memory(tmp_path: Path) -> None:
    data = load_tokens([["EU", "rejects"], "Peter Blackburn"], [["I-ORG", "O"], ["B-PER", "E-PER"]])
    assert data.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert data.sources == ["sentence[0]", "sentence[1]"]
    assert load_tokens(["a b c"]).tags is None
    with pytest.raises(DataError, match=r"sentence\[0\]: 2 tokens but 1 tags"):
        load_tokens([["a", "b"]], [["O"]])
    with pytest.raises(DataError, match="1 sentences but 2 tag lists"):
        load_tokens([["a"]], [["O"], ["O"]])
    with pytest.raises(DataError, match=r"(?s)no tokens.*sentence\[1\]"):
        load_tokens(["a", "  "])
    f = _write(tmp_path / "d.conll", "EU B-ORG\n")
    assert load_tokens(f).tags == [["B-ORG"]]


def test_subset() -> None:
    data = load_tokens([["a"], ["b", "c"], ["d"]], [["O"], ["B-X", "I-X"], ["O"]])
    part = data.subset([1, 2])
    assert isinstance(part, TokenSet)
    assert part.tokens == [["b", "c"], ["d"]] and part.tags == [["B-X", "I-X"], ["O"]]
    assert part.hashes == data.hashes[1:]
