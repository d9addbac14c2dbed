"""Stored rank scores: a second rank of the same embeddings and labels reads them; anything else recomputes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graft.selection import SCORES, linear_probe
from graft.selection._score_cache import all_scores


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def probe(features: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
        calls.append(len(y))
        return linear_probe(features, y, seed=seed)

    monkeypatch.setitem(SCORES, "linear_probe", (probe, False))
    return calls


def test_scores_are_stored_and_read_back(monkeypatch: pytest.MonkeyPatch, graft_cache_dir: Path) -> None:
    calls = _counting(monkeypatch)
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    f = rng.normal(size=(60, 8)).astype(np.float32)
    f[:, :3] += 2 * np.eye(3)[y]
    first = all_scores(f, y, None, seed=0)
    again = all_scores(f.copy(), y.copy(), None, seed=0)
    assert calls == [60], "the second call reads the stored scores"
    assert set(first) == set(SCORES) and np.isnan(first["leep"]) and np.isnan(again["leep"])
    for k in ("logme", "hscore", "linear_probe"):
        assert again[k] == first[k]
    assert len(list((graft_cache_dir / "scores").glob("*.json"))) == 1

    changed: Any = [all_scores(f, rng.permutation(y), None, seed=0), all_scores(f, y, None, seed=1)]
    assert calls == [60, 60, 60], "other labels or another seed are scored anew"
    assert changed[0]["linear_probe"] < first["linear_probe"]
    all_scores(f, y, None, seed=0, cache=False)
    assert calls == [60, 60, 60, 60]


def test_a_damaged_entry_is_recomputed(monkeypatch: pytest.MonkeyPatch, graft_cache_dir: Path) -> None:
    calls = _counting(monkeypatch)
    y = np.arange(30) % 2
    f = np.random.default_rng(1).normal(size=(30, 4))
    first = all_scores(f, y)
    (entry,) = (graft_cache_dir / "scores").glob("*.json")
    entry.write_text("{not json")
    assert all_scores(f, y)["linear_probe"] == first["linear_probe"] and len(calls) == 2
    assert all_scores(f, y)["linear_probe"] == first["linear_probe"] and len(calls) == 2, "rewritten"
