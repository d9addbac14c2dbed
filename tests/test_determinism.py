"""The same seed on the same machine gives the same metrics and the same bundle weights (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import graft


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fine-tune", "lora"])
def test_same_seed_same_weights_and_metrics(helpers: Any, tmp_path: Path, strategy: str) -> None:
    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=6, seed=4)
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        helpers.tiny_classifier(strategy, epochs=2, seed=7, output_dir=run).fit(str(data))
        runs.append(run)
    a, b = (load_file(str(r / "model.safetensors")) for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (graft.load(r).history_ for r in runs)
    timing = ("seconds", "train_samples_per_s")
    assert [{k: v for k, v in r.items() if k not in timing} for r in ma] == [
        {k: v for k, v in r.items() if k not in timing} for r in mb
    ]
    assert graft.load(runs[0]).val_metrics_ == graft.load(runs[1]).val_metrics_
