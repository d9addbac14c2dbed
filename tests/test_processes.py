"""Fits as separate processes: two processes under ``accelerate launch`` give the one-process result, and a run
killed with SIGKILL in the middle of an epoch, then resumed, ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parent / "_launch_fit.py"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK", "LOCAL_"))}
    env.update(GRAFT_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def _fit(tmp_path: Path, name: str, *extra: str, launch: list[str] | None = None, check: bool = True) -> Any:
    out, run = tmp_path / f"{name}.json", tmp_path / name
    cmd = [*(launch or [sys.executable]), str(SCRIPT), str(out), str(run), *extra]
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(out.read_text())
    return proc


def _same_metrics(a: dict[str, Any], b: dict[str, Any], tol: float) -> None:
    assert a["best_epoch"] == b["best_epoch"]
    assert len(a["history"]) == len(b["history"])
    for ha, hb in zip(a["history"], b["history"]):
        assert ha.keys() == hb.keys()
        for k in ha:
            if isinstance(ha[k], float):
                assert ha[k] == pytest.approx(hb[k], abs=tol), (k, ha, hb)
            else:
                assert ha[k] == hb[k], (k, ha, hb)
    for k in ("accuracy", "log_loss", "macro_f1"):
        assert a["val"][k] == pytest.approx(b["val"][k], abs=tol)


@pytest.mark.slow
def test_two_processes_give_the_one_process_result(tmp_path: Path, backbone_weights: Path) -> None:
    one = _fit(tmp_path, "one", "--batch-size", "8", "--weights", str(backbone_weights))
    # torchrun-style processes; on a machine without GPUs (and device="cpu") Accelerate joins them over gloo
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    two = _fit(tmp_path, "two", "--batch-size", "4", "--weights", str(backbone_weights), launch=launch)
    _same_metrics(one, two, tol=1e-4)  # same global batch of 8; gradients averaged over the two shards
    run = tmp_path / "two"
    assert (run / "graft.json").exists() and (run / "checkpoints" / "fine-tune" / "last.pt").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["phase"] == "fine-tune"] == [1, 2, 3]  # written once, by the main process


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_as_an_uninterrupted_run(tmp_path: Path, backbone_weights: Path) -> None:
    weights = ("--weights", str(backbone_weights))
    full = _fit(tmp_path, "full", *weights)
    killed = _fit(tmp_path, "crash", *weights, "--kill-in-epoch", "2", check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = tmp_path / "crash"
    assert not (run / "graft.json").exists() and (run / "checkpoints" / "fine-tune" / "last.pt").exists()
    resumed = _fit(tmp_path, "crash", *weights, "--resume")
    _same_metrics(full, resumed, tol=1e-6)
    assert resumed["weights"] == full["weights"]
