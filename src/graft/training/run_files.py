"""What a training phase keeps in its run directory as it goes: ``checkpoints/<phase>/last.pt`` and the
``metrics.jsonl`` of every phase, both rewritten atomically after each epoch (or less often, as
``TrainConfig.checkpoint_seconds`` spaces them).

Each rewrite costs about the same at the thousandth epoch as at the first (an adaptation phase on a few dozen
examples runs a thousand one-step epochs): the history goes into the checkpoint as one JSON text rather than
thousands of pickled objects, and the other phases' rows of ``metrics.jsonl`` are read once per phase, not once
per epoch.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from .._utils import _json_default, atomic_write_bytes

__all__ = ["MetricsFile", "load_checkpoint", "save_checkpoint", "write_metrics"]


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a loop checkpoint atomically; its ``history`` (a list of epoch logs) is stored as JSON text."""
    if isinstance(payload.get("history"), list):
        payload = {**payload, "history": json.dumps(payload["history"], default=_json_default)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (tensors only, ``weights_only``), ``history`` as a list."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ck.get("history"), str):
        ck["history"] = json.loads(ck["history"])
    return ck


def _line(phase: str, row: dict[str, Any]) -> str:
    return json.dumps({"phase": phase, **row}, default=_json_default) + "\n"


class MetricsFile:
    """``metrics.jsonl`` of a run directory as one phase adds its epochs: the rows of the other phases, read once,
    then this phase's rows (a phase run again replaces its earlier rows).

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> MetricsFile(run, "head").write([{"epoch": 1, "train_loss": 0.5}])
        >>> (run / "metrics.jsonl").read_text()
        '{"phase": "head", "epoch": 1, "train_loss": 0.5}\\n'
    """

    def __init__(self, run_dir: Path, phase: str) -> None:
        self.path, self.phase = Path(run_dir) / "metrics.jsonl", phase
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        self._others = [line + "\n" for line in lines if line.strip() and json.loads(line).get("phase") != phase]
        self._own: list[str] = []

    def write(self, history: list[dict[str, Any]]) -> None:
        """Rewrite the file with ``history`` as this phase's rows. The history only grows from one call to the
        next: rows already written are kept as encoded, but for the newest of them (a callback may add to it)."""
        keep = max(0, min(len(self._own), len(history)) - 1)
        self._own = self._own[:keep] + [_line(self.phase, row) for row in history[keep:]]
        atomic_write_bytes(self.path, "".join(self._others + self._own).encode())


def write_metrics(run_dir: Path, phase: str, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` with every phase's history (this phase's replaced)."""
    MetricsFile(run_dir, phase).write(history)
