"""``graft predict … --output`` streams inputs in chunks: killed with SIGKILL half-way, the same command finishes
without predicting the finished rows again; unreadable inputs are skipped and reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def run_and_images(helpers: Any, tmp_path: Path) -> tuple[Path, Path]:
    data = helpers.write_class_folder(tmp_path / "train", n_classes=2, n_per_class=4)
    run = tmp_path / "run"
    helpers.tiny_classifier("feature-extraction", epochs=3, output_dir=run).fit(str(data))
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"p{i:04d}.png")
    (folder / "p9999.png").write_bytes(b"not a png")
    return run, folder


def _command(run: Path, folder: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "graft", "predict", str(run), str(folder), "--output", str(out), "--batch-size", "10"]


@pytest.mark.slow
def test_killed_prediction_resumes_without_redoing_rows(run_and_images: tuple[Path, Path], tmp_path: Path) -> None:
    run, folder = run_and_images
    out = tmp_path / "preds.csv"
    partial = tmp_path / "preds.csv.partial.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(_command(run, folder, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 100):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -9
    first = len([line for line in partial.read_text().splitlines() if line.strip()])
    assert 100 <= first < 400 and not out.exists(), first
    again = subprocess.run(_command(run, folder, out), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{first} from the interrupted run" in " ".join(again.stdout.split()) or f"{first - 1} from" in again.stdout
    assert "1 unreadable" in again.stdout and "p9999.png" in again.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 400 and frame["input"].is_unique, len(frame)
    assert not partial.exists()


@pytest.mark.slow
def test_two_processes_split_the_inputs_and_write_the_one_process_file(
    run_and_images: tuple[Path, Path], tmp_path: Path
) -> None:
    run, folder = run_and_images
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK", "LOCAL_"))}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    single = subprocess.run(_command(run, folder, one), env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "graft"]
    cmd = launch + _command(run, folder, two)[3:]
    double = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    a, b = pd.read_csv(one), pd.read_csv(two)
    assert list(a["input"]) == list(b["input"]) and len(a) == 400
    assert list(a["label"]) == list(b["label"])
    np.testing.assert_allclose(a["probability"], b["probability"], atol=1e-5)
    assert not list(tmp_path.glob("two.csv.partial*")), "the main process merged and removed the partial files"
