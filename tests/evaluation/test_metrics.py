"""Tests of graft.evaluation: metrics, plots and the HTML report."""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graft.errors import DataError
from graft.evaluation import (
    classification_metrics,
    format_metrics,
    plot_confusion_matrix,
    plot_history,
    write_html_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Hand-worked 3-class example. Predictions (arg-max) are [0, 0, 1, 1, 2, 2].
#   confusion (rows true, cols predicted): a [2 1 0], b [0 1 1], c [0 0 1]
#   recall a 2/3, b 1/2, c 1     precision a 1, b 1/2, c 1/2     F1 a 4/5, b 1/2, c 2/3
Y3 = [0, 0, 0, 1, 1, 2]
P3 = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
        [0.2, 0.5, 0.3],  # true a ranked last: not in top-2
        [0.1, 0.8, 0.1],
        [0.1, 0.3, 0.6],  # true b ranked second: in top-2
        [0.2, 0.2, 0.6],
    ]
)
L3 = ["a", "b", "c"]


def test_perfect_predictions_score_one_everywhere() -> None:
    y = [0, 1, 2, 1, 0, 2]
    proba = np.eye(3)[y]
    m = classification_metrics(y, proba, L3)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        assert m[key] == pytest.approx(1.0)
    for label in L3:
        assert m["per_class"][label] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["log_loss"] == pytest.approx(0.0, abs=1e-9)
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert m["n"] == 6
    assert m["labels"] == L3


def test_hand_computed_three_class_example() -> None:
    m = classification_metrics(Y3, P3, L3, top_k=(1, 2, 3))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # 13/18
    assert m["macro_f1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)  # 59/90
    assert m["weighted_f1"] == pytest.approx((3 * 4 / 5 + 2 * 1 / 2 + 1 * 2 / 3) / 6)  # 61/90
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    expected_ll = -np.mean(np.log([0.7, 0.6, 0.2, 0.8, 0.3, 0.6]))
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["top_k"] == {"top_2": pytest.approx(5 / 6)}  # k=1 is accuracy, k=3 == C is trivial
    assert "roc_auc" not in m


def test_top_k_only_for_k_below_class_count() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(6), size=40)
    y = rng.integers(0, 6, size=40)
    m = classification_metrics(y, proba, [f"c{i}" for i in range(6)])
    assert set(m["top_k"]) == {"top_3", "top_5"}
    ranks = (-proba).argsort(axis=1)
    for k in (3, 5):
        hits = np.mean([y[i] in ranks[i, :k] for i in range(40)])
        assert m["top_k"][f"top_{k}"] == pytest.approx(hits)
    assert m["accuracy"] <= m["top_k"]["top_3"] <= m["top_k"]["top_5"] <= 1.0
    # three classes: top-3 and top-5 are trivial, so nothing is reported
    assert classification_metrics(Y3, P3, L3)["top_k"] == {}


def test_class_absent_from_y_true_still_listed() -> None:
    y = [0, 0, 1, 1]
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.1, 0.7], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(y, proba, ["x", "y", "z"])
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)  # mean recall over present classes
    assert math.isfinite(m["log_loss"])
    # a class neither present nor predicted is listed with zeros but does not lower macro-F1
    m2 = classification_metrics([0, 1], np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]), ["x", "y", "z"])
    assert m2["per_class"]["z"]["support"] == 0
    assert m2["macro_f1"] == pytest.approx(1.0)


def test_binary_roc_auc() -> None:
    y = [0, 0, 1, 1]
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    proba = np.stack([1 - p1, p1], axis=1)
    m = classification_metrics(y, proba, ["neg", "pos"])
    # positive/negative pairs ranked correctly: (0.35>0.1), (0.8>0.1), (0.8>0.4); wrong: (0.35<0.4) -> 3/4
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["top_k"] == {}
    one_class = classification_metrics([1, 1], proba[2:], ["neg", "pos"])
    assert "roc_auc" not in one_class


def test_result_is_plain_json() -> None:
    m = classification_metrics(np.array(Y3, dtype=np.int32), P3.astype(np.float32), L3, top_k=(2,))
    text = json.dumps(m)
    assert json.loads(text) == m

    def check(obj: object) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                assert type(k) is str
                check(v)
        elif isinstance(obj, list):
            for v in obj:
                check(v)
        else:
            assert type(obj) in (int, float, str), type(obj)

    check(m)


