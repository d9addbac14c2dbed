"""Tests for graft.data.text: table formats, column detection, labels, errors, splits, in-memory inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graft.data.text import TEXT_EXTENSIONS, TextSet, find_text_splits, read_text_table
from graft.data.text_inputs import load_texts
from graft.errors import DataError

# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    return _write(path, "\n".join(json.dumps(r) for r in rows) + "\n")


# ------------------------------------------------------------------------------------------------------
# formats
# ------------------------------------------------------------------------------------------------------


def test_csv_basic_sources_hashes_and_bom(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", '\ufefftext,label\n"good, really",pos\n\nbad,neg\n')
    data = read_text_table(f)
    assert data.texts == ["good, really", "bad"]
    assert data.labels == ["pos", "neg"]
    assert data.pairs is None and not data.multi_label
    assert data.sources == [f"{f}:row 1", f"{f}:row 2"]
    assert data.columns == {"text": "text", "label": "label"}
    assert len(data) == 2 and len(set(data.hashes)) == 2 and len(data.hashes[0]) == 32


def test_tsv_keeps_quotes_and_string_labels(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.tsv", 'sentence\tlabel\n" a quoted start\t0\nplain\tNA\nx\t1\n')
    data = read_text_table(f)
    assert data.texts == ['" a quoted start', "plain", "x"]
    assert data.labels == ["0", "NA", "1"]


def test_jsonl_and_json_array(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "d.jsonl", [{"review": "nice", "sentiment": 1}, {"review": "meh", "sentiment": 0}])
    data = read_text_table(f)
    assert data.texts == ["nice", "meh"] and data.labels == ["1", "0"]
    assert data.sources == [f"{f}:line 1", f"{f}:line 2"]
    g = _write(tmp_path / "d.json", json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    assert read_text_table(g).labels == ["x", "y"]


def test_txt_sniffs_table_or_lines(tmp_path: Path) -> None:
    tab = read_text_table(_write(tmp_path / "a.txt", "text\tlabel\nhi, there\tgreet\n"))
    assert tab.texts == ["hi, there"] and tab.labels == ["greet"]
    lines = read_text_table(_write(tmp_path / "b.txt", "first text\n\nsecond text\n"))
    assert lines.texts == ["first text", "second text"] and lines.labels is None
    assert lines.sources[1].endswith("b.txt:line 3")


def test_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    f = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1], "tags": [["x", "y"], []]}).to_parquet(f)
    assert read_text_table(f).labels == ["0", "1"]
    multi = read_text_table(f, label_column="tags", multi_label=True)
    assert multi.labels == [["x", "y"], []]


def test_parquet_without_engine_says_pip_install(tmp_path: Path) -> None:
    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        pytest.skip("a parquet engine is installed")
    f = tmp_path / "d.parquet"
    f.write_bytes(b"PAR1")
    with pytest.raises(DataError, match="pip install pyarrow"):
        read_text_table(f)


# ------------------------------------------------------------------------------------------------------
# columns
# ------------------------------------------------------------------------------------------------------


def test_column_autodetect_case_insensitive_and_override(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "id,Review Text,Category,note\n1,great,a,n1\n2,poor,b,n2\n")
    data = read_text_table(f)
    assert data.texts == ["great", "poor"] and data.labels == ["a", "b"]
    assert data.columns == {"text": "Review Text", "label": "Category"}
    other = read_text_table(f, text_column="note", label_column="id")
    assert other.texts == ["n1", "n2"] and other.labels == ["1", "2"]


def test_unknown_column_did_you_mean(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\na,b\n")
    with pytest.raises(DataError, match=r"no column 'lable'.*Did you mean 'label'\?.*'text', 'label'"):
        read_text_table(f, label_column="lable")


def test_no_text_column_lists_columns(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "foo,label\na,b\n")
    with pytest.raises(DataError, match=r"no text column; columns found: 'foo', 'label'.*--text-column"):
        read_text_table(f)


def test_an_unnamed_column_of_sentences_is_the_text(tmp_path: Path) -> None:
    rows = "".join(
        f"{i},{i * 0.5},the film number {i} was {'good' if i % 2 else 'bad'} indeed,{i % 2}\n" for i in range(8)
    )
    data = read_text_table(_write(tmp_path / "d.csv", "id,x,desc,label\n" + rows))
    assert data.texts[1] == "the film number 1 was good indeed" and list(data.labels[:2]) == ["0", "1"]
    # two sentence columns: ambiguous, refused with both ways out (name the column, or read it as a table)
    two = "".join(f"a b c d {i},e f g h {i},{i % 2}\n" for i in range(8))
    with pytest.raises(DataError, match=r"no text column.*--text-column.*--task tabular-classification"):
        read_text_table(_write(tmp_path / "two.csv", "left,right,label\n" + two))


def test_prediction_table_without_labels(tmp_path: Path) -> None:
    data = read_text_table(_write(tmp_path / "d.csv", "text\nhello\n"))
    assert data.labels is None


@pytest.mark.parametrize(
    ("header", "text", "pair"),
    [
        ("premise,hypothesis,label", "premise", "hypothesis"),
        ("sentence1,sentence2,label", "sentence1", "sentence2"),
        ("question,sentence,label", "question", "sentence"),
    ],
)
def test_pairs_detected(tmp_path: Path, header: str, text: str, pair: str) -> None:
    data = read_text_table(_write(tmp_path / "d.csv", f"{header}\nA,B,entail\n"))
    assert data.columns == {"text": text, "pair": pair, "label": "label"}
    assert data.texts == ["A"] and data.pairs == ["B"]
    assert data.hashes != read_text_table(_write(tmp_path / "e.csv", f"{header}\nA,C,entail\n")).hashes


def test_pair_column_given(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "a,b,label\nx,y,1\n")
    data = read_text_table(f, text_column="a", text_pair_column="b")
    assert data.texts == ["x"] and data.pairs == ["y"] and data.labels == ["1"]


# ------------------------------------------------------------------------------------------------------
# labels and row errors
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "sep", "expected"),
    [
        (['"a|b"', "c", '""'], None, [["a", "b"], ["c"], []]),
        (['"a, b"', "c", "a"], None, [["a", "b"], ["c"], ["a"]]),
        (["a;b", "b", "a ; a"], None, [["a", "b"], ["b"], ["a"]]),
        (["a/b", "b", "c"], "/", [["a", "b"], ["b"], ["c"]]),
    ],
)
def test_multi_label_separators(tmp_path: Path, cells: list[str], sep: str | None, expected: list) -> None:
    rows = "".join(f"t{i},{c}\n" for i, c in enumerate(cells))
    data = read_text_table(_write(tmp_path / "d.csv", "text,labels\n" + rows), multi_label=True, label_sep=sep)
    assert data.multi_label and data.labels == expected


def test_multi_label_jsonl_lists(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": []}])
    assert read_text_table(f, multi_label=True).labels == [["x", "y"], []]
    with pytest.raises(DataError, match="multi_label=True"):
        read_text_table(f)


def test_empty_texts_all_listed(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\nok,a\n,b\n  ,c\nfine,d\n,e\n")
    with pytest.raises(DataError) as info:
        read_text_table(f)
    message = str(info.value)
    assert "3 unusable texts" in message
    for row in (2, 3, 5):
        assert f"{f}:row {row}" in message
    assert "Remove these rows or fill in their text" in message


def test_empty_label_names_row(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\na,x\nb,\n")
    with pytest.raises(DataError, match=r"(?s)without a label.*:row 2"):
        read_text_table(f)


def test_non_utf8_line_number(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_bytes("text,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid UTF-8: line 3, byte offset 19.*UTF-8"):
        read_text_table(f)


def test_malformed_csv_and_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot be parsed as CSV: line 3 has 3 fields but the header has 2"):
        read_text_table(_write(tmp_path / "d.csv", "text,label\na,b\nc,d,e\n"))
    with pytest.raises(DataError, match="line 2 has 3 fields"):
        read_text_table(_write(tmp_path / "e.csv", "text,label\na,b,c\nd,e\n"))
    with pytest.raises(DataError, match="does not exist"):
        read_text_table(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unsupported extension"):
        read_text_table(_write(tmp_path / "d.xlsx", "x"))
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_text_table(_write(tmp_path / "d.jsonl", '{"text": "a"}\n{"text": \n'))


# ------------------------------------------------------------------------------------------------------
# splits
# ------------------------------------------------------------------------------------------------------


def test_split_column(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label,split\na,x,train\nb,y,dev\nc,x,TEST\nd,y,training\n")
    splits = find_text_splits(f)
    assert list(splits) == ["train", "val", "test"] and splits.marked
    assert splits["train"].texts == ["a", "d"] and splits["val"].texts == ["b"]
    whole = find_text_splits(_write(tmp_path / "w.csv", "text,label\na,x\nb,y\n"))
    assert list(whole) == ["train"] and not whole.marked  # no split column: the whole input
    assert splits["test"].sources == [f"{f}:row 3"]
    with pytest.raises(DataError, match="find_text_splits"):
        load_texts(f)
    bad = _write(tmp_path / "e.csv", "text,label,split\na,x,trian\n")
    with pytest.raises(DataError, match=r"unknown split 'trian'.*Did you mean 'train'"):
        find_text_splits(bad)


def test_folder_splits(tmp_path: Path) -> None:
    root = tmp_path / "sst2"
    _write(root / "train.tsv", "sentence\tlabel\na\t0\nb\t1\n")
    _write(root / "dev.tsv", "sentence\tlabel\nc\t1\n")
    _write(root / "test.tsv", "index\tsentence\n0\td\n")
    _write(root / "README.md", "about")
    splits = find_text_splits(root)
    assert list(splits) == ["train", "val", "test"]
    assert splits["val"].labels == ["1"] and splits["test"].labels is None
    assert splits["test"].texts == ["d"]


def test_folder_without_train_lists_files(tmp_path: Path) -> None:
    _write(tmp_path / "dev.csv", "text,label\na,b\n")
    _write(tmp_path / "notes.txt", "x\n")
    with pytest.raises(DataError, match=r"no training file \(found: 'dev.csv', 'notes.txt'\)"):
        find_text_splits(tmp_path)
    with pytest.raises(DataError, match="find_text_splits"):
        load_texts(tmp_path)


def test_find_text_splits_passes_options(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "body,tags\na,x|y\n")
    assert find_text_splits(f, multi_label=True)["train"].labels == [["x", "y"]]
    with pytest.raises(DataError, match="Did you mean 'multi_label'"):
        find_text_splits(f, multilabel=True)


# ------------------------------------------------------------------------------------------------------
# load_texts
# ------------------------------------------------------------------------------------------------------


def test_load_texts_list_series_array_and_str(tmp_path: Path) -> None:
    data = load_texts(["a", "b"], [0, 1.0])
    assert data.labels == ["0", "1"] and data.sources == ["text[0]", "text[1]"]
    assert load_texts(pd.Series(["a", "b"]), pd.Series(["x", "y"])).labels == ["x", "y"]
    assert load_texts(np.array(["a", "b"])).texts == ["a", "b"]
    single = load_texts("just one text", "pos")
    assert single.texts == ["just one text"] and single.labels == ["pos"]
    with pytest.raises(DataError, match=r"pass it in a list"):
        load_texts("trian.csv")


def test_load_texts_pairs_and_multi_label() -> None:
    data = load_texts([("p1", "h1"), ("p2", "h2")], ["yes", "no"])
    assert data.texts == ["p1", "p2"] and data.pairs == ["h1", "h2"]
    multi = load_texts(["a", "b", "c"], [["x", "y"], "x|z", None], multi_label=True)
    assert multi.labels == [["x", "y"], ["x", "z"], []]
    assert multi.subset([2, 0]).labels == [[], ["x", "y"]]


def test_load_texts_dataframe(tmp_path: Path) -> None:
    df = pd.DataFrame({"tweet": ["a", "b"], "target": [1, 0]}, index=[10, 20])
    data = load_texts(df)
    assert data.texts == ["a", "b"] and data.labels == ["1", "0"]
    assert load_texts(df, ["x", "y"]).labels == ["x", "y"]
    assert load_texts(df[["tweet"]]).labels is None


def test_load_texts_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)text\[1\]: missing.*text\[2\]: empty string.*text\[3\]: a int"):
        load_texts(["ok", None, " ", 5])
    with pytest.raises(DataError, match="2 texts but 3 labels"):
        load_texts(["a", "b"], ["x", "y", "z"])
    with pytest.raises(DataError, match=r"(?s)without a label.*text\[1\]"):
        load_texts(["a", "b"], ["x", float("nan")])
    with pytest.raises(DataError, match="empty"):
        load_texts([])
    f = _write(tmp_path / "d.csv", "text,label\na,b\n")
    assert load_texts(f).labels == ["b"]
    with pytest.raises(DataError, match="Labels come from"):
        load_texts(f, ["b"])


def test_subset_and_constants() -> None:
    data = load_texts([("a", "b"), ("c", "d"), ("e", "f")], ["1", "2", "3"])
    part = data.subset(np.array([2, 0]))
    assert isinstance(part, TextSet)
    assert part.texts == ["e", "a"] and part.pairs == ["f", "b"] and part.labels == ["3", "1"]
    assert part.hashes == [data.hashes[2], data.hashes[0]]
    assert ".parquet" in TEXT_EXTENSIONS
