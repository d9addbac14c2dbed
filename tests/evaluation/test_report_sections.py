"""The report's sections from hand-made JSON: text examples among the confident errors, Choices (a ``--budget``
run's ``"auto"``), Rank (``rank.json``) and Compare (``compare.json``), and ``write_run_report`` on run folders that
lack parts (a section says so instead of failing)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graft.cli import app
from graft.errors import BundleError
from graft.evaluation.report_sections import (
    TEXT_LIMIT,
    choices_section,
    compare_plot,
    compare_section,
    rank_section,
    records_table,
    text_errors_section,
)
from graft.evaluation.run_report import write_run_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

AUTO = {
    "budget_s": 300,
    "spent_s": 287.4,
    "phases_s": {"rank": 21.5, "lr_find": 12.0, "train": 250.9},
    "decisions": [
        {"what": "backbone", "choice": "efficientnet_lite1", "why": "best LogME", "evidence": {"logme": 1.23}},
        {"what": "strategy", "choice": "fine-tune", "why": "<enough> labels & time", "evidence": {"n_train": 400}},
    ],
    "rank": [{"model": "efficientnet_lite1", "logme": 1.23}, {"model": "efficientnet_lite0", "logme": 0.98}],
}

COMPARE = {
    "data": "data/ants_bees",
    "backbone": "efficientnet_lite0",
    "test_rows": 153,
    "budgets": [2, 8, "all"],
    "rows": [
        {"strategy": "scratch", "budget": 2, "seed": 0, "n_train": 4, "accuracy": 0.5, "f1_macro": 0.4, "seconds": 1.0},
        {"strategy": "fine-tune", "budget": 2, "seed": 0, "n_train": 4, "accuracy": 0.7, "f1_macro": 0.7, "seconds": 3},
    ],
    "summary": [
        {"strategy": "scratch", "budget": 2, "n_train": 4, "mean": 0.50, "std": 0.02, "seconds": 1.0},
        {"strategy": "scratch", "budget": "all", "n_train": 244, "mean": 0.58, "std": 0.03, "seconds": 9.0},
        {"strategy": "fine-tune", "budget": 2, "n_train": 4, "mean": 0.71, "std": 0.05, "seconds": 3.0},
        {"strategy": "fine-tune", "budget": "all", "n_train": 244, "mean": 0.93, "std": 0.01, "seconds": 30.0},
    ],
    "gain": [
        {
            "budget": 2,
            "scratch": 0.50,
            "best_strategy": "fine-tune",
            "best": 0.71,
            "points": 21.0,
            "seconds_scratch": 1.0,
            "seconds_best": 3.0,
        }
    ],
}


def _headings(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def _manifest(**extra: Any) -> dict[str, Any]:
    """A hand-made ``graft.json`` of a two-class text run (what the report reads; no weights are needed)."""
    cm = [[3, 1], [2, 4]]
    metrics = {
        "n": 10,
        "accuracy": 0.7,
        "macro_f1": 0.69,
        "per_class": {"neg": {"precision": 0.6, "recall": 0.75, "f1": 0.67, "support": 4}},
        "confusion_matrix": cm,
        "labels": ["neg", "pos"],
    }
    return {
        "format": "graft-bundle",
        "format_version": 1,
        "task": "text-classification",
        "labels": ["neg", "pos"],
        "backbone": {"source": "transformers", "name": "minilm"},
        "strategy": {"name": "feature-extraction", "params": {"dropout": 0.1}},
        "params": {"backbone": "minilm"},
        "training": {"n_train": 40, "n_val": 10, "best_epoch": 2, "fit_seconds": 3.2, "history": []},
        "metrics": {"val": metrics},
        **extra,
    }


def _run(tmp_path: Path, **extra: Any) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "graft.json").write_text(json.dumps(_manifest(**extra)), encoding="utf-8")
    return run


def test_text_errors_are_escaped_shortened_and_labelled() -> None:
    long = "<b>bold</b> & " + "word " * 200
    html = "\n".join(
        text_errors_section(
            "Most confidently wrong examples",
            [
                {"text": long, "true": "pos", "predicted": "neg", "probability": 0.9876},
                {"text": "premise", "pair": "hypothesis", "true": "<a>", "predicted": "b", "probability": 0.6},
            ],
        )
    )
    assert "<b>bold" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; word" in html
    first = re.search(r'<td class="text">(.*?)</td>', html).group(1)  # type: ignore[union-attr]
    assert first.endswith("…") and len(first) < TEXT_LIMIT + 30  # shortened (escapes add a few characters)
    assert "<td>pos</td><td>neg</td>" in html and "0.988" in html
    assert "premise ⟂ hypothesis" in html and "&lt;a&gt;" in html
    assert "No example was predicted wrongly" in "\n".join(text_errors_section("Errors", []))


def test_choices_show_the_budget_the_decisions_and_the_ranked_candidates() -> None:
    html = "\n".join(choices_section(AUTO))
    assert _headings(html) == ["Choices"]
    assert "budget 300 s, spent 287.4 s" in html and "<th>lr_find</th>" in html
    assert "<th>what</th><th>choice</th><th>why</th><th>evidence</th>" in html
    assert "&lt;enough&gt; labels &amp; time" in html and "{&quot;n_train&quot;: 400}" in html
    assert "Candidates ranked" in html and html.index("efficientnet_lite1") < html.rindex("efficientnet_lite0")
    assert "not readable" in "\n".join(choices_section(["not", "a", "dict"]))
    partial = "\n".join(choices_section({"decisions": [{"what": "lr"}]}))  # missing keys render as "-"
    assert "budget -, spent -." in partial and "<td>lr</td><td>-</td>" in partial


def test_rank_section_takes_rows_or_the_json_of_graft_rank() -> None:
    rows = [{"model": "a", "logme": 1.5, "leep": float("nan")}, {"model": "b", "logme": 0.5, "leep": -0.7}]
    html = "\n".join(rank_section(rows))
    assert _headings(html) == ["Rank"] and '<td class="num">1.5000</td>' in html and "<td>-</td>" in html
    sorted_by = "\n".join(rank_section({"score": "logme", "ranking": rows}))
    assert "sorted by logme" in sorted_by and "<td>b</td>" in sorted_by
    assert "no rows" in "\n".join(records_table("not rows"))


def test_compare_shows_the_summary_the_gain_and_an_inline_plot() -> None:
    html = "\n".join(compare_section(COMPARE))
    assert _headings(html) == ["Compare"]
    assert "label budgets 2, 8, all" in html and "153 test rows" in html
    assert "<th>strategy</th><th>budget</th><th>n_train</th><th>mean</th><th>std</th><th>seconds</th>" in html
    assert "budget 2: fine-tune 0.710 vs scratch 0.500 (+21.0 points); 3.0 s vs 1.0 s" in html
    uri = re.search(r'<img src="data:image/png;base64,([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert base64.b64decode(uri)[:8] == PNG_MAGIC
    assert "Every run" in html and "f1_macro" in html
    assert compare_plot([]) is None and compare_plot([{"strategy": "x", "n_train": "?", "mean": 0.5}]) is None
    bare = "\n".join(compare_section({"summary": []}))  # nothing to plot, nothing to fail on
    assert "<img" not in bare and "no rows" in bare


def test_a_run_report_fills_what_it_can_and_says_what_is_missing(tmp_path: Path) -> None:
    run = _run(tmp_path, auto=AUTO)
    examples = [{"text": "<i>dull</i> film", "true": "pos", "predicted": "neg", "probability": 0.81}]
    (run / "confident_errors.json").write_text(json.dumps({"split": "validation", "examples": examples}))
    (run / "compare.json").write_text(json.dumps(COMPARE))
    (run / "rank.json").write_text("{ not json")
    report = write_run_report(run)
    html = report.path.read_text(encoding="utf-8")
    assert report.path == run / "report.html" and report.title == "Graft run: run"
    assert report.sections == _headings(html)
    for heading in ("Run", "Metrics", "Per class", "Confusion matrix (validation)", "Training curves",
                    "Calibration (validation)", "Most confidently wrong validation examples", "Choices", "Rank",
                    "Compare"):  # fmt: skip
        assert heading in report.sections, (heading, report.sections)
    assert "&lt;i&gt;dull&lt;/i&gt; film" in html and "<i>dull" not in html
    notes = "\n".join(report.notes)
    assert "Training curves: This run saved no training history" in notes
    assert "Calibration (validation): This run saved no reliability diagram" in notes
    assert "rank.json could not be read" in notes and "rank.json could not be read" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained


def test_a_run_without_validation_or_saved_errors_says_so(tmp_path: Path) -> None:
    manifest = _manifest()
    manifest["metrics"] = {"val": None}
    run = tmp_path / "noval"
    run.mkdir()
    (run / "graft.json").write_text(json.dumps(manifest))
    report = write_run_report(run, tmp_path / "out" / "r.html")
    assert report.path.exists() and "Metrics" in report.sections
    assert any("no validation metrics" in n and "--data" in n for n in report.notes)
    with_val = _run(tmp_path)  # validation metrics with errors, but no confident_errors.json
    report = write_run_report(with_val)
    assert any(n.startswith("Most confidently wrong validation examples: This run saved no") for n in report.notes)


def test_a_compare_folder_alone_gets_a_report_of_just_that(tmp_path: Path) -> None:
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps(COMPARE))
    result = CliRunner().invoke(app, ["report", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["title"] == "Graft compare: cmp" and out["sections"] == ["Run", "Compare"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "efficientnet_lite0" in html and "+21.0 points" in html


def test_a_folder_with_nothing_to_report_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no Graft run .* no compare.json or rank.json"):
        write_run_report(tmp_path / "empty")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_rank_output_writes_the_rows_for_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    import graft.selection

    table = pd.DataFrame([{"model": "a", "examples": 8, "dim": 4, "logme": 1.0, "leep": float("nan")}])
    monkeypatch.setattr(graft.selection, "rank", lambda *a, **k: table)
    out = tmp_path / "runs" / "rank.json"
    result = CliRunner().invoke(app, ["rank", str(tmp_path), "--models", "a", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == [{"model": "a", "examples": 8, "dim": 4, "logme": 1.0, "leep": None}]
    bad = CliRunner().invoke(app, ["rank", str(tmp_path), "--models", "a", "-o", str(tmp_path / "rank.csv")])
    assert bad.exit_code == 2 and "give a .json file" in bad.output
    report = write_run_report(out.parent)
    assert report.sections == ["Rank"]
