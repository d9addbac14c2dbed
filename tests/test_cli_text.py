"""The ``graft`` command on text: classification and NER runs with the embedded MiniLM (real weights,
feature extraction: fast on CPU), ``predict --text``, ``evaluate``, and task detection of data paths.

The CLI cannot pass ``backbone_config``, so these runs use the real offline ``minilm``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graft.cli import app
from graft.data.detect import detect_task
from graft.errors import DataError

ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}

SPORTS = [
    "The striker scored a late goal in the football match",
    "Our team lost the basketball game in overtime",
    "The tennis player served an ace on match point",
    "Fans filled the stadium for the championship final",
    "The goalkeeper saved a penalty in the second half",
    "She won the marathon with a record time",
    "The quarterback threw three touchdown passes",
    "The swimmer took gold in the freestyle relay",
    "The boxer won the title fight by knockout",
    "The golfer sank a long putt on the last hole",
    "The referee showed the defender a red card",
    "The cyclist won the stage in the mountains",
    "The pitcher struck out ten batters",
    "The rugby team scored a try in the final minute",
    "The coach praised the players after the league win",
]
COOKING = [
    "Chop the onions and fry them gently in butter",
    "Bake the bread in a hot oven for forty minutes",
    "Whisk the eggs with sugar until pale",
    "Season the soup with salt pepper and fresh herbs",
    "Simmer the tomato sauce with garlic and basil",
    "Knead the dough and let it rise for an hour",
    "Roast the chicken with lemon and rosemary",
    "Melt the chocolate over simmering water",
    "Grate the cheese over the pasta before serving",
    "Peel the potatoes and boil them until soft",
    "Slice the carrots thinly for the salad",
    "Grill the fish and serve it with lemon butter",
    "Blend the soup until smooth and add cream",
    "Toast the spices in a dry pan before grinding",
    "Fold the flour gently into the creamed butter",
]


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _write_csv(path: Path) -> Path:
    rows = [(t, "sports") for t in SPORTS] + [(t, "cooking") for t in COOKING]
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------
# text classification
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("cli-text")
    data = _write_csv(root / "data.csv")
    run = root / "run"
    result = _invoke(
        "train", data, "--task", "text-classification", "--model", "minilm", "--strategy", "feature-extraction",
        "-o", run, "--epochs", "20", "--device", "cpu", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run, data, json.loads(result.stdout)


def test_train_text_writes_a_text_bundle(text_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, summary = text_run
    assert summary["model"] == "minilm" and summary["strategy"] == "feature-extraction"
    assert summary["classes"] == ["cooking", "sports"]
    assert summary["n_train"] + summary["n_val"] == 30 and summary["n_val"] > 0
    for name in ("graft.json", "model.safetensors", "backbone_config.json", "metrics.jsonl", "report.html"):
        assert (run / name).is_file(), name
    assert (run / "tokenizer").is_dir()
    manifest = json.loads((run / "graft.json").read_text())
    assert manifest["task"] == "text-classification" and manifest["backbone"]["name"] == "minilm"


def test_predict_text_json(text_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, _ = text_run
    texts = ["The midfielder scored twice in the derby", "Stir the risotto while adding warm stock"]
    result = _invoke("predict", run, "--text", texts[0], "--text", texts[1], "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["input"] for r in rows] == texts
    assert [r["label"] for r in rows] == ["sports", "cooking"]
    for r in rows:
        probs = [t["probability"] for t in r["top_k"]]
        assert len(r["top_k"]) == 2, "top_k is capped by the number of classes"
        assert r["top_k"][0]["label"] == r["label"] and probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)


def test_predict_texts_from_a_file(text_run: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    run, _, _ = text_run
    lines = tmp_path / "texts.txt"
    lines.write_text("The team won the cup final\n\nBake the cake for an hour\n", encoding="utf-8")
    result = _invoke("predict", run, lines, "--json", "--top-k", "1")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["input"] for r in rows] == ["The team won the cup final", "Bake the cake for an hour"]
    assert all(len(r["top_k"]) == 1 for r in rows)
    human = _invoke("predict", run, "--text", "The team won the cup final")
    assert human.exit_code == 0 and "sports" in human.output


def test_predict_without_text_exits_2(text_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, _ = text_run
    result = _invoke("predict", run)
    assert result.exit_code == 2
    assert "--text" in _flat(result.output)


def test_evaluate_text_json(text_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, data, _ = text_run
    result = _invoke("evaluate", run, data, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 30
    assert metrics["accuracy"] >= 0.8, metrics["accuracy"]
    assert list((run / "evaluation").glob("*-all/report.html"))
    assert metrics["scored"]["split"] is None, "a CSV without a split column is scored whole, not as a 'train' split"
    assert "the training data itself" in metrics["scored"]["warning"]


def test_naming_the_text_column_makes_a_table_a_text_task(tmp_path: Path) -> None:
    from graft.commands.training import resolve_task

    table = tmp_path / "notes.csv"  # short unique phrases under an unusual name read like an ID column of a table
    rows = [f"note {i} good,{i % 2}" for i in range(24)]
    table.write_text("comment_body,verdict,score\n" + "".join(f"{r},{i}\n" for i, r in enumerate(rows)), "utf-8")
    assert detect_task(table) == "tabular-classification"
    assert resolve_task(table, "auto", text_columns=True) == "text-classification"
    assert resolve_task(table, "tabular-classification", text_columns=True) == "tabular-classification"


def test_train_text_with_an_unknown_column_exits_2(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "data.csv")
    run = tmp_path / "run"
    result = _invoke("train", data, "-o", run, "--strategy", "feature-extraction", "--text-column", "txet")
    assert result.exit_code == 2
    assert "Did you mean 'text'" in _flat(result.output)
    assert "Traceback" not in result.output and not run.exists()


# ------------------------------------------------------------------------------------------------------
# NER
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory: pytest.TempPathFactory, text_helpers: Any) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("cli-ner")
    data = root / "conll"
    text_helpers.write_conll(data / "eng.train", *text_helpers.tagged(24, seed=1))
    text_helpers.write_conll(data / "eng.testa", *text_helpers.tagged(6, seed=2))
    text_helpers.write_conll(data / "eng.testb", *text_helpers.tagged(6, seed=3))
    run = root / "run"
    result = _invoke(
        "train", data, "-o", run, "--strategy", "feature-extraction", "--epochs", "3", "--lr", "0.05",
        "--device", "cpu", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run, data, json.loads(result.stdout)


def test_train_ner_detects_the_task(ner_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, summary = ner_run
    manifest = json.loads((run / "graft.json").read_text())
    assert manifest["task"] == "token-classification" and manifest["estimator"] == "TokenClassifier"
    assert summary["n_train"] == 24 and summary["n_val"] == 6, "eng.testa is the validation split"
    assert set(summary["classes"]) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}, "I-LOC too, though unseen"
    assert set(summary["val"]) >= {"precision", "recall", "f1"}


def test_predict_ner_json_gives_entities_with_offsets(ner_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, _ = ner_run
    text = "Angela Merkel visited Paris"
    result = _invoke("predict", run, "--text", text, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) == 1 and rows[0]["input"] == text
    entities = rows[0]["entities"]
    assert isinstance(entities, list) and entities, "the trained tagger finds no entity"
    for e in entities:
        assert {"start", "end", "label", "text"} <= set(e)
        assert text[e["start"] : e["end"]] == e["text"]
        assert e["label"] in ("PER", "LOC")
    human = _invoke("predict", run, "--text", text)
    assert human.exit_code == 0, human.output
    for e in entities:
        assert f"{e['text']} [{e['label']}] {e['start']}-{e['end']}" in human.output


def test_predict_ner_reads_a_conll_or_token_jsonl_file_as_its_words(
    ner_run: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    run, data, _ = ner_run
    tokens = tmp_path / "sentences.jsonl"
    tokens.write_text('{"tokens": ["Angela", "Merkel", "visited", "Paris"]}\n', encoding="utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("Angela Merkel visited Paris\n\nJohn met Mary\n", encoding="utf-8")  # sentences, not CoNLL
    result = _invoke("predict", run, data / "eng.testb", tokens, lines, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # in the order of the files given
    assert [r["input"] for r in rows[-2:]] == ["Angela Merkel visited Paris", "John met Mary"], "the lines file's rows"
    assert rows[-3]["input"] == "Angela Merkel visited Paris", "the JSONL sentence's words joined"
    conll = rows[:-3]
    assert len(conll) == 6, "one result per CoNLL sentence, not per line"
    assert all(" " in r["input"] and "-X-" not in r["input"] and "B-" not in r["input"] for r in conll)
    for r in rows:
        for e in r["entities"]:
            assert r["input"][e["start"] : e["end"]] == e["text"]


def test_data_of_the_other_text_task_is_named(
    ner_run: tuple[Path, Path, dict[str, Any]], text_run: tuple[Path, Path, dict[str, Any]]
) -> None:
    _, conll, _ = ner_run
    text_model, table, _ = text_run
    wrong = _invoke("evaluate", text_model, conll)
    assert wrong.exit_code == 2 and "holds CoNLL token files" in _flat(wrong.output), wrong.output
    tagged = _invoke("train", table, "--task", "token-classification", "-o", conll.parent / "never")
    assert tagged.exit_code == 2 and "is a table, not CoNLL" in _flat(tagged.output), tagged.output
    assert not (conll.parent / "never").exists()


def test_evaluate_ner(ner_run: tuple[Path, Path, dict[str, Any]]) -> None:
    run, data, _ = ner_run
    result = _invoke("evaluate", run, data, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 6 and metrics["n_entities"] == 12, "eng.testb: 6 sentences with 2 entities each"
    for key in ("precision", "recall", "f1", "token_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    table = _invoke("evaluate", run, data)
    assert table.exit_code == 0, table.output
    assert "entities: precision" in table.output and "PER" in table.output


# ------------------------------------------------------------------------------------------------------
# task detection
# ------------------------------------------------------------------------------------------------------


def test_detect_image_folder(image_folder: Any) -> None:
    assert detect_task(image_folder("imgs")) == "image-classification"


def test_detect_csv_of_image_paths(tmp_path: Path) -> None:
    csv = tmp_path / "images.csv"
    csv.write_text("path,label\na.png,cat\nb.png,dog\n", encoding="utf-8")
    assert detect_task(csv) == "image-classification"


def test_detect_text_tables(tmp_path: Path) -> None:
    assert detect_task(_write_csv(tmp_path / "data.csv")) == "text-classification"
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text('{"text": "hello", "label": "a"}\n', encoding="utf-8")
    assert detect_task(jsonl) == "text-classification"
    folder = tmp_path / "sst"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\ngood\t1\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("sentence\tlabel\nbad\t0\n", encoding="utf-8")
    assert detect_task(folder) == "text-classification"


def test_detect_conll(tmp_path: Path, text_helpers: Any) -> None:
    folder = tmp_path / "conll"
    text_helpers.write_conll(folder / "eng.train", *text_helpers.tagged(2))
    assert detect_task(folder) == "token-classification"
    assert detect_task(folder / "eng.train") == "token-classification"
    plain = text_helpers.write_conll(tmp_path / "train.txt", *text_helpers.tagged(2))
    assert detect_task(plain) == "token-classification"


def test_detect_token_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "ner.jsonl"
    jsonl.write_text('{"tokens": ["Angela", "Merkel"], "tags": ["B-PER", "I-PER"]}\n', encoding="utf-8")
    assert detect_task(jsonl) == "token-classification"


def test_detect_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        detect_task(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="--task"):
        detect_task(empty)
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"\x00\x01")
    with pytest.raises(DataError, match="Cannot tell"):
        detect_task(odd)


def test_train_with_an_unknown_task_exits_2(tmp_path: Path) -> None:
    result = _invoke("train", _write_csv(tmp_path / "d.csv"), "-o", tmp_path / "run", "--task", "text-clasification")
    assert result.exit_code == 2
    assert "Did you mean 'text-classification'" in _flat(result.output)
