"""``clf.explain``, ``graft explain`` and the Grad-CAM grid of the most confidently wrong images in reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import tiny_classifier, write_class_folder
from typer.testing import CliRunner

from graft.cli import app
from graft.errors import DataError


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("explain")
    data = write_class_folder(root / "data", 2, 10, seed=3)
    tiny_classifier("fine-tune", epochs=1, output_dir=root / "run").fit(data)
    return root / "run", data


def test_explain_returns_maps_over_the_crops(run: tuple[Path, Path], tmp_path: Path) -> None:
    import graft

    model = graft.load(run[0])
    paths = sorted(str(p) for p in (run[1] / "red").glob("*.png"))[:3]
    exp = model.explain(paths)
    assert exp.maps.shape == (3, 32, 32) and exp.maps.dtype == np.float32
    assert float(exp.maps.min()) >= 0.0 and float(exp.maps.max()) <= 1.0
    assert [im.shape for im in exp.images] == [(32, 32, 3)] * 3
    assert exp.targets == exp.labels  # the predicted class by default
    other = model.explain(paths, target=model.classes_[0])
    assert other.targets == [model.classes_[0]] * 3
    written = exp.save(tmp_path / "cams")
    assert [p.name for p in written] == [Path(p).stem + "_cam.png" for p in paths]
    with pytest.raises(DataError, match="not a label of this model"):
        model.explain(paths, target="zebra")


def test_graft_explain_writes_the_overlay_png(run: tuple[Path, Path], tmp_path: Path) -> None:
    image = sorted((run[1] / "blue").glob("*.png"))[0]
    result = CliRunner().invoke(app, ["explain", str(run[0]), str(image), "-o", str(tmp_path / "cam.png"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["overlay"] == str(tmp_path / "cam.png")
    with Image.open(tmp_path / "cam.png") as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    folder = CliRunner().invoke(app, ["explain", str(run[0]), str(run[1] / "blue"), "-o", str(tmp_path / "many")])
    assert folder.exit_code == 0, folder.output
    assert len(list((tmp_path / "many").glob("*_cam.png"))) == 10
    bad = CliRunner().invoke(app, ["explain", str(run[0]), str(run[1] / "blue"), "-o", str(tmp_path / "x.png")])
    assert bad.exit_code != 0 and "give a folder as -o" in bad.output


def test_reports_show_the_most_confident_errors(run: tuple[Path, Path]) -> None:
    from graft.evaluation.explain import confident_errors

    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert confident_errors(proba, np.array([1, 1, 1, 0])) == [0, 3, 2]
    html = (run[0] / "report.html").read_text()
    if (run[0] / "confident_errors.png").exists():  # a 1-epoch tiny model usually errs on validation
        assert "Most confidently wrong validation images" in html
    result = CliRunner().invoke(app, ["evaluate", str(run[0]), str(run[1]), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    folder = next((run[0] / "evaluation").iterdir())
    wrong = metrics["n"] - round(metrics["accuracy"] * metrics["n"])
    assert (folder / "confident_errors.png").exists() == (wrong > 0)


def test_reports_show_calibration_and_the_data(run: tuple[Path, Path], tmp_path: Path) -> None:
    from graft.evaluation.clinical import top_label_ece
    from graft.evaluation.plots import plot_reliability

    html = (run[0] / "report.html").read_text()
    assert "Calibration (validation)" in html and (run[0] / "reliability.png").exists()
    assert "<h2>Data</h2>" in html and "imbalance (largest / smallest class)" in html
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 1, 0])
    path = plot_reliability(proba, y, tmp_path / "rel.png")
    with Image.open(path) as im:
        assert im.size[0] > 100
    assert top_label_ece(y, proba) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)  # one row per bin
