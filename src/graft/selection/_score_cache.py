"""Every transferability score of one backbone on one labelled sample, kept on disk so a second ``rank`` reads them.

The scores are a pure function of the embeddings, the labels, the source classifier's probabilities and the seed, so
they are stored under the hash of exactly those (and of the scoring code's version and of numpy / scikit-learn's):
``<cache root>/scores/<key>.json``. Any change to a backbone's weights, the data or the sample changes the
embeddings and misses; nothing stale is served. A second ``rank`` of the same data then costs building the backbones
and reading cached embeddings, not the cross-validated probe.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from .._utils import atomic_write_json, cache_root
from .scores import SCORES

__all__ = ["all_scores"]

#: bump when a score's definition changes, so that stored values are recomputed
_VERSION = "scores-v1"


def _key(features: np.ndarray, y: np.ndarray, source: np.ndarray | None, seed: int) -> str:
    import sklearn

    h = hashlib.blake2b(digest_size=16)
    h.update(f"{_VERSION}|{','.join(SCORES)}|{np.__version__}|{sklearn.__version__}|{seed}".encode())
    for a in (features, y, source):
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _compute(features: np.ndarray, y: np.ndarray, source: np.ndarray | None, seed: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, (fn, needs_source) in SCORES.items():
        if needs_source:
            out[name] = fn(source, y) if source is not None else float("nan")
        elif name == "linear_probe":
            out[name] = fn(features, y, seed=seed)
        else:
            out[name] = fn(features, y)
    return {k: float(v) for k, v in out.items()}


def all_scores(
    features: np.ndarray, y: np.ndarray, source: np.ndarray | None = None, *, seed: int = 0, cache: bool = True
) -> dict[str, float]:
    """Every score of :data:`SCORES` (``NaN`` where one needs the source classifier and there is none).

    Args:
        features: the embeddings ``(N, D)``.
        y: class indices ``(N,)``.
        source: the source classifier's probabilities ``(N, Z)``, or ``None``.
        seed: the seed of the probe's folds.
        cache: read and write the stored scores (``False``: always compute).
    """
    path = cache_root() / "scores" / f"{_key(features, y, source, seed)}.json"
    if cache and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if set(stored) == set(SCORES):
                return {k: float("nan") if v is None else float(v) for k, v in stored.items()}
        except (OSError, ValueError, TypeError):
            pass  # unreadable or damaged: computed again and rewritten below
    values = _compute(features, y, source, seed)
    if cache:
        atomic_write_json(path, {k: None if math.isnan(v) else v for k, v in values.items()})
    return values
