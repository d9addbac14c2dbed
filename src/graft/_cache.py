"""On-disk cache of frozen-backbone embeddings, keyed by content, written one shard per batch.

The key of an entry is ``(model key, input hash)``: the model key hashes the backbone's architecture spec, its
weights, the preprocessing and the numeric path (precision, TTA); the input hash is that of the input's bytes. Any
change to weights, preprocessing or data misses the cache; nothing stale is ever served.

Layout: ``<root>/embeddings/<model key>/<shard>.npy`` holds the entries of one ``put_many`` call, flattened and
concatenated (float32), and ``<shard>.json`` (written after it) their hashes, shapes and the SHA-256 of the ``.npy``
file. A shard whose file is missing, truncated or altered fails its checksum when first read and is ignored (its
entries are recomputed), so a crash or a damaged disk never serves a wrong embedding. Several processes may share
the cache: shards are written atomically under unique names and never modified.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._utils import atomic_write_bytes, atomic_write_json, cache_root

__all__ = ["EmbeddingCache", "weights_fingerprint", "model_key", "count_entries"]


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


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
        hashes, shapes = meta["hashes"], meta["shapes"]
        if not isinstance(hashes, list) or len(hashes) != len(shapes) or not isinstance(meta["sha256"], str):
            return None
        return meta  # type: ignore[no-any-return]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def count_entries(root: str | Path) -> int:
    """How many embeddings the cache under ``root`` holds (every model key)."""
    return sum(len(m["hashes"]) for p in Path(root).rglob("*.json") if (m := _read_meta(p)) is not None)


class EmbeddingCache:
    """Embedding store of one model key under ``<root>/embeddings/<model key>/``.

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
        self._index: dict[str, list[tuple[str, int]]] | None = None  # hash -> [(shard, entry), ...]
        self._meta: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, np.ndarray | None] = {}

    def _lookup(self) -> dict[str, list[tuple[str, int]]]:
        if self._index is None:
            self._index = {}
            if self.enabled and self.dir.is_dir():
                for path in sorted(self.dir.glob("*.json")):
                    meta = _read_meta(path)
                    if meta is None:
                        continue
                    self._meta[path.stem] = meta
                    for i, h in enumerate(meta["hashes"]):
                        self._index.setdefault(h, []).append((path.stem, i))
        return self._index

    def _shard(self, shard: str) -> np.ndarray | None:
        """The shard's flat values once its checksum matches; ``None`` (and its entries forgotten) otherwise."""
        if shard not in self._verified:
            data: np.ndarray | None = None
            try:
                raw = (self.dir / f"{shard}.npy").read_bytes()
                if hashlib.sha256(raw).hexdigest() == self._meta[shard]["sha256"]:
                    data = np.load(io.BytesIO(raw), allow_pickle=False)
            except (OSError, ValueError):
                data = None
            self._verified[shard] = data
            if data is None:  # damaged: its entries come from another shard or are recomputed
                index = self._lookup()
                for h in self._meta[shard]["hashes"]:
                    index[h] = [c for c in index.get(h, []) if c[0] != shard]
                    if not index[h]:
                        del index[h]
        return self._verified[shard]

    def _value(self, h: str) -> np.ndarray | None:
        for shard, i in list(self._lookup().get(h, [])):
            data = self._shard(shard)
            if data is not None:
                meta = self._meta[shard]
                start, shape = meta["offsets"][i], tuple(meta["shapes"][i])
                return np.array(data[start : start + int(np.prod(shape))]).reshape(shape)
        return None

    def contains(self, h: str) -> bool:
        return self.enabled and h in self._lookup()

    def get_many(self, hashes: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(hashes)
        if self.enabled:
            for j, h in enumerate(hashes):
                out[j] = self._value(h)
        n_hit = sum(v is not None for v in out)
        self.hits += n_hit
        self.misses += len(out) - n_hit
        return out

    def put_many(self, hashes: Sequence[str], vectors: Sequence[np.ndarray] | np.ndarray) -> None:
        """Store one shard holding ``vectors[i]`` (any shape) under ``hashes[i]``."""
        if not self.enabled or len(hashes) == 0:
            return
        arrays = [np.ascontiguousarray(v, dtype=np.float32) for v in vectors]
        offsets = np.cumsum([0] + [a.size for a in arrays[:-1]]).tolist()
        buf = io.BytesIO()
        np.save(buf, np.concatenate([a.reshape(-1) for a in arrays]), allow_pickle=False)
        raw = buf.getvalue()
        shard = uuid.uuid4().hex
        meta = {
            "hashes": list(hashes),
            "shapes": [list(a.shape) for a in arrays],
            "offsets": offsets,
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
        atomic_write_bytes(self.dir / f"{shard}.npy", raw)
        atomic_write_json(self.dir / f"{shard}.json", meta)  # last: a shard with its .json is complete
        index = self._lookup()
        self._meta[shard] = meta
        self._verified[shard] = np.load(io.BytesIO(raw), allow_pickle=False)
        for i, h in enumerate(hashes):
            index.setdefault(h, []).insert(0, (shard, i))
