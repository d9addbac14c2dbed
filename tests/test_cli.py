"""The ``graft`` command line, driven in-process with typer's CliRunner.

The CLI has no ``--pretrained``/``--image-size`` options, so training here uses the offline
``efficientnet_lite0`` with ``--strategy feature-extraction`` on a dozen small images (fast on CPU).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graft.cli import app

ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}  # no line wrapping of long paths in messages
SMALL = ("--image-size", "32")  # the embedded backbone at 32 px: fast enough for every CLI test


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _train_args(data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data), "-o", str(run), "--strategy", "feature-extraction", "--device", "cpu", *SMALL, *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, helpers: Any) -> tuple[Path, Path, dict[str, Any]]:
    """A run trained once through the CLI: (run directory, data folder, --json summary)."""
    root = tmp_path_factory.mktemp("cli")
    data = helpers.write_class_folder(root / "data", n_classes=2, n_per_class=6)
    run = root / "run"
    result = _invoke(*_train_args(data, run, "--epochs", "20", "--json"))
    assert result.exit_code == 0, result.output
    return run, data, json.loads(result.stdout)


def test_help_lists_the_commands() -> None:
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict", "models", "demo", "compare-adaptation"):
        assert command in result.output


def test_models_json_lists_the_offline_model() -> None:
    result = _invoke("models", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    rows = {r["name"]: r for r in listing["embedded"]}
    assert rows["efficientnet_lite0"]["offline"] is True
    assert rows["efficientnet_lite0"]["modality"] == "image"
    assert listing["timm"] == []


def test_models_table() -> None:
    result = _invoke("models", "*lite*")
    assert result.exit_code == 0
    assert "efficientnet_lite0" in result.output


def test_train_writes_a_run(trained: tuple[Path, Path, dict[str, Any]]) -> None:
    run, _, summary = trained
    assert summary["classes"] == ["blue", "red"]
    assert summary["n_train"] + summary["n_val"] == 12 and summary["n_val"] > 0
    assert summary["strategy"] == "feature-extraction" and summary["model"] == "efficientnet_lite0"
    assert summary["skipped_invalid"] == 0
    assert 0.0 <= summary["val"]["accuracy"] <= 1.0
    for name in ("graft.json", "model.safetensors", "metrics.jsonl", "history.png", "confusion_matrix.png"):
        assert (run / name).is_file(), name


def test_evaluate_json(trained: tuple[Path, Path, dict[str, Any]]) -> None:
    run, data, _ = trained
    result = _invoke("evaluate", run, data, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["accuracy"] >= 0.75, "the colours are easy to tell apart"
    assert metrics["scored"]["split"] is None  # a class folder without splits: the whole input, not a "train" split
    assert "the training data" in metrics["scored"]["warning"]
    reports = sorted((run / "evaluation").glob("*/report.html"))
    assert reports, "the report of this evaluation"
    again = _invoke("evaluate", run, data, "--device", "cpu")
    assert again.exit_code == 0 and "warning" in again.stderr and "scored" in again.stderr
    assert len(sorted((run / "evaluation").glob("*/report.html"))) == len(reports) + 1, "an earlier report is kept"


def test_predict_json(trained: tuple[Path, Path, dict[str, Any]]) -> None:
    run, data, _ = trained
    image = data / "red" / "img0.png"
    result = _invoke("predict", run, image, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["input"] == str(image)
    assert row["label"] in ("blue", "red")
    probs = [t["probability"] for t in row["top_k"]]
    assert row["top_k"][0]["label"] == row["label"] and probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)

    folder = _invoke("predict", run, data / "blue", "--json", "--device", "cpu")
    assert folder.exit_code == 0, folder.output
    assert len(json.loads(folder.stdout)) == 6

    # a CSV of paths alone (no label column), relative to the CSV's folder, in row order
    (data / "to_score.csv").write_text("path\nblue/img1.png\nred/img0.png\n")
    listed = _invoke("predict", run, data / "to_score.csv", "--json", "--device", "cpu")
    assert listed.exit_code == 0, listed.output
    assert [r["input"] for r in json.loads(listed.stdout)] == [str(data / "blue/img1.png"), str(image)]


def test_predict_missing_image_exits_2(trained: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    run, _, _ = trained
    result = _invoke("predict", run, tmp_path / "nope.png")
    assert result.exit_code == 2
    assert "nope.png" in _flat(result.output)


def test_evaluate_a_folder_that_is_not_a_bundle_exits_2(tmp_path: Path, image_folder: Any) -> None:
    result = _invoke("evaluate", tmp_path, image_folder("data"))
    assert result.exit_code == 2
    assert "graft.json is missing" in _flat(result.output)


def test_corrupt_jpeg_exits_2_and_writes_nothing(image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data")
    (data / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40)
    run = tmp_path / "run"
    result = _invoke(*_train_args(data, run))
    assert result.exit_code == 2, result.output
    message = _flat(result.output)
    assert "broken.jpg" in message and "skip-invalid" in message
    assert "Traceback" not in result.output
    assert not run.exists(), "a data error must fail before the run directory is created"


def test_skip_invalid_leaves_out_the_corrupt_file(image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data")
    (data / "red" / "broken.jpg").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="left out 1 unreadable image"):
        result = _invoke(*_train_args(data, tmp_path / "run", "--skip-invalid", "--epochs", "2", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped_invalid"] == 1
    assert summary["n_train"] + summary["n_val"] == 12


def test_existing_run_directory_needs_resume_or_overwrite(image_folder: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result = _invoke(*_train_args(image_folder("data"), run))
    assert result.exit_code == 2
    message = _flat(result.output)
    assert "already exists" in message and "--resume" in message and "--overwrite" in message
    assert (run / "notes.txt").read_text() == "mine"


def test_resume_without_checkpoints_exits_2(image_folder: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    result = _invoke(*_train_args(image_folder("data"), run, "--resume"))
    assert result.exit_code == 2
    assert "Nothing to resume" in _flat(result.output)


def test_unknown_model_exits_2_with_a_suggestion(image_folder: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _invoke(*_train_args(image_folder("data"), run, "--model", "efficentnet_lite0"))
    assert result.exit_code == 2
    assert "Did you mean 'efficientnet_lite0'" in _flat(result.output)
    assert not run.exists()


def test_unknown_strategy_exits_2(image_folder: Any, tmp_path: Path) -> None:
    result = _invoke("train", image_folder("data"), "-o", tmp_path / "run", "--strategy", "featur-extraction")
    assert result.exit_code == 2
    assert "Did you mean 'feature-extraction'" in _flat(result.output)


def test_train_with_the_default_strategy(image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data", n_per_class=4)
    result = _invoke(
        "train", data, "-o", tmp_path / "run", "--epochs", "1", "--device", "cpu", "--no-cache", "--json", *SMALL
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["strategy"] == "fine-tune"


def test_train_sets_strategy_parameters(image_folder: Any, tmp_path: Path) -> None:
    import graft

    data = image_folder("data", n_per_class=4)
    run = tmp_path / "run"
    extra = ["--set", "lr_decay=0.5", "--set", "freeze-epochs=1", "--set", "optimizer=sgd", "--set", "gradual=true"]
    args = ("train", data, "-o", run, "--epochs", "1", "--device", "cpu", "--no-cache", "--json", *SMALL)
    result = _invoke(*args, *extra)
    assert result.exit_code == 0, result.output
    strategy = graft.load(run).strategy_
    assert (strategy.lr_decay, strategy.freeze_epochs, strategy.optimizer, strategy.gradual) == (0.5, 1, "sgd", True)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("lr_decai=0.5", "Did you mean 'lr_decay'"),
        ("lr_decay", "--set takes KEY=VALUE"),
        ("lr_decay=3", "lr_decay must be in (0, 1]"),
    ],
)
def test_bad_set_option_exits_2(image_folder: Any, tmp_path: Path, option: str, message: str) -> None:
    run = tmp_path / "run"
    result = _invoke("train", image_folder("data"), "-o", run, "--set", option)
    assert result.exit_code == 2, result.output
    assert message in _flat(result.output)
    assert not run.exists()


def test_demo_runs_offline(tmp_path: Path) -> None:
    run = tmp_path / "demo"
    result = _invoke("demo", "-o", run, "--limit", "80", "--epochs", "20")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "predicted" in result.output
    assert (run / "graft.json").is_file()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_graft_does_not_import_torch() -> None:
    proc = _python(
        "import sys, graft, graft.errors, graft.cli\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'torchvision', 'accelerate') if m in sys.modules)\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "[]"


def test_graft_help_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "graft", "--help"], capture_output=True, text=True, timeout=120, env=None
    )
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "predict" in proc.stdout


# ------------------------------------------------------------------------------------------------------
# compare-adaptation
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory, helpers: Any) -> tuple[Path, Path, Path]:
    """(labelled source, unlabelled target, labelled target test): the target's images are darker."""
    from PIL import Image

    root = tmp_path_factory.mktemp("domains")
    source = helpers.write_class_folder(root / "source", n_classes=2, n_per_class=8)
    target = helpers.write_class_folder(root / "target", n_classes=2, n_per_class=6, seed=1)
    test = helpers.write_class_folder(root / "target_test", n_classes=2, n_per_class=4, seed=2)
    for folder in (target, test):
        for f in folder.rglob("*.png"):
            Image.eval(Image.open(f), lambda v: int(v * 0.6)).save(f)
    return source, target, test