def test_log_loss_is_finite_for_confident_mistakes() -> None:
    m = classification_metrics([0, 1], np.array([[0.0, 1.0], [1.0, 0.0]]), ["a", "b"])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 10
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize(
    ("y", "proba", "labels", "match"),
    [
        ([], np.zeros((0, 3)), L3, "empty"),
        ([0, 1], np.full((3, 3), 1 / 3), L3, "rows"),
        ([0, 1], np.full((2, 2), 0.5), L3, "columns"),
        ([0, 3], np.full((2, 3), 1 / 3), L3, "class index"),
        ([0, 1], np.full((2, 3), 1 / 3), ["a", "a", "b"], "unique"),
        ([0, 1], np.array([[np.nan, 0.5, 0.5], [0.3, 0.3, 0.4]]), L3, "NaN"),
        ([0.5, 1], np.full((2, 3), 1 / 3), L3, "integer"),
    ],
)
def test_bad_input_raises_data_error(y: list, proba: np.ndarray, labels: list[str], match: str) -> None:
    with pytest.raises(DataError, match=match):
        classification_metrics(y, proba, labels)


def test_format_metrics_is_aligned_text() -> None:
    m = classification_metrics(Y3, P3, ["alpha", "b", "gamma-long-name"], top_k=(2,))
    text = format_metrics(m)
    assert "accuracy" in text and "0.6667" in text
    assert "balanced acc" in text and "0.7222" in text
    assert "macro-F1" in text and "0.6556" in text
    assert "top-2" in text
    lines = text.splitlines()
    rows = [ln for ln in lines if ln.startswith(("alpha", "b ", "gamma-long-name"))]
    assert len(rows) == 3
    assert len({len(r) for r in rows}) == 1  # aligned columns
    assert rows[0].split()[-1] == "3"  # support of alpha
    assert format_metrics({})  # tolerates missing keys


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 100 and data.startswith(PNG_MAGIC)


@pytest.mark.parametrize("n_classes", [2, 25])
def test_confusion_matrix_png(tmp_path: Path, n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    cm = rng.integers(0, 20, size=(n_classes, n_classes))
    cm[0] = 0  # an empty row must not break normalisation
    labels = [f"class_{i}$x" for i in range(n_classes)]  # '$' must not trigger mathtext
    out = plot_confusion_matrix(cm, labels, tmp_path / "sub" / "cm.png", title="Confusion <test>")
    assert out == tmp_path / "sub" / "cm.png"
    assert _is_png(out)
    raw = plot_confusion_matrix(cm.tolist(), labels, tmp_path / "raw.png", normalize=False)
    assert _is_png(raw)
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]


def test_confusion_matrix_shape_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="3x3"):
        plot_confusion_matrix(np.zeros((2, 2)), L3, tmp_path / "cm.png")


def test_history_plot(tmp_path: Path) -> None:
    history = [
        {
            "epoch": 1,
            "train_loss": 1.2,
            "val_loss": 1.3,
            "val_accuracy": 0.4,
            "val_macro_f1": 0.35,
            "lr": 1e-3,
        },
        {"epoch": 2, "train_loss": 0.8, "val_loss": 1.0, "val_accuracy": 0.6, "val_macro_f1": 0.55},
        {"epoch": 3, "train_loss": 0.5},  # validation skipped this epoch
        {"epoch": 4, "train_loss": 0.4, "val_loss": 0.7, "val_accuracy": 0.8, "val_macro_f1": None},
    ]
    out = plot_history(history, tmp_path / "history.png")
    assert _is_png(out)
    assert _is_png(plot_history([{"train_loss": 1.0}], tmp_path / "one.png"))
    with pytest.raises(DataError):
        plot_history([], tmp_path / "empty.png")


def test_html_report_escapes_and_embeds(tmp_path: Path) -> None:
    labels = ["<b>x</b>", "y & z"]
    y = [0, 1, 1, 0]
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    m = classification_metrics(y, proba, labels)
    cm_png = plot_confusion_matrix(m["confusion_matrix"], labels, tmp_path / "cm.png")
    hist_png = plot_history([{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5}], tmp_path / "h.png")
    info = {"model": "<script>alert(1)</script>", "strategy": "linear_probe", "timings": {"fit_s": 1.5}}
    out = write_html_report(
        tmp_path / "report" / "index.html",
        title="Report <1>",
        metrics=m,
        info=info,
        images={"confusion_matrix": cm_png, "training_curves": hist_png, "missing": tmp_path / "nope.png"},
    )
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    assert "y &amp; z" in text
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "Report &lt;1&gt;" in text
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 2
    assert base64.b64decode(uris[0]).startswith(PNG_MAGIC)
    assert "image not available" in text
    assert "http://" not in text and "https://" not in text  # self-contained
    assert "0.5000" in text  # accuracy headline


def test_importing_graft_evaluation_does_not_import_matplotlib() -> None:
    code = "import sys, graft.evaluation; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
