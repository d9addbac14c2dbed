"""Two processes training into the same run directory: the second is refused while the first lives."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graft
from graft.errors import ConfigError


def _fit(run: Path, **kw: object) -> graft.EmbeddingClassifier:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 2
    return graft.EmbeddingClassifier(epochs=2, verbose=False, output_dir=run, **kw).fit(X, y)


def test_a_live_owner_keeps_the_run_directory_and_a_dead_one_does_not(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _fit(run)
    assert not (run / ".graft.lock").exists()  # released when the run is written
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".graft.lock").write_text(f"{other.pid} {socket.gethostname()}\n")
        with pytest.raises(ConfigError, match=f"pid {other.pid}"):
            _fit(run, overwrite=True)
        assert (run / "graft.json").exists()  # nothing was deleted
    finally:
        other.kill()
        other.wait()
    _fit(run, overwrite=True)  # the owner died (kill -9 leaves its lock behind): the lock is taken over
    assert not (run / ".graft.lock").exists()


def test_a_fit_that_fails_before_writing_anything_leaves_no_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import graft
    import graft.estimators.base as base

    def boom(plan: object, ctx: object) -> None:
        raise RuntimeError("stopped in the first epoch")

    monkeypatch.setattr(base, "run_plan", boom)
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    with pytest.raises(RuntimeError, match="first epoch"):
        graft.EmbeddingClassifier(epochs=1, output_dir=tmp_path / "run").fit(X, y)
    assert not (tmp_path / "run").exists()
    # once the run has written something (a checkpoint, metrics), its folder is kept for --resume

    def late_boom(plan: object, ctx: object) -> None:
        (ctx.run_dir / "metrics.jsonl").write_text("{}\n")  # type: ignore[attr-defined]
        raise RuntimeError("stopped in epoch 3")

    monkeypatch.setattr(base, "run_plan", late_boom)
    with pytest.raises(RuntimeError, match="epoch 3"):
        graft.EmbeddingClassifier(epochs=1, output_dir=tmp_path / "run").fit(X, y)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["metrics.jsonl"]  # and the lock released