def _compare_args(domains: tuple[Path, Path, Path], *extra: str) -> list[str]:
    source, target, test = domains
    return [
        "compare-adaptation",
        str(source),
        "--target",
        str(target),
        "--target-test",
        str(test),
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--device",
        "cpu",
        *extra,
    ]


def test_compare_adaptation_json_reuses_the_embeddings(
    domains: tuple[Path, Path, Path], tmp_path: Path, count_embeddings: Any
) -> None:
    from graft.estimators.image import ImageClassifier

    embedded = count_embeddings(ImageClassifier)
    table = tmp_path / "compare.csv"
    result = _invoke(*_compare_args(domains, "--methods", "source-only,coral", "--json", "--output", str(table)))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["method"] for r in rows] == ["source-only", "coral"]
    for r in rows:
        for key in ("target_accuracy", "source_val_accuracy", "val_iwcv_loss", "val_target_entropy"):
            assert r[key] is not None and 0.0 <= r[key] < 100.0, (key, r)
        assert 0.0 <= r["target_accuracy"] <= 1.0
        assert 0.0 <= r["a_distance_before"] <= 2.0 and 0.0 <= r["a_distance_after"] <= 2.0
        assert r["best_epoch"] >= 1 and r["fit_seconds"] > 0
    assert rows[0]["a_distance_before"] == rows[1]["a_distance_before"]  # the same frozen embeddings
    # source (16), target (12) and target-test (8) images go through the backbone once: the second method reads
    # the cache, for training and for scoring
    assert sum(embedded) == 16 + 12 + 8
    lines = table.read_text().splitlines()
    assert lines[0].startswith("method,target_accuracy,") and len(lines) == 3


