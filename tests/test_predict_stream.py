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
