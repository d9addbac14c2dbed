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