def test_compare_adaptation_table_and_runs(domains: tuple[Path, Path, Path], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = _invoke(*_compare_args(domains, "--methods", "source-only,mcc", "--runs", str(runs)))
    assert result.exit_code == 0, result.output
    text = _flat(result.stdout)
    assert "source-only" in text and "mcc" in text and "A-dist after" in text
    ranges = []
    for method in ("source-only", "mcc"):
        assert (runs / method / "domain_features.png").is_file()
        manifest = json.loads((runs / method / "graft.json").read_text())
        ranges.append(manifest["training"]["adaptation"]["density_ratio_range"])
    if all(lo == hi for lo, hi in ranges):  # weights all equal: IWCV is the source loss and names no method
        assert "no pick without target labels" in text and "lowest importance-weighted" not in text
    else:
        assert "lowest importance-weighted validation loss" in text


def test_compare_adaptation_unknown_method_exits_2(domains: tuple[Path, Path, Path]) -> None:
    result = _invoke(*_compare_args(domains, "--methods", "source-only,corall"))
    assert result.exit_code == 2
    message = _flat(result.output)
    assert "Unknown adaptation method 'corall'" in message and "Did you mean 'coral'?" in message
    assert "dann" in message and "Traceback" not in result.output


def test_compare_adaptation_bad_output_extension_exits_2(domains: tuple[Path, Path, Path], tmp_path: Path) -> None:
    result = _invoke(*_compare_args(domains, "--methods", "dann", "--output", str(tmp_path / "rows.txt")))
    assert result.exit_code == 2
    assert ".csv or .json" in _flat(result.output)
    assert not (tmp_path / "rows.txt").exists()


@pytest.mark.slow
def test_train_deep_adaptation(domains: tuple[Path, Path, Path], tmp_path: Path) -> None:
    source, target, _ = domains
    run = tmp_path / "deep"
    args = ["train", str(source), "-o", str(run), "--target", str(target), "--strategy", "coral", "--deep"]
    result = _invoke(*args, "--epochs", "1", "--image-size", "32", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    phases = [json.loads(line)["phase"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases[-1] == "coral" and "head" in phases
    assert json.loads(result.stdout)["adaptation"]["a_distance_after"] is not None


def test_deep_without_an_adaptation_strategy_exits_2(domains: tuple[Path, Path, Path], tmp_path: Path) -> None:
    result = _invoke("train", str(domains[0]), "-o", str(tmp_path / "r"), "--strategy", "fine-tune", "--deep")
    assert result.exit_code == 2
    assert "--deep is for domain-adaptation strategies" in _flat(result.output)


def test_unwritable_outputs_and_bad_counts_are_refused_before_any_work(
    trained: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A file where a folder is needed, a count below one, a sweep too short or of an adaptation method, a plot
    without a plot extension: exit 2 with the option named, no traceback, nothing written."""
    run, data, _ = trained
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cases = [
        (("evaluate", run, data, "--report", blocker), "(--report): '" + str(blocker) + "' is a file, not a folder"),
        (("report", run, "-o", blocker / "r.html"), "(-o): '" + str(blocker) + "' is a file, not a folder"),
        (("lr-find", data, "-o", blocker / "lr.png"), "is a file, not a folder"),
        (("lr-find", data, "-o", tmp_path / "lr.txt"), "must end in .png, .svg, .pdf"),
        (("lr-find", data, "--steps", "0", "-o", tmp_path / "lr.png"), "at least 10 steps"),
        (("lr-find", data, "--strategy", "coral", "-o", tmp_path / "lr.png"), "also needs unlabelled target data"),
        (("predict", run, data, "--top-k", "0"), "--top-k and --batch-size must be 1 or more"),
        (("evaluate", run, tmp_path / "nope"), "nope' does not exist. Give labelled data"),
        (("predict", run, data, "--batch-size", "0", "--output", tmp_path / "p.csv"), "must be 1 or more"),
    ]
    for args, words in cases:
        result = _invoke(*args)
        assert result.exit_code == 2 and words in _flat(result.output), (args, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_write_into_a_file_path_is_a_graft_error_naming_the_blocking_file(tmp_path: Path) -> None:
    from graft._utils import atomic_write_bytes
    from graft.errors import UnwritableError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(UnwritableError, match="'.*afile' is a file, not a folder") as info:
        atomic_write_bytes(tmp_path / "afile" / "sub" / "x.json", b"{}")
    assert isinstance(info.value, OSError)


def test_the_command_line_shows_graft_warnings_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import graft
    from graft._cli_common import show_warning

    inside = str(Path(graft.__file__).parent / "estimators" / "text.py")
    show_warning(UserWarning("it leaves out 'age'"), UserWarning, inside, 12)
    assert capsys.readouterr().err.strip() == "warning: it leaves out 'age'"
    show_warning(UserWarning("from elsewhere"), UserWarning, "/somewhere/else.py", 3, line="x = 1")
    shown = capsys.readouterr().err
    assert "else.py:3: UserWarning: from elsewhere" in shown, "another library's warning keeps Python's format"


def test_demo_refuses_a_limit_too_small_for_its_split(tmp_path: Path) -> None:
    for limit in ("-3", "5", "39"):
        result = CliRunner().invoke(app, ["demo", "--limit", limit, "-o", str(tmp_path / "demo")], env=ENV)
        assert result.exit_code == 2 and "--limit must be 0" in _flat(result.output), result.output
    assert not (tmp_path / "demo").exists()


def test_compare_adaptation_checks_its_output_before_training(domains: tuple[Path, Path, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, _compare_args(domains, "--output", str(blocker / "table.csv")), env=ENV)
    assert result.exit_code == 2 and "Cannot write" in _flat(result.output), result.output
    assert "done in" not in result.output, "nothing was trained"
