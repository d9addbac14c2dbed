"""Every ``graft`` command in the README's shell blocks, run as written on tiny data (speed options appended:
``--epochs 1``, and ``--image-size 32`` for images; few-shot pair phases capped at 64 pairs). Commands that need a
model from the Hugging Face hub are not run (no network in tests), but each of their options must exist in the
command's ``--help``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.test_cli_text import COOKING, SPORTS
from tests.test_tabular import _table
from typer.testing import CliRunner

from graft.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}
NEEDS_HUB = ("bert-base-uncased",)  # and `graft serve`, which runs until stopped (tests/test_serve.py)


def readme_commands() -> list[list[str]]:
    """The ``graft ...`` lines of the README's bash blocks (continuations joined, comments and brackets dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("graft ") and not line.startswith("graft demo"):  # demo: tests/test_cli.py
                commands.append([t.strip("[]") for t in shlex.split(line)[1:] if t.strip("[]")])
    return commands


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, helpers: Any, text_helpers: Any) -> dict[str, str]:
    root = tmp_path_factory.mktemp("readme")
    images = helpers.write_class_folder(root / "images", n_classes=2, n_per_class=5)
    target = helpers.write_class_folder(root / "target", n_classes=2, n_per_class=3, seed=3)
    reviews = root / "reviews.csv"
    reviews.write_text("review,label\n" + "\n".join([f'"{t}",pos' for t in SPORTS] + [f'"{t}",neg' for t in COOKING]))
    tagged = root / "tagged.csv"
    rows = [f'"{t}",sport|news' for t in SPORTS] + [f'"{t}",food' for t in COOKING]
    tagged.write_text("text,labels\n" + "\n".join(rows))
    conll = root / "conll"
    conll.mkdir()
    for name, n, seed in (("eng.train", 24, 1), ("eng.testa", 6, 2), ("eng.testb", 6, 3)):
        text_helpers.write_conll(conll / name, *text_helpers.tagged(n, seed=seed))
    credit = {}
    for name, n, seed, shift in (("source", 120, 0, 0.0), ("target", 60, 1, 8.0), ("unlabelled", 60, 2, 8.0)):
        credit[name] = root / f"credit_{name}.csv"
        _table(n, seed=seed, shift=shift).to_csv(credit[name], index=False)
    from tests.medical.test_dicom import _dataset, _save
    from tests.medical.test_groups import _write_patients

    patients = _write_patients(root / "cxr", 8, 2)
    new_patients = _write_patients(root / "cxr_test", 4, 2, first=20)
    scan = _save(_dataset(np.arange(48 * 48, dtype=np.uint16).reshape(48, 48)), root / "scan.dcm")
    return {
        "labels.csv": str(patients),
        "test.csv": str(new_patients),
        "scan.dcm": str(scan),
        "cam.png": str(root / "cam.png"),
        "credit_source.csv": str(credit["source"]),
        "credit_target.csv": str(credit["target"]),
        "credit_unlabelled.csv": str(credit["unlabelled"]),
        "applicants.csv": str(credit["unlabelled"]),
        "scores.csv": str(root / "scores.csv"),
        "path/to/images": str(images),
        "path/to/test_images": str(images),
        "photo.jpg": str(sorted(images.rglob("*.png"))[0]),
        "reviews.csv": str(reviews),
        "tagged.csv": str(tagged),
        "conll/": str(conll),
        "source_images/": str(images),
        "unlabelled_target/": str(target),
        "labelled_target_test/": str(target),
        "compare.csv": str(root / "compare.csv"),
        "preds.csv": str(root / "preds.csv"),
        "ants.onnx": str(root / "ants.onnx"),
        "preds.jsonl": str(root / "preds.jsonl"),
        "runs/": str(root / "runs") + "/",
        "lr.png": str(root / "lr.png"),
    }


def _concrete(args: list[str], places: dict[str, str]) -> list[str]:
    out = []
    for token in args:
        token = places.get(token, token)
        if token.startswith("runs/"):
            token = places["runs/"] + token.removeprefix("runs/")
        out.append(token)
    if args[0] == "train":
        out += [] if "--budget" in args else ["--epochs", "1"]  # a budgeted run chooses its epochs
        if {places["path/to/images"], places["source_images/"], places["labels.csv"]} & set(out):
            out += ["--image-size", "32"]
    if args[0] == "lr-find":
        out += ["--steps", "10"]
    if args[0] == "compare-adaptation":
        out += ["--epochs", "1", "--image-size", "32"]
    if args[0] == "compare":  # one seed, one epoch (a later --seeds wins)
        out += ["--epochs", "1", "--seeds", "1"] + (["--image-size", "32"] if places["path/to/images"] in out else [])
    return out


def test_the_readme_has_commands_to_check() -> None:
    commands = readme_commands()
    assert len(commands) >= 15 and {c[0] for c in commands} >= {"train", "evaluate", "predict", "models"}


@pytest.mark.slow
def test_every_readme_command_runs_as_written(places: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from graft.strategies import FewShot

    # a speed option that `graft compare` has no flag for: the few-shot strategy's pair phase capped at 64 pairs
    monkeypatch.setitem(FewShot.__init__.__kwdefaults__, "max_pairs", 64)
    for args in readme_commands():
        if any(name in args for name in NEEDS_HUB) or args[0] == "serve":  # serve runs until stopped
            help_text = _invoke(args[0], "--help").output
            for option in (t for t in args if t.startswith("--")):
                assert option in help_text, f"README uses {option} of `graft {args[0]}`, which it does not take"
            continue
        concrete = _concrete(args, places)
        result = _invoke(*concrete)
        assert result.exit_code == 0, f"graft {' '.join(args)}\n{result.output[-3000:]}"
