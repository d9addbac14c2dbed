"""`graft compare`: transfer against training from scratch by label budget (sampling, schema, plot, CLI)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from graft.cli import app
from graft.errors import ConfigError, DataError
from graft.selection.compare import (
    COLUMNS,
    _estimator,
    default_strategies,
    parse_budgets,
    sample_budget,
    split_examples,
)
from graft.selection.compare_report import report, summarize, transfer_gain

IMAGE = "image-classification"
TEXT = "text-classification"
ROW_KEYS = {"strategy", "budget", "seed", "n_train", "accuracy", "f1_macro", "seconds"}
SUMMARY_KEYS = {"strategy", "budget", "n_train", "mean", "std", "seconds"}
GAIN_KEYS = {"budget", "scratch", "best_strategy", "best", "points", "seconds_scratch", "seconds_best"}


def _write_reviews(path: Path, text_helpers: Any, n: int = 40, seed: int = 0) -> Path:
    texts, labels = text_helpers.sentiment(n, seed=seed)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def test_budgets_parse_sorted_with_all_last_and_bad_ones_are_refused() -> None:
    assert parse_budgets("32,2,all,8,2") == [2, 8, 32, "all"]
    assert parse_budgets([8, "ALL"]) == [8, "all"]
    for bad in ("0", "two", "", "1.5"):
        with pytest.raises(ConfigError, match="budgets"):
            parse_budgets(bad)


def test_budget_samples_are_k_per_class_seeded_and_nested() -> None:
    labels = ["a"] * 10 + ["b"] * 6 + ["c"] * 3
    small = sample_budget(labels, 2, seed=0)
    big = sample_budget(labels, 5, seed=0)
    assert Counter(labels[i] for i in small) == {"a": 2, "b": 2, "c": 2}
    assert Counter(labels[i] for i in big) == {"a": 5, "b": 5, "c": 3}  # a class with fewer gives all it has
    assert set(small) <= set(big)  # nested: the curves of one seed move by adding examples
    assert sample_budget(labels, 2, seed=0) == small  # seeded
    assert any(sample_budget(labels, 2, seed=s) != small for s in range(1, 6))
    assert sample_budget(labels, "all", seed=3) == list(range(len(labels)))


def test_the_test_split_is_held_out_once_stratified_and_disjoint(image_folder: Any) -> None:
    data = image_folder("data", n_classes=2, n_per_class=10)
    pool, test, where = split_examples(IMAGE, data)
    again_pool, again_test, _ = split_examples(IMAGE, data)
    assert Counter(test.labels) == {"red": 3, "blue": 3} and len(pool) == 14 and "30% holdout" in where
    assert not set(pool.items) & set(test.items)  # budgets are drawn from the pool only
    assert again_test.items == test.items and again_pool.items == pool.items  # fixed, whatever the seed
    for seed in range(3):
        sample = pool.subset(sample_budget(pool.labels, 4, seed))
        assert not set(sample.items) & set(test.items)


def test_a_given_val_is_the_test_split_capped_by_max_test(tmp_path: Path, text_helpers: Any) -> None:
    train = _write_reviews(tmp_path / "train.csv", text_helpers, 30)
    val = _write_reviews(tmp_path / "val.csv", text_helpers, 40, seed=1)
    pool, test, where = split_examples(TEXT, train, val, max_test=10)
    assert len(pool) == 30 and len(test) == 10 and Counter(test.labels) == {"neg": 5, "pos": 5}
    assert str(val) in where
    X, y = test.as_input()
    assert y is None and len(X) == 10 and X.labels == test.labels  # texts go to the estimator as a TextSet


def test_test_labels_unknown_to_training_are_refused(image_folder: Any) -> None:
    train = image_folder("train", n_classes=2, n_per_class=4)
    val = image_folder("val", n_classes=3, n_per_class=2)
    with pytest.raises(DataError, match="green"):
        split_examples(IMAGE, train, val)


def test_the_python_api_takes_comma_separated_strings_too(image_folder: Any) -> None:
    from graft import compare
    from graft.selection import rank

    data = image_folder("data", n_classes=2, n_per_class=4)
    with pytest.raises(ConfigError, match="'fine-tun'"):  # read as names, not as letters
        compare(data, strategies="scratch,fine-tun", verbose=False)
    with pytest.raises(ConfigError, match="max_examples"):
        rank(data, "test_efficientnet,test_efficientnet", max_examples=0)


def test_strategies_are_checked_and_few_shot_joins_text_only_when_registered(image_folder: Any) -> None:
    from graft import compare
    from graft.strategies import list_strategies

    assert default_strategies(IMAGE) == ["scratch", "feature-extraction", "fine-tune", "lora"]
    assert ("few-shot" in default_strategies(TEXT)) == ("few-shot" in list_strategies())
    data = image_folder("data")
    with pytest.raises(ConfigError, match="Did you mean 'fine-tune'.*Choose from scratch, ") as info:
        compare(data, strategies=["scratch", "fine-tun"], verbose=False)
    assert "dann" not in str(info.value)  # only what compare runs is offered
    with pytest.raises(ConfigError, match="unlabelled target"):
        compare(data, strategies=["dann"], verbose=False)


def test_scratch_is_the_same_architecture_from_random_weights_at_one_rate(tmp_path: Path) -> None:
    settings = {"options": {"weights": str(tmp_path / "w.safetensors")}, "device": "cpu", "cache": False}
    settings["batch_size"] = 32
    scratch = _estimator(IMAGE, "test_efficientnet", "scratch", seed=1, epochs=None, n_train=8, settings=settings)
    assert scratch.pretrained is False and scratch.weights is None and scratch.lr == 1e-3 and scratch.epochs == 6
    params = scratch.strategy.get_params()
    assert params["head_warmup"] is False and params["lr_decay"] == 1.0 and params["freeze_bn"] is False
    assert scratch.val_fraction == 0.0 and scratch.batch_size == 4 and scratch.seed == 1
    tuned = _estimator(IMAGE, "test_efficientnet", "fine-tune", seed=1, epochs=2, n_train=200, settings=settings)
    assert tuned.pretrained is True and tuned.weights == settings["options"]["weights"] and tuned.epochs == 2
    assert tuned.batch_size == 32
    probe = _estimator(IMAGE, "test_efficientnet", "feature-extraction", seed=1, epochs=2, n_train=8, settings=settings)
    assert probe.epochs is None  # the head keeps its own epochs on cached embeddings
    from graft.strategies import list_strategies

    if "few-shot" in list_strategies():  # its estimator epochs are its head's: they stay the strategy's
        text = {
            "options": {"backbone_config": {"model_type": "bert"}},
            "device": "cpu",
            "cache": False,
            "batch_size": 8,
        }
        few = _estimator(TEXT, "minilm", "few-shot", seed=0, epochs=2, n_train=8, settings=text)
        assert few.epochs is None and few.val_fraction == 0.0


def test_summary_and_gain_from_a_table() -> None:
    table = pd.DataFrame(
        [
            ("scratch", 8, 0, 16, 0.5, 0.4, 10.0),
            ("scratch", 8, 1, 16, 0.6, 0.5, 12.0),
            ("fine-tune", 8, 0, 16, 0.9, 0.9, 4.0),
            ("fine-tune", 8, 1, 16, 0.8, 0.8, 6.0),
            ("lora", 8, 0, 16, 0.85, 0.85, 3.0),
            ("lora", 8, 1, 16, 0.85, 0.85, 3.0),
        ],
        columns=COLUMNS,
    )
    summary = summarize(table)
    assert [s["strategy"] for s in summary] == ["scratch", "fine-tune", "lora"]
    assert summary[0] == {
        "strategy": "scratch",
        "budget": 8,
        "n_train": 16,
        "mean": 0.55,
        "std": 0.0707,
        "seconds": 11.0,
    }
    (gain,) = transfer_gain(summary)
    # fine-tune and lora tie at 0.85: the faster one is named
    assert gain == {
        "budget": 8,
        "scratch": 0.55,
        "best_strategy": "lora",
        "best": 0.85,
        "points": 30.0,
        "seconds_scratch": 11.0,
        "seconds_best": 3.0,
    }
    no_scratch = transfer_gain(summarize(table[table.strategy != "scratch"]))
    assert no_scratch[0]["points"] is None and no_scratch[0]["scratch"] is None


@pytest.mark.slow
def test_compare_images_returns_the_table_and_writes_csv_json_and_plot(
    image_folder: Any, backbone_weights: Path, tmp_path: Path
) -> None:
    from graft import compare

    data = image_folder("data", n_classes=2, n_per_class=10)
    out = tmp_path / "cmp"
    table = compare(
        data,
        budgets="2,all",
        seeds=2,
        strategies=["scratch", "feature-extraction"],
        backbone="test_efficientnet",
        weights=str(backbone_weights),
        image_size=32,
        augment="none",
        epochs=1,
        device="cpu",
        output_dir=out,
        verbose=False,
    )
    assert list(table.columns) == COLUMNS and len(table) == 2 * 2 * 2
    assert sorted(set(table.n_train)) == [4, 14] and set(table.seed) == {0, 1}
    assert table.accuracy.between(0, 1).all() and table.f1_macro.between(0, 1).all() and (table.seconds > 0).all()
    written = json.loads((out / "compare.json").read_text())
    assert set(written) == {"data", "backbone", "test_rows", "budgets", "rows", "summary", "gain"}
    assert written["backbone"] == "test_efficientnet" and written["test_rows"] == 6 and written["budgets"] == [2, "all"]
    assert all(set(r) == ROW_KEYS for r in written["rows"]) and len(written["rows"]) == 8
    assert all(set(s) == SUMMARY_KEYS for s in written["summary"]) and len(written["summary"]) == 4
    assert [g["budget"] for g in written["gain"]] == [2, "all"] and all(set(g) == GAIN_KEYS for g in written["gain"])
    assert written == report(table)
    csv = pd.read_csv(out / "compare.csv")
    assert list(csv.columns) == COLUMNS and len(csv) == 8
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_compare_text_trains_scratch_and_transfer_on_a_table(tmp_path: Path, text_helpers: Any) -> None:
    from graft import compare

    data = _write_reviews(tmp_path / "reviews.csv", text_helpers, 40)
    table = compare(
        data,
        budgets=[4],
        seeds=1,
        strategies=["scratch", "fine-tune"],
        backbone_config=dict(text_helpers.bert),
        max_length=32,
        epochs=1,
        device="cpu",
        verbose=False,
    )
    assert list(table.strategy) == ["scratch", "fine-tune"] and list(table.n_train) == [8, 8]
    assert table.attrs["test_rows"] == 12 and table.attrs["backbone"] == "minilm"
    assert table.accuracy.between(0, 1).all()


def test_cli_compare_prints_the_json_it_writes(image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data", n_classes=2, n_per_class=8)
    out = tmp_path / "cmp"
    args = ["compare", str(data), "-m", "test_efficientnet", "--image-size", "32", "--strategies", "scratch"]
    args += ["--budgets", "2", "--seeds", "1", "--epochs", "1", "--device", "cpu", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "compare.json").read_text())
    assert [(r["strategy"], r["budget"], r["n_train"]) for r in printed["rows"]] == [("scratch", 2, 4)]
    assert (out / "compare.png").stat().st_size > 5000
    again = CliRunner().invoke(app, args)  # the folder holds that comparison now: kept unless --overwrite
    assert again.exit_code == 2 and "holds an earlier comparison" in again.output
    text = CliRunner().invoke(app, [*args, "--overwrite"])
    assert text.exit_code == 0 and "scratch" in text.stdout and "compare.json" in text.stdout
    bad = CliRunner().invoke(app, ["compare", str(data), "--budgets", "2,x", "-o", str(out)])
    assert bad.exit_code == 2 and "budgets are labelled examples per class" in bad.output
    # a budget past the largest class (6 training images each) draws every example: it runs once, as 'all'
    whole = [a if a != "2" else "2,100" for a in args[:-1]] + [str(tmp_path / "cmp2")]
    with pytest.warns(UserWarning, match=r"budget\(s\) 100 per class reach the largest class \(6 .*run once, as 'all'"):
        result = CliRunner().invoke(app, [*whole, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["budgets"] == [2, "all"]
