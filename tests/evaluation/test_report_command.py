"""``graft report RUN`` on tiny saved runs: the training report comes back from the run folder alone, ``--data``
scores the run first (as ``graft evaluate``), and text runs list their most confidently wrong examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graft.cli import app

ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}


def _headings(path: Path) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_graft_report_regenerates_the_report_of_an_image_run(helpers: Any, tmp_path: Path) -> None:
    data = helpers.write_class_folder(tmp_path / "data", 2, 8, seed=5)
    run = tmp_path / "run"
    helpers.tiny_classifier("fine-tune", epochs=1, output_dir=run).fit(data)
    trained = _headings(run / "report.html")
    (run / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(run), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["report"] == str(run / "report.html") and out["title"] == "Graft run: run"
    assert _headings(run / "report.html") == out["sections"]
    shown = [h for h in trained if not h.startswith("Most confidently wrong")]  # a note when nothing is wrong
    assert [h for h in out["sections"] if not h.startswith("Most confidently wrong")] == shown
    assert "Training curves" in out["sections"] and "Confusion matrix (validation)" in out["sections"]

    scored = CliRunner().invoke(app, ["report", str(run), "--data", str(data), "--json"], env=ENV)
    assert scored.exit_code == 0, scored.output
    out = json.loads(scored.stdout)
    folder = Path(out["report"]).parent
    assert folder.parent == run / "evaluation" and (folder / "confusion_matrix.png").exists()
    assert out["title"] == "Graft evaluation: run" and out["scored"]["split"] is None and "warning" in out["scored"]
    assert {"Confusion matrix", "Calibration", "Training curves"} <= set(out["sections"])
    assert out["metrics"]["n"] == 16
    elsewhere = tmp_path / "elsewhere" / "test.html"
    n_evaluations = len(list((run / "evaluation").iterdir()))
    chosen = CliRunner().invoke(app, ["report", str(run), "--data", str(data), "-o", str(elsewhere)], env=ENV)
    assert chosen.exit_code == 0, chosen.output
    assert elsewhere.exists() and sorted(p.name for p in elsewhere.parent.iterdir()) == ["test.html"]
    assert len(list((run / "evaluation").iterdir())) == n_evaluations  # plots went to a temporary folder


@pytest.mark.slow
def test_text_reports_list_the_most_confidently_wrong_examples(text_helpers: Any, tmp_path: Path) -> None:
    import pandas as pd

    texts, labels = text_helpers.sentiment(40, seed=1)
    texts[1] = "<b>bold</b> & the movie was great"
    run = tmp_path / "run"
    text_helpers.tiny("bert", "feature-extraction", output_dir=run, epochs=1).fit(texts, labels)
    saved = json.loads((run / "confident_errors.json").read_text())
    html = (run / "report.html").read_text(encoding="utf-8")
    heading = "Most confidently wrong validation examples"
    assert f"<h2>{heading}</h2>" in html
    wrong = saved["examples"]
    if wrong:  # a 1-epoch random model usually errs; each listed example is wrong, most confident first
        assert all(e["true"] != e["predicted"] for e in wrong)
        assert [e["probability"] for e in wrong] == sorted((e["probability"] for e in wrong), reverse=True)
        assert wrong[0]["text"].split()[0].replace("&", "&amp;") in html
    else:
        assert "No example was predicted wrongly" in html

    table = tmp_path / "test.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(table, index=False)
    result = CliRunner().invoke(app, ["report", str(run), "--data", str(table), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    page = Path(out["report"]).read_text(encoding="utf-8")
    assert "<b>bold" not in page
    metrics = out["metrics"]
    errors = metrics["n"] - round(metrics["accuracy"] * metrics["n"])
    assert "Most confidently wrong examples" in out["sections"]
    assert page.count('<td class="text">') == min(errors, 10)
    assert ("No example was predicted wrongly" in page) == (errors == 0)
