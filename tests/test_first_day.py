"""A new user's first day: the README's commands work as written, and mistakes end in a clear message (exit 2),
never a traceback, before anything is written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from graft.cli import app

ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}
SMALL = ("--image-size", "32", "--device", "cpu")


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _refused(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def images(helpers: Any, tmp_path: Path) -> Path:
    return helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=4)


def test_a_strategy_setting_of_the_wrong_type_is_refused_before_the_run_directory(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _refused(_invoke("train", images, "-o", run, "--set", "lr_decay=abc", *SMALL), "lr_decay must be a number", "'abc'")
    assert not run.exists()


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (("--epochs", "-3"), "epochs must be >= 1"),
        (("--lr", "0"), "lr must be > 0"),
        (("--precision", "fp8"), "precision must be one of"),
        (("--batch-size", "0"), "batch_size and grad_accum must be >= 1"),
        (("--patience", "0"), "patience must be >= 1"),
    ],
)
def test_bad_options_are_refused_before_the_run_directory(
    images: Path, tmp_path: Path, option: tuple[str, str], needle: str
) -> None:
    run = tmp_path / "run"
    _refused(_invoke("train", images, "-o", run, *option, "--image-size", "32"), needle)
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused(images: Path, tmp_path: Path) -> None:
    _refused(_invoke("train", images, "-o", tmp_path / "run", "--device", "cuda", "--image-size", "32"), "no CUDA")
    assert not (tmp_path / "run").exists()


def test_an_unknown_device_is_refused(images: Path, tmp_path: Path) -> None:
    _refused(_invoke("train", images, "-o", tmp_path / "run", "--device", "gpu0"), "'gpu0' is not a device")


@pytest.mark.slow
def test_multi_label_readme_command_writes_every_artifact(tmp_path: Path) -> None:
    """README: graft train tagged.csv --multi-label --label-sep "|" -o runs/topics (it crashed after training)."""
    rows = ["text,labels"]
    topics = {"sport": "the match and the goal", "food": "the soup and the bread", "travel": "the train and the map"}
    names = list(topics)
    for i in range(24):
        a, b = names[i % 3], names[(i + 1) % 3]
        labels = f"{a}|{b}" if i % 2 else a
        rows.append(f'"{topics[a]} {i}, {topics[b] if i % 2 else ""}",{labels}')
    data = tmp_path / "tagged.csv"
    data.write_text("\n".join(rows) + "\n")
    run = tmp_path / "topics"
    result = _invoke("train", data, "--multi-label", "--label-sep", "|", "-o", run, "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    for name in ("graft.json", "model.safetensors", "history.png", "report.html", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert not (run / "confusion_matrix.png").exists()  # no single confusion matrix for several labels
    summary = json.loads(result.stdout)
    assert set(summary["classes"]) == set(names) and 0.0 <= summary["val"]["micro_f1"] <= 1.0
    predicted = _invoke("predict", run, "--text", "the soup and the bread", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert isinstance(json.loads(predicted.stdout)[0]["labels"], list)


def test_an_unlabelled_target_is_any_folder_of_images(helpers: Any, tmp_path: Path) -> None:
    source = helpers.write_class_folder(tmp_path / "source", n_classes=2, n_per_class=4)
    flat = tmp_path / "target"
    flat.mkdir()
    for i, image in enumerate(sorted(source.rglob("*.png"))):
        (flat / f"t{i}.png").write_bytes(image.read_bytes())  # no class sub-folders
    run = tmp_path / "run"
    result = _invoke("train", source, "--target", flat, "--strategy", "dann", "-o", run, "--epochs", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "graft.json").read_text())["training"]["adaptation"]["n_target"] == 8


def test_history_plot_has_a_row_per_phase_and_leaves_out_throughput(tmp_path: Path) -> None:
    from PIL import Image

    from graft.evaluation.plots import _curve_keys, plot_history

    def rows(phase: str, n: int) -> list[dict[str, Any]]:
        return [
            {
                "phase": phase,
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": 1.2 / e,
                "val_accuracy": 0.5 + e / 200,
                "train_samples_per_s": 45_000.0,
                "lr": 1e-3,
                "seconds": 0.4,
            }
            for e in range(1, n + 1)
        ]

    head, tune = rows("head", 60), rows("fine-tune", 6)
    assert _curve_keys(head) == (["train_loss", "val_loss"], ["val_accuracy"])
    one = Image.open(plot_history(head, tmp_path / "one.png")).size
    two = Image.open(plot_history(head + tune, tmp_path / "two.png", best_epochs={"head": 60, "fine-tune": 4})).size
    assert two[0] == one[0] and two[1] > 1.8 * one[1], (one, two)  # a row of panels per phase


def test_the_python_api_shows_progress_when_a_person_is_watching(
    helpers: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    X, y = helpers.color_arrays(6, 2)
    clf = helpers.tiny_classifier("fine-tune", verbose=None)  # the default: decide by who is watching
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not clf._verbose(), "a pipe or a log file gets no progress bars"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert clf._verbose()
    clf.fit(X, y)
    err = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", capsys.readouterr().err)  # without terminal colours
    assert "fine-tune epoch=1 train_loss=" in err and "fine-tune 3/3" in err, err[-500:]
    assert not helpers.tiny_classifier("fine-tune", verbose=False)._verbose()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.test_cli_text import COOKING, SPORTS

    root = tmp_path_factory.mktemp("textrun")
    table = root / "topics.csv"
    rows = [f'"{t}",sports' for t in SPORTS] + [f'"{t}",cooking' for t in COOKING]
    table.write_text("review,label\n" + "\n".join(rows) + "\n")
    run = root / "run"
    result = _invoke("train", table, "-o", run, "--strategy", "feature-extraction", "--epochs", "20", "--json")
    assert result.exit_code == 0, result.output
    return run


def test_predict_reads_a_table_as_a_table_and_writes_every_format(text_run: Path, tmp_path: Path) -> None:
    import pandas as pd

    table = tmp_path / "new.csv"
    table.write_text('id,review\n1,"Roast the lamb, then rest it"\n2,"The striker scored twice"\n')
    for ext in (".csv", ".jsonl", ".parquet"):
        out = tmp_path / f"preds{ext}"
        result = _invoke("predict", text_run, table, "--output", out, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] == 2
        read = {".csv": pd.read_csv, ".parquet": pd.read_parquet}.get(ext, lambda p: pd.read_json(p, lines=True))
        frame = read(out)
        assert list(frame["input"]) == ["Roast the lamb, then rest it", "The striker scored twice"]  # no header row
        assert list(frame["label"]) == ["cooking", "sports"] and len(frame) == 2, frame
    rows = json.loads(_invoke("predict", text_run, table, "--json").stdout)
    assert [r["label"] for r in rows] == ["cooking", "sports"]
    bad = _invoke("predict", text_run, table, "--output", tmp_path / "preds.xlsx")
    _refused(bad, "must end in .csv, .jsonl, .parquet")


def test_a_text_model_given_an_image_says_so(text_run: Path, helpers: Any, tmp_path: Path) -> None:
    folder = helpers.write_class_folder(tmp_path / "imgs", n_classes=2, n_per_class=1)
    image = sorted(folder.rglob("*.png"))[0]
    _refused(_invoke("predict", text_run, image), "is an image, and this model reads texts")
    raw = tmp_path / "photo.bin"
    raw.write_bytes(b"\xff\xd8\xff\xe0 binary")
    _refused(_invoke("predict", text_run, raw), "is not UTF-8 text")
    _refused(_invoke("predict", text_run, folder), "imgs' is a folder, and this model reads texts")
    _refused(_invoke("evaluate", text_run, folder), "imgs' holds images, and text classification reads text tables")


def test_piped_output_is_not_wrapped(text_run: Path) -> None:
    long_text = "The goalkeeper saved a penalty " + "and the crowd cheered " * 8
    result = CliRunner().invoke(app, ["predict", str(text_run), "--text", long_text], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(long_text.strip()[:40]) and len(lines[0]) > 120, lines


def test_version_and_help_texts() -> None:
    import graft

    assert _invoke("--version").stdout.strip() == f"graft {graft.__version__}"
    train_help = " ".join(_invoke("train", "--help").output.split())
    assert "CoNLL" in train_help and "table (CSV, TSV, JSONL, Parquet)" in train_help
    assert "--json <bool>" not in train_help and "--multi-label <bool>" not in train_help  # flags take no value
    demo_help = " ".join(_invoke("demo", "--help").output.split())
    assert "fine-tune (default)" not in demo_help and "default: feature-extraction" in demo_help


def test_models_with_a_timm_pattern_prints_no_empty_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import graft.backbones.timm as timm_names

    monkeypatch.setattr(timm_names, "timm_names", lambda pattern, pretrained=False: ["resnet18", "resnet50"])
    result = _invoke("models", "--all", "*resnet*")
    assert result.exit_code == 0, result.output
    assert "Graft backbones" not in result.output and "resnet50" in result.output


def test_text_training_reports_its_columns_and_records_the_run(text_run: Path) -> None:
    manifest = json.loads((text_run / "graft.json").read_text())
    data = manifest["training"]["data"]
    assert data["columns"] == {"text": "review", "label": "label"}
    assert data["train"].endswith("topics.csv") and len(data["fingerprint"]) == 32


def test_text_training_hints_at_text_prediction(tmp_path: Path) -> None:
    from tests.test_cli_text import COOKING, SPORTS

    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "\n".join([f"{t},a" for t in SPORTS[:6]] + [f"{t},b" for t in COOKING[:6]]))
    result = _invoke("train", table, "-o", tmp_path / "run", "--strategy", "feature-extraction", "--epochs", "2")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "read text from column 'text', label from column 'label'" in flat
    assert "graft predict" in flat and '--text "..."' in flat and "IMAGE" not in flat


def test_ctrl_c_during_training_exits_130_and_suggests_resume(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft.training.loop as loop

    real = loop._save_checkpoint

    def save_then_interrupt(path: Path, payload: dict[str, Any]) -> None:
        real(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_interrupt)
    run = tmp_path / "run"
    result = _invoke("train", images, "-o", run, "--epochs", "2", *SMALL)
    assert result.exit_code == 130, result.output
    assert "--resume" in result.output and "Traceback" not in result.output


def test_evaluate_names_the_split_and_warns_about_the_validation_split(helpers: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    helpers.write_class_folder(root / "train", n_classes=2, n_per_class=4)
    helpers.write_class_folder(root / "val", n_classes=2, n_per_class=2, seed=1)
    run = tmp_path / "run"
    trained = _invoke("train", root, "-o", run, "--strategy", "feature-extraction", "--epochs", "3", *SMALL)
    assert trained.exit_code == 0, trained.output
    result = _invoke("evaluate", run, root, "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)["scored"]
    assert scored["split"] == "val" and "chose the best epoch" in scored["warning"]
    helpers.write_class_folder(root / "test", n_classes=2, n_per_class=2, seed=2)
    scored = json.loads(_invoke("evaluate", run, root, "--json").stdout)["scored"]
    assert scored == {"data": str(root), "split": "test"}, "a test split is preferred and raises no warning"


def test_a_table_without_labels_names_its_columns(tmp_path: Path) -> None:
    table = tmp_path / "unlabelled.csv"
    table.write_text("id,review\n1,great\n2,awful\n3,fine\n")
    result = _invoke("train", table, "-o", tmp_path / "run", "--strategy", "feature-extraction")
    _refused(result, "no label column", "'id', 'review'", "--label-column")
    assert "pass y" not in result.output and not (tmp_path / "run").exists()


def test_log_with_tensorboard_writes_event_files(images: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    result = _invoke("train", images, "-o", run, "--epochs", "2", "--log-with", "tensorboard", *SMALL)
    assert result.exit_code == 0, result.output
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run / "logs").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert "train_loss" in events.Tags()["scalars"]
    _refused(_invoke("train", images, "-o", tmp_path / "r2", "--log-with", "neptune", *SMALL), "log_with must be")
