"""On-disk cache of frozen-backbone embeddings, one small ``.npy`` per input, keyed by content.

The key of an entry is ``(model key, input hash)``: the model key hashes the backbone's architecture spec,
its weights, the preprocessing and the numeric path (precision, TTA); the input hash is that of the file's
bytes. Any change to weights, preprocessing or data misses the cache; nothing stale is ever served.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._utils import atomic_write_bytes, cache_root

__all__ = ["EmbeddingCache", "weights_fingerprint", "model_key"]


def weights_fingerprint(module: nn.Module) -> str:
    """blake2b over every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_key(**parts: Any) -> str:
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


class EmbeddingCache:
    """Per-input embedding store under ``<root>/embeddings/<model key>/``.

    Args:
        key: the model key (see :func:`model_key`).
        root: cache folder; defaults to ``$GRAFT_CACHE_DIR`` or ``~/.cache/graft``.
        enabled: ``False`` turns every lookup into a miss and stores nothing.
    """

    def __init__(self, key: str, root: str | Path | None = None, enabled: bool = True) -> None:
        self.dir = Path(root or cache_root()) / "embeddings" / key
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _path(self, h: str) -> Path:
        return self.dir / h[:2] / f"{h}.npy"

    def contains(self, h: str) -> bool:
        return self.enabled and self._path(h).exists()

    def get_many(self, hashes: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for h in hashes:
            v = None
            if self.enabled:
                p = self._path(h)
                if p.exists():
                    try:
                        v = np.load(p, allow_pickle=False)
                    except (OSError, ValueError):  # a damaged entry is recomputed
                        v = None
            self.hits += v is not None
            self.misses += v is None
            out.append(v)
        return out

    def put_many(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        if not self.enabled:
            return
        for h, v in zip(hashes, vectors):
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(v, dtype=np.float32), allow_pickle=False)
            atomic_write_bytes(self._path(h), buf.getvalue())
